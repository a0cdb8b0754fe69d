//! berth-pause: a pod's infra process, built into berthd.
//!
//! It holds the pod's namespaces open and does nothing else: it waits for signals with all
//! of them blocked (no handlers), reaps any child re-parented to it (when it is PID 1 of a
//! shared pod PID namespace) and exits 0 on SIGTERM or SIGINT.
//!
//! crates/sandbox/build.rs compiles this one file with rustc alone (no crates, glibc linked
//! statically) and berthd embeds the result, so a pod starts with no image pull and no extra
//! binary to install. With no crates at hand, the four libc calls are declared here; their
//! unsafe blocks are the only ones outside the executor's sys layer (docs/cri.md says why).

use std::os::raw::c_int;

/// glibc's sigset_t on Linux: 1024 bits.
#[repr(C)]
struct SigSet {
    bits: [u64; 16],
}

unsafe extern "C" {
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, signum: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    fn waitpid(pid: i32, status: *mut c_int, options: c_int) -> i32;
}

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;
const SIGCHLD: c_int = 17;
const SIG_BLOCK: c_int = 0;
const WNOHANG: c_int = 1;

fn main() {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "-V" || arg == "--version" {
            println!("berth-pause {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        eprintln!("berth-pause takes no arguments (got {arg:?})");
        std::process::exit(2);
    }
    let mut set = SigSet { bits: [0; 16] };
    // SAFETY: `set` is a valid, writable sigset_t-sized buffer owned by this frame; the
    // signal numbers are valid; a null `old` is allowed by sigprocmask.
    let blocked = unsafe {
        sigemptyset(&mut set) == 0
            && [SIGTERM, SIGINT, SIGCHLD]
                .iter()
                .all(|&s| sigaddset(&mut set, s) == 0)
            && sigprocmask(SIG_BLOCK, &set, std::ptr::null_mut()) == 0
    };
    if !blocked {
        eprintln!("berth-pause: cannot block signals");
        std::process::exit(1);
    }
    loop {
        let mut sig: c_int = 0;
        // SAFETY: `set` was initialised above and `sig` is a valid out pointer.
        if unsafe { sigwait(&set, &mut sig) } != 0 {
            eprintln!("berth-pause: sigwait failed");
            std::process::exit(1);
        }
        if sig != SIGCHLD {
            std::process::exit(0);
        }
        // Reap every exited child; stop when none is left to reap.
        loop {
            let mut status: c_int = 0;
            // SAFETY: `status` is a valid out pointer; pid -1 means any child.
            if unsafe { waitpid(-1, &mut status, WNOHANG) } <= 0 {
                break;
            }
        }
    }
}
