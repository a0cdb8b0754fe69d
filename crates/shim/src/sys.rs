//! The one system call the shim needs that no safe wrapper offers.

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
