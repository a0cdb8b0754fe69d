//! What the shim needs that no safe wrapper offers: the only `unsafe` of the crate.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Marks every fd from 3 up close-on-exec, so that nothing the shim's starter left open (a
/// listening socket, a log file) reaches the runtime or the container.
pub fn cloexec_from_3() -> std::io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing; it only sets FD_CLOEXEC on
    // the descriptors in the range, which invalidates no fd owned anywhere in this process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes `cmd`'s child start with no signal blocked. The shim blocks SIGCHLD (it reads it
/// from a signalfd); a blocked mask survives exec, std's `Command` does not clear it, and the
/// runtime would hand it on to the container.
pub fn clear_signal_mask_in_child(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec. It only fills a sigset on
    // the stack and calls pthread_sigmask, both async-signal-safe; it allocates nothing and
    // touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::SigSet::empty()
                .thread_set_mask()
                .map_err(std::io::Error::from)
        });
    }
}
