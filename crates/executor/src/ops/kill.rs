//! `kill`: send a signal to the container's process, or to every process in it.

use super::Runtime;
use crate::error::{Error, Result};
use crate::state::Container;

/// Parses "KILL", "SIGKILL", "9" (and "RTMIN+n").
pub fn parse_signal(s: &str) -> Result<i32> {
    let bad = || Error::Usage(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|r| r.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMIN() + off;
        return if n <= libc::SIGRTMAX() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

pub fn kill(rt: &Runtime, id: &str, signal: i32, all: bool) -> Result<()> {
    let c = Container::load(&rt.root, id)?;
    let status = c.status();
    // With --all the cgroup is the target, which may hold processes after init has exited
    // (containerd's shim sends `kill --all` to stopped containers): as runc, allowed then.
    if all {
        if status.can_kill() || status == crate::state::Status::Stopped {
            return signal_all(&c, signal);
        }
        return Err(c.bad_state(status, "kill"));
    }
    if !status.can_kill() {
        return Err(c.bad_state(status, "kill"));
    }
    let pidfd = crate::sys::pidfd_open(c.record.pid).map_err(|e| Error::sys("pidfd_open", e))?;
    crate::sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), signal)
        .map_err(|e| Error::sys(format!("signal {signal} to {id}"), e))
}

/// Signals every process in the container's cgroup, frozen meanwhile so none can fork away.
pub fn signal_all(c: &Container, signal: i32) -> Result<()> {
    let cg = c.cgroup()?;
    if signal == libc::SIGKILL {
        return Ok(cg.kill_all()?);
    }
    let was_frozen = cg.is_frozen().unwrap_or(false);
    cg.freeze()?;
    for pid in cg.procs()? {
        let _ = crate::sys::kill(pid, signal);
    }
    if !was_frozen {
        cg.thaw()?;
    }
    Ok(())
}
