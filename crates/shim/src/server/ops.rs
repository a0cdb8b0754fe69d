//! Requests that run the runtime (start, kill, exec, delete), without blocking the loop.
//!
//! They are queued and run one at a time, in arrival order: the runtime command is spawned,
//! the loop goes on serving output and other clients, and when SIGCHLD reaps the command the
//! request is finished and answered. One at a time keeps their order what the client sent
//! (start before exec, kill before delete) and needs no locking against the runtime's state.
//!
//! While a command is in flight the loop reaps only it and known exec processes (see
//! `Shim::reap`): an exec process that exits before its runtime command is reaped waits as a
//! zombie until its pid has been read from the pid file.

use std::fs::File;
use std::path::PathBuf;

use nix::sys::wait::WaitStatus;
use tracing::info;

use super::stdio::{Plumbing, plumbing, read_available};
use super::{Proc, Shim, Target, now_rfc3339};
use crate::Error;
use crate::protocol::{Request, Response, Transition};

pub(super) enum Op {
    Start,
    Kill,
    Delete,
    Exec {
        exec_id: String,
        plumbing: Box<Plumbing>,
        pid_file: PathBuf,
        process_file: PathBuf,
    },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Kill => "kill",
            Op::Delete => "delete",
            Op::Exec { .. } => "exec",
        }
    }
}

/// The runtime command being waited for.
pub(super) struct InFlight {
    pub pid: i32,
    conn: u64,
    op: Op,
    /// The command's stderr (start, kill, delete; an exec's goes to the process's stderr).
    stderr: Option<File>,
}

fn describe(ws: WaitStatus) -> (bool, String) {
    match ws {
        WaitStatus::Exited(_, 0) => (true, "exit status: 0".into()),
        WaitStatus::Exited(_, c) => (false, format!("exit status: {c}")),
        WaitStatus::Signaled(_, s, _) => (false, format!("signal: {s}")),
        other => (false, format!("{other:?}")),
    }
}

impl Shim {
    /// Queues a request that runs the runtime; it is answered when the command is done.
    pub(super) fn queue_runtime(&mut self, conn: u64, req: Request) {
        self.queue.push_back((conn, req));
        self.pump();
    }

    /// Starts queued requests until one is in flight.
    pub(super) fn pump(&mut self) {
        while self.in_flight.is_none() {
            let Some((conn, req)) = self.queue.pop_front() else {
                return;
            };
            if self.exit_requested {
                self.respond(
                    conn,
                    &Response::Error {
                        message: "shim is exiting".into(),
                    },
                );
                continue;
            }
            match self.begin(conn, req) {
                Ok(Some(f)) => self.in_flight = Some(f),
                Ok(None) => {}
                Err(e) => self.respond(
                    conn,
                    &Response::Error {
                        message: e.to_string(),
                    },
                ),
            }
        }
    }

