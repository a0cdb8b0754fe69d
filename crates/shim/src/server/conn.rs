//! Client connections: accepting, reading frames, answering requests, buffered writes.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

use nix::poll::PollFlags;
use tracing::{debug, warn};

use super::{MAX_CONN_BUFFER, Proc, Shim, Target};
use crate::Error;
use crate::protocol::{self, ExitStatus, Request, Response};

pub(super) struct Conn {
    pub(super) stream: UnixStream,
    pub(super) inbuf: Vec<u8>,
    pub(super) outbuf: Vec<u8>,
    pub(super) attached: Option<Target>,
    pub(super) waits: Vec<Target>,
    pub(super) dead: bool,
}

impl Conn {
    pub(super) fn send(&mut self, frame: &[u8]) {
        if self.outbuf.len() + frame.len() > MAX_CONN_BUFFER {
            warn!("client too slow: dropped");
            self.dead = true;
            return;
        }
        self.outbuf.extend_from_slice(frame);
        self.flush();
    }

    pub(super) fn send_exit(&mut self, status: &ExitStatus) {
        let json = serde_json::to_vec(status).unwrap_or_default();
        self.send(&protocol::frame(protocol::KIND_EXIT, &json));
    }

    pub(super) fn flush(&mut self) {
        while !self.outbuf.is_empty() {
            match self.stream.write(&self.outbuf) {
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    self.outbuf.clear();
                    return;
                }
            }
        }
    }
}

impl Shim {
    pub(super) fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next_conn += 1;
                    self.conns.insert(
                        self.next_conn,
                        Conn {
                            stream,
                            inbuf: Vec::new(),
                            outbuf: Vec::new(),
                            attached: None,
                            waits: Vec::new(),
                            dead: false,
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(error = %e, "accept");
                    return;
                }
            }
        }
    }

    pub(super) fn conn_event(&mut self, id: u64, revents: PollFlags) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if revents.contains(PollFlags::POLLOUT) {
            c.flush();
        }
        if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let mut buf = [0u8; 8 * 1024];
            match c.stream.read(&mut buf) {
                Ok(0) => c.dead = true,
                Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => c.dead = true,
            }
        }
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.dead {
                return;
            }
            let frame = match protocol::take_frame(&mut c.inbuf) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    warn!(error = %e, "client protocol error");
                    c.dead = true;
                    return;
                }
            };
            let attached = c.attached.clone();
            match frame {
                (protocol::KIND_JSON, payload) => {
                    let resp = match serde_json::from_slice::<Request>(&payload) {
                        Ok(req) => self.request(id, req),
                        Err(e) => Some(Response::Error {
                            message: format!("bad request: {e}"),
                        }),
                    };
                    if let Some(resp) = resp {
                        self.respond(id, &resp);
                    }
                }
                (protocol::KIND_STDIN, data) => {
                    if let Some(t) = attached
                        && let Some(p) = self.proc(&t)
                        && p.io.stdin.is_some()
                    {
                        p.io.stdin_pending.extend_from_slice(&data);
                        self.flush_stdin(&t);
                    }
                }
                (protocol::KIND_STDIN_CLOSE, _) => {
                    if let Some(t) = attached
                        && let Some(p) = self.proc(&t)
                    {
                        p.io.stdin_close_after = true;
                        self.flush_stdin(&t);
                    }
                }
                (kind, _) => {
                    warn!(kind, "unknown frame kind from client");
                }
            }
        }
    }

    pub(super) fn respond(&mut self, conn: u64, resp: &Response) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let json = serde_json::to_vec(resp).unwrap_or_default();
            c.send(&protocol::frame(protocol::KIND_JSON, &json));
        }
    }

    pub(super) fn request(&mut self, conn: u64, req: Request) -> Option<Response> {
        debug!(container_id = %self.cfg.id, request = ?req, "request");
        let result = match req {
            Request::State => Ok(Response::State(self.state())),
            Request::Kill {
                signal,
                exec_id: Some(e),
                ..
            } => self.kill_exec(&e, signal).map(|()| Response::Ok),
            req @ (Request::Start
            | Request::Kill { .. }
            | Request::Exec { .. }
            | Request::Delete { .. }) => {
                self.queue_runtime(conn, req);
                return None;
            }
            Request::Attach => {
                let exit = self.main.exit.clone();
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.attached = Some(Target::Main);
                }
                self.respond(conn, &Response::Ok);
                if let Some(exit) = exit
                    && let Some(c) = self.conns.get_mut(&conn)
                {
                    c.send_exit(&exit);
                }
                return None;
            }
            Request::Resize {
                exec_id,
                width,
                height,
            } => self.resize(exec_id, width, height).map(|()| Response::Ok),
            Request::ReopenLog => {
                self.log
                    .sink_mut()
                    .reopen()
                    .map(|()| Response::Ok)
                    .map_err(Error::io(
                        "reopen log",
                        self.cfg.log_path.clone().unwrap_or_default(),
                    ))
            }
            Request::Wait { exec_id } => {
                let target = exec_id.map_or(Target::Main, Target::Exec);
                match self.proc(&target) {
                    None => Err(Error::Remote("no such exec".into())),
                    Some(Proc {
                        exit: Some(exit), ..
                    }) => {
                        let exit = exit.clone();
                        // An exec's exit is kept until someone has it, then forgotten.
                        if let Target::Exec(id) = &target {
                            self.execs.remove(id);
                        }
                        Ok(Response::Exit(exit))
                    }
                    Some(_) => {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.waits.push(target);
                        }
                        return None;
                    }
                }
            }
            Request::Shutdown => {
                self.exit_requested = true;
                Ok(Response::Ok)
            }
        };
        Some(result.unwrap_or_else(|e| Response::Error {
            message: e.to_string(),
        }))
    }
}
