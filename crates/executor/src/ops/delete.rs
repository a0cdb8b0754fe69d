//! `delete`: remove a stopped (or, with --force, any) container and everything it held.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::Runtime;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{Container, Status};

pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(&rt.root, id) {
        Ok(c) => c,
        Err(Error::NotExist(_)) if force => {
            let _ = std::fs::remove_dir_all(rt.root.join(id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let status = c.status();
    match status {
        Status::Stopped => {}
        Status::Created => kill_and_wait(&c)?,
        Status::Running | Status::Paused if force => kill_and_wait(&c)?,
        _ => return Err(c.bad_state(status, "delete without --force")),
    }
    destroy(&c)
}

fn kill_and_wait(c: &Container) -> Result<()> {
    let pidfd = crate::sys::pidfd_open(c.record.pid).ok();
    super::kill::signal_all(c, libc::SIGKILL)?;
    if let Some(fd) = pidfd {
        let _ = crate::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(10_000u16));
    }
    Ok(())
}

/// Removes the cgroup, runs poststop hooks and removes the state directory.
pub fn destroy(c: &Container) -> Result<()> {
    let cg = c.cgroup()?;
    // Processes may still be leaving the cgroup; give them a moment.
    let mut tries = 0;
    loop {
        match cg.destroy() {
            Ok(()) => break,
            Err(e) if tries < 100 => {
                tries += 1;
                tracing::debug!(error = %e, "cgroup busy; retrying");
                let _ = cg.kill_all();
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let state = c.oci_state("stopped");
    hooks::run_all_logged(
        c.record
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_ref()),
        &state,
        "poststop",
    );
    std::fs::remove_dir_all(&c.dir).map_err(|e| Error::io("remove", &c.dir, e))
}
