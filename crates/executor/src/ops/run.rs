//! `run`: create and start in one step; in the foreground it waits for the container,
//! forwarding signals to it, and returns its exit code.

use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::Runtime;
use super::create::{CreateOptions, create};
use crate::error::{Error, Result};

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub create: CreateOptions,
    pub detach: bool,
    pub keep: bool,
}

pub fn run(rt: &Runtime, id: &str, opts: &RunOptions) -> Result<i32> {
    let pid = create(rt, id, &opts.create)?;
    if let Err(e) = super::start::start(rt, id) {
        let _ = super::delete::delete(rt, id, true);
        return Err(e);
    }
    if opts.detach {
        return Ok(0);
    }
    let code = wait_forwarding_signals(pid)?;
    if !opts.keep {
        super::delete::delete(rt, id, true)?;
    }
    Ok(code)
}

const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGTSTP,
];

/// Waits for our child `pid` to exit, passing the signals we receive on to it.
pub fn wait_forwarding_signals(pid: i32) -> Result<i32> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::sys("block signals", e))?;
    let sfd =
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).map_err(|e| Error::sys("signalfd", e))?;
    let pidfd = crate::sys::pidfd_open(pid).map_err(|e| Error::sys("pidfd_open", e))?;
    loop {
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", e)),
            Ok(_) => {}
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            if let Ok(Some(info)) = sfd.read_signal() {
                let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), info.ssi_signo as i32);
            }
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let status = crate::sys::waitpid(pid).map_err(|e| Error::sys("waitpid", e))?;
            return Ok(crate::sys::exit_code(status));
        }
    }
}
