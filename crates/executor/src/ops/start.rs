//! `start`: let a created container's process exec the user's program.

use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::Runtime;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::Container;

pub fn start(rt: &Runtime, id: &str) -> Result<()> {
    let c = Container::load(&rt.root, id)?;
    let status = c.status();
    if !status.can_start() {
        return Err(c.bad_state(status, "start"));
    }
    let fifo_path = c.fifo();
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", fifo_path.display()), e))?;
    let pidfd = crate::sys::pidfd_open(c.record.pid).map_err(|e| Error::sys("pidfd_open", e))?;
    // The container process writes one byte once startContainer hooks ran, and its end closes
    // when it execs the program (or dies).
    let mut got_byte = false;
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll exec fifo", e)),
            Ok(_) => {}
        }
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let died = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_ready {
            let mut b = [0u8; 1];
            match nix::unistd::read(&fifo, &mut b) {
                Ok(1) => got_byte = true,
                Ok(_) if got_byte => break,
                Err(nix::errno::Errno::EAGAIN) => {}
                _ => {
                    return Err(Error::Init(format!(
                        "container {id}: process exited before start"
                    )));
                }
            }
        } else if died {
            if got_byte {
                break;
            }
            return Err(Error::Init(format!(
                "container {id}: process exited before start"
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    let state = c.oci_state("running");
    hooks::run_all_logged(
        c.record
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().as_ref()),
        &state,
        "poststart",
    );
    Ok(())
}