    /// Spawns the command for `req`, or answers at once (None) when none is needed.
    fn begin(&mut self, conn: u64, req: Request) -> Result<Option<InFlight>, Error> {
        let id = self.cfg.id.clone();
        let simple = |shim: &Shim, op: Op, args: Vec<String>| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (pid, stderr) = shim.cfg.runtime.spawn(&args)?;
            Ok(Some(InFlight {
                pid,
                conn,
                op,
                stderr: Some(stderr),
            }))
        };
        match req {
            Request::Start => {
                if !self.status.can_start() {
                    return Err(Error::Remote(format!(
                        "container is {}, not created",
                        self.status
                    )));
                }
                simple(self, Op::Start, super::runtime::start_args(&id))
            }
            Request::Kill { signal, all, .. } => {
                if self.main.exit.is_some() {
                    self.respond(conn, &Response::Ok);
                    return Ok(None);
                }
                simple(self, Op::Kill, super::runtime::kill_args(&id, signal, all))
            }
            Request::Delete { force } => {
                simple(self, Op::Delete, super::runtime::delete_args(&id, force))
            }
            Request::Exec {
                exec_id,
                process,
                tty,
                stdin,
            } => self.begin_exec(conn, exec_id, process, tty, stdin),
            other => Err(Error::Remote(format!("{other:?} does not run the runtime"))),
        }
    }

    fn begin_exec(
        &mut self,
        conn: u64,
        exec_id: String,
        mut process: serde_json::Value,
        tty: bool,
        stdin: bool,
    ) -> Result<Option<InFlight>, Error> {
        if !super::valid_exec_id(&exec_id) {
            return Err(Error::Remote(format!("invalid exec id {exec_id:?}")));
        }
        if self.execs.contains_key(&exec_id) {
            return Err(Error::Remote(format!("exec {exec_id} exists")));
        }
        if !self.status.can_exec() {
            return Err(Error::Remote(format!(
                "container is {}, not running",
                self.status
            )));
        }
        if !process.is_object() {
            return Err(Error::Remote("process must be an object".into()));
        }
        process["terminal"] = serde_json::Value::Bool(tty);
        let dir = &self.cfg.state_dir;
        let process_file = dir.join(format!("exec-{exec_id}.json"));
        let pid_file = dir.join(format!("exec-{exec_id}.pid"));
        let _ = std::fs::remove_file(&pid_file);
        std::fs::write(
            &process_file,
            serde_json::to_vec(&process).unwrap_or_default(),
        )
        .map_err(Error::io("write", &process_file))?;
        let mut plumbing = plumbing(tty, stdin, dir.join("exec-console.sock"))?;
        let stdio = plumbing.take_stdio();
        let pid = self.cfg.runtime.spawn_exec(
            &self.cfg.id,
            &process_file,
            &pid_file,
            plumbing.console.as_ref().map(|c| c.path()),
            stdio,
        )?;
        Ok(Some(InFlight {
            pid,
            conn,
            op: Op::Exec {
                exec_id,
                plumbing: Box::new(plumbing),
                pid_file,
                process_file,
            },
            stderr: None,
        }))
    }

    /// The runtime command in flight exited: finish and answer its request, start the next.
    pub(super) fn runtime_exited(&mut self, ws: WaitStatus) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        let (ok, status) = describe(ws);
        let op = f.op.name();
        let failed = |stderr: String| Error::Runtime { op, status, stderr };
        let conn = f.conn;
        let result = match f.op {
            Op::Exec {
                exec_id,
                plumbing,
                pid_file,
                process_file,
            } => {
                let _ = std::fs::remove_file(&process_file);
                self.finish_exec(conn, exec_id, *plumbing, &pid_file, ok, failed)
            }
            _ if !ok => Err(failed(
                f.stderr
                    .map(|mut e| read_available(&mut e))
                    .unwrap_or_default(),
            )),
            Op::Start => {
                self.transition(Transition::Started);
                self.started_at = Some(now_rfc3339());
                info!(container_id = %self.cfg.id, "container started");
                Ok(Some(Response::Ok))
            }
            Op::Kill => Ok(Some(Response::Ok)),
            Op::Delete => {
                self.exit_requested = true;
                Ok(Some(Response::Ok))
            }
        };
        match result {
            Ok(Some(r)) => self.respond(conn, &r),
            Ok(None) => {}
            Err(e) => self.respond(
                conn,
                &Response::Error {
                    message: e.to_string(),
                },
            ),
        }
        self.pump();
    }

    fn finish_exec(
        &mut self,
        conn: u64,
        exec_id: String,
        mut plumbing: Plumbing,
        pid_file: &std::path::Path,
        ok: bool,
        failed: impl FnOnce(String) -> Error,
    ) -> Result<Option<Response>, Error> {
        if !ok {
            let _ = std::fs::remove_file(pid_file);
            return Err(plumbing.failure(failed(String::new())));
        }
        let pid = super::runtime::read_pid(pid_file);
        let _ = std::fs::remove_file(pid_file);
        let pid = pid?;
        let io = plumbing.finish()?;
        info!(container_id = %self.cfg.id, exec_id, pid, "exec started");
        self.execs.insert(
            exec_id.clone(),
            Proc {
                pid,
                io,
                exit: None,
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.attached = Some(Target::Exec(exec_id.clone()));
        }
        self.respond(conn, &Response::Exec { pid });
        Ok(None)
    }
}
