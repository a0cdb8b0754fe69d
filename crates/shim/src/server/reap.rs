//! Reaping: every child that exits, and what the ends of the main and exec processes leave
//! behind (exit.json, waiters answered, exit frames sent).

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use super::crilog::Stream;
use super::{Io, Shim, Target, files, now_rfc3339, oom};
use crate::Error;
use crate::protocol::{self, ExitStatus, Response, Transition};

pub(super) fn exit_of(pid: i32, ws: WaitStatus) -> Option<(i32, Option<i32>)> {
    match ws {
        WaitStatus::Exited(p, code) if p.as_raw() == pid => Some((code, None)),
        WaitStatus::Signaled(p, sig, _) if p.as_raw() == pid => {
            Some((128 + sig as i32, Some(sig as i32)))
        }
        _ => None,
    }
}

impl Shim {
    /// Reaps every child that exited and records the ends of the main and exec processes.
    ///
    /// While a runtime command is in flight only that command and the known exec processes
    /// are reaped: the container's init stays a zombie, so that its pid still names it for
    /// the runtime (`start` opens a pidfd on it, `kill` signals it), and an exec process the
    /// command starts is reaped only once its pid is known.
    pub(super) fn reap(&mut self) -> Result<(), Error> {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            if let Some(f) = &self.in_flight {
                let pid = f.pid;
                let mut progressed = false;
                match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => {}
                    Ok(ws) => {
                        self.runtime_exited(ws);
                        progressed = true;
                    }
                    Err(e) => {
                        warn!(pid, error = %e, "wait for the runtime");
                        self.runtime_exited(WaitStatus::Exited(Pid::from_raw(pid), 255));
                        progressed = true;
                    }
                }
                progressed |= self.reap_execs();
                if !progressed {
                    return Ok(());
                }
                continue;
            }
            let ws = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return Ok(()),
                Ok(ws) => ws,
            };
            let Some(pid) = ws.pid() else { continue };
            let pid = pid.as_raw();
            if let Some((code, signal)) = exit_of(self.main.pid, ws)
                && self.main.exit.is_none()
            {
                self.main_exited(code, signal);
                continue;
            }
            let exec = self
                .execs
                .iter()
                .find(|(_, p)| p.pid == pid && p.exit.is_none())
                .map(|(k, _)| k.clone());
            if let Some(e) = exec
                && let Some((code, signal)) = exit_of(pid, ws)
            {
                self.exec_exited(e, code, signal);
            }
        }
    }

    /// Reaps exec processes that exited, by pid; true if one did.
    pub(super) fn reap_execs(&mut self) -> bool {
        let running: Vec<(String, i32)> = self
            .execs
            .iter()
            .filter(|(_, p)| p.exit.is_none())
            .map(|(k, p)| (k.clone(), p.pid))
            .collect();
        let mut any = false;
        for (id, pid) in running {
            if let Ok(ws) = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
                && let Some((code, signal)) = exit_of(pid, ws)
            {
                self.exec_exited(id, code, signal);
                any = true;
            }
        }
        any
    }

    pub(super) fn finished(&mut self, key: &Target, status: ExitStatus) {
        self.read_output(key, Stream::Stdout, true);
        self.read_output(key, Stream::Stderr, true);
        for c in self.conns.values_mut() {
            if c.attached.as_ref() == Some(key) {
                c.send_exit(&status);
            }
            if c.waits.contains(key) {
                c.waits.retain(|w| w != key);
                let json = serde_json::to_vec(&Response::Exit(status.clone())).unwrap_or_default();
                c.send(&protocol::frame(protocol::KIND_JSON, &json));
            }
        }
    }

    pub(super) fn main_exited(&mut self, exit_code: i32, signal: Option<i32>) {
        // Output first, so that the log is complete when the exit becomes visible.
        self.read_output(&Target::Main, Stream::Stdout, true);
        self.read_output(&Target::Main, Stream::Stderr, true);
        self.log.flush(Stream::Stdout);
        self.log.flush(Stream::Stderr);
        let oom_killed = self
            .oom_file
            .as_deref()
            .is_some_and(|f| oom::read_count(f) > self.oom_before);
        let status = ExitStatus {
            version: 1,
            pid: self.main.pid,
            exit_code,
            signal,
            oom_killed,
            finished_at: now_rfc3339(),
        };
        let path = files::exit_status(&self.cfg.state_dir);
        if let Err(e) = files::write_atomic(&path, &serde_json::to_vec(&status).unwrap_or_default())
        {
            warn!(error = %e, "record exit status");
        }
        info!(container_id = %self.cfg.id, exit_code, signal, oom_killed, "container exited");
        self.main.exit = Some(status.clone());
        self.main.io.stdin = None;
        self.transition(Transition::Exited);
        self.finished(&Target::Main, status);
    }

    pub(super) fn exec_exited(&mut self, exec_id: String, exit_code: i32, signal: Option<i32>) {
        let key = Target::Exec(exec_id.clone());
        let Some(p) = self.execs.get_mut(&exec_id) else {
            return;
        };
        let status = ExitStatus {
            version: 1,
            pid: p.pid,
            exit_code,
            signal,
            oom_killed: false,
            finished_at: now_rfc3339(),
        };
        p.exit = Some(status.clone());
        debug!(container_id = %self.cfg.id, exec_id, exit_code, "exec exited");
        let delivered = self
            .conns
            .values()
            .any(|c| c.attached.as_ref() == Some(&key) || c.waits.contains(&key));
        self.finished(&key, status);
        // Output after the exit (a background child holding the pipe) is not waited for.
        if let Some(p) = self.execs.get_mut(&exec_id) {
            p.io = Io::default();
        }
        if delivered {
            self.execs.remove(&exec_id);
        }
    }
}
