//! berth-pause: a pod's infra process.
//!
//! It holds the pod's namespaces open and does nothing else: it waits for signals with
//! all of them blocked (no handlers, so no unsafe), reaps any child re-parented to it
//! (when it is PID 1 of a shared pod PID namespace) and exits 0 on SIGTERM or SIGINT.
//! berthd copies it into a read-only rootfs of its own, so a pod starts with no image pull.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

fn main() {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "-V" || arg == "--version" {
            println!("berth-pause {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        eprintln!("berth-pause takes no arguments (got {arg:?})");
        std::process::exit(2);
    }
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        set.add(s);
    }
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None) {
        eprintln!("berth-pause: block signals: {e}");
        std::process::exit(1);
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("berth-pause: sigwait: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// Reaps every exited child; returns when none is left to reap.
fn reap() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
