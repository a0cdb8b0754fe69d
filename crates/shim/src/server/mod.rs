//! The shim's single-threaded event loop: one `poll` over the container's output, its stdin,
//! the API socket and its connections, and a signalfd for SIGCHLD.
//!
//! `poll` over a list rebuilt each turn, not epoll: a shim watches a handful of descriptors
//! (three per process, one per client), so rebuilding costs less than keeping epoll
//! registrations in step with every open and close.

mod conn;
pub mod console;
pub mod crilog;
pub mod files;
pub mod oom;
mod ops;
mod reap;
pub mod runtime;
mod stdio;

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use crate::Error;
use crate::protocol::{self, ExitStatus, Request, State, Status, Transition};
use conn::Conn;
use crilog::{CriLog, LogFile, Stream};
use runtime::Runtime;
use stdio::{Io, plumbing};

/// A connection's output beyond this is dropped with the connection (main process output is
/// never held back for a slow client: the log must flow).
const MAX_CONN_BUFFER: usize = 8 << 20;
/// An exec process's output is not read while its client has this much unsent.
const EXEC_BACKPRESSURE: usize = 1 << 20;
/// Stdin bytes held for a process before its client is no longer read.
const STDIN_BACKPRESSURE: usize = 256 << 10;
/// One read of process output: a quarter of a pipe's default buffer. Small on purpose: every
/// page the shim touches stays resident.
const READ_SIZE: usize = 16 << 10;

pub struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: Option<PathBuf>,
    pub runtime: Runtime,
    /// Give the container a stdin pipe (CRI `stdin`); otherwise /dev/null.
    pub stdin: bool,
}

struct Proc {
    pid: i32,
    io: Io,
    exit: Option<ExitStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    Main,
    Exec(String),
}

#[derive(Debug, Clone, Copy)]
enum Tag {
    Listener,
    Signal,
    Out(usize, Stream),
    Stdin(usize),
    Conn(u64),
}

pub struct Shim {
    cfg: Config,
    main: Proc,
    status: Status,
    started_at: Option<String>,
    oom_file: Option<PathBuf>,
    oom_before: u64,
    log: CriLog<LogFile>,
    execs: HashMap<String, Proc>,
    conns: HashMap<u64, Conn>,
    next_conn: u64,
    listener: UnixListener,
    signals: SignalFd,
    exit_requested: bool,
    /// The buffer process output is read into, kept between reads.
    scratch: Vec<u8>,
    /// Requests waiting for the runtime, and the one running (see ops.rs).
    queue: VecDeque<(u64, Request)>,
    in_flight: Option<ops::InFlight>,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

fn process_terminal(cfg: &Config) -> Result<bool, Error> {
    let path = cfg.bundle.join("config.json");
    let text = std::fs::read(&path).map_err(Error::io("read", &path))?;
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(|e| Error::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(v["process"]["terminal"].as_bool().unwrap_or(false))
}

fn valid_exec_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !id.starts_with('.')
}

impl Shim {
    /// Binds the API socket, creates the container through the runtime, and returns the shim
    /// ready to serve. SIGCHLD must already be blocked (see [`block_sigchld`]).
    pub fn create(cfg: Config, signals: SignalFd) -> Result<Shim, Error> {
        std::fs::create_dir_all(&cfg.state_dir).map_err(Error::io("create", &cfg.state_dir))?;
        let sock = files::socket(&cfg.state_dir);
        if UnixStream::connect(&sock).is_ok() {
            return Err(Error::Remote(format!(
                "a shim already serves {}",
                sock.display()
            )));
        }
        let _ = std::fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).map_err(Error::io("bind", &sock))?;
        listener
            .set_nonblocking(true)
            .map_err(Error::io("set nonblocking", &sock))?;
        let log_file = LogFile::open(cfg.log_path.as_deref()).map_err(Error::io(
            "open log",
            cfg.log_path.clone().unwrap_or_default(),
        ))?;

        let tty = process_terminal(&cfg)?;
        let mut plumbing = plumbing(tty, cfg.stdin, cfg.state_dir.join("console.sock"))?;
        let pid_file = files::init_pid(&cfg.state_dir);
        let _ = std::fs::remove_file(&pid_file);
        // An exit recorded by an earlier shim of this directory is not this container's.
        let _ = std::fs::remove_file(files::exit_status(&cfg.state_dir));
        let stdio = plumbing.take_stdio();
        let created = cfg.runtime.create(
            &cfg.id,
            &cfg.bundle,
            &pid_file,
            plumbing.console.as_ref().map(|c| c.path()),
            stdio,
        );
        let pid = match created {
            Ok(pid) => pid,
            Err(e) => {
                let _ = std::fs::remove_file(&sock);
                return Err(plumbing.failure(e));
            }
        };
        let io = plumbing.finish()?;
        let oom_file = oom::counter_file(pid);
        let oom_before = oom_file.as_deref().map(oom::read_count).unwrap_or(0);
        info!(container_id = %cfg.id, pid, tty, oom_file = ?oom_file, "container created");
        Ok(Shim {
            log: CriLog::new(log_file),
            main: Proc {
                pid,
                io,
                exit: None,
            },
            status: Status::Created,
            started_at: None,
            oom_file,
            oom_before,
            execs: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 0,
            listener,
            signals,
            exit_requested: false,
            scratch: Vec::new(),
            queue: VecDeque::new(),
            in_flight: None,
            cfg,
        })
    }

    pub fn container_pid(&self) -> i32 {
        self.main.pid
    }

    /// Serves until a `delete` or `shutdown` request.
    pub fn run(mut self) -> Result<(), Error> {
        let mut deadline: Option<Instant> = None;
        loop {
            if self.exit_requested {
                let d = *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(1));
                if self.conns.values().all(|c| c.outbuf.is_empty()) || Instant::now() >= d {
                    break;
                }
            }
            self.turn(if self.exit_requested { 50 } else { 1000 })?;
        }
        let _ = std::fs::remove_file(files::socket(&self.cfg.state_dir));
        info!(container_id = %self.cfg.id, "shim exits");
        Ok(())
    }

    /// The processes, indexed for tags: 0 is the main process, then execs in map order.
    fn proc_keys(&self) -> Vec<Target> {
        let mut v = vec![Target::Main];
        v.extend(self.execs.keys().cloned().map(Target::Exec));
        v
    }

    fn proc(&mut self, t: &Target) -> Option<&mut Proc> {
        match t {
            Target::Main => Some(&mut self.main),
            Target::Exec(id) => self.execs.get_mut(id),
        }
    }

    fn turn(&mut self, timeout_ms: u16) -> Result<(), Error> {
        let keys = self.proc_keys();
        let mut tags = Vec::new();
        let mut fds = Vec::new();
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        tags.push(Tag::Listener);
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        tags.push(Tag::Signal);
        for (i, key) in keys.iter().enumerate() {
            let p = match key {
                Target::Main => &self.main,
                Target::Exec(id) => &self.execs[id],
            };
            let held_back = matches!(key, Target::Exec(_))
                && self.conns.values().any(|c| {
                    c.attached.as_ref() == Some(key) && c.outbuf.len() > EXEC_BACKPRESSURE
                });
            if !held_back {
                if let Some(f) = &p.io.out {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    tags.push(Tag::Out(i, Stream::Stdout));
                }
                if let Some(f) = &p.io.err {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    tags.push(Tag::Out(i, Stream::Stderr));
                }
            }
            if let Some(f) = &p.io.stdin
                && !p.io.stdin_pending.is_empty()
            {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
                tags.push(Tag::Stdin(i));
            }
        }
        for (id, c) in &self.conns {
            let stdin_full = c.attached.as_ref().is_some_and(|t| {
                let p = match t {
                    Target::Main => Some(&self.main),
                    Target::Exec(e) => self.execs.get(e),
                };
                p.is_some_and(|p| p.io.stdin_pending.len() > STDIN_BACKPRESSURE)
            });
            let mut flags = PollFlags::empty();
            if !stdin_full {
                flags |= PollFlags::POLLIN;
            }
            if !c.outbuf.is_empty() {
                flags |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.stream.as_fd(), flags));
            tags.push(Tag::Conn(*id));
        }
        match poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(()),
            Err(e) => return Err(Error::sys("poll")(e)),
        }
        let ready: Vec<(Tag, PollFlags)> = tags
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        for (tag, revents) in ready {
            match tag {
                Tag::Listener => self.accept(),
                Tag::Signal => self.reap()?,
                Tag::Out(i, s) => {
                    let key = keys[i].clone();
                    self.read_output(&key, s, false);
                }
                Tag::Stdin(i) => {
                    let key = keys[i].clone();
                    self.flush_stdin(&key);
                }
                Tag::Conn(id) => self.conn_event(id, revents),
            }
        }
        self.conns.retain(|_, c| !c.dead);
        Ok(())
    }

    /// Reads one stream once (or, when `drain`, until nothing is left) and hands the bytes
    /// to the log and the attached clients.
    fn read_output(&mut self, key: &Target, stream: Stream, drain: bool) {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(READ_SIZE, 0);
        self.read_output_with(key, stream, drain, &mut buf);
        self.scratch = buf;
    }

    fn read_output_with(&mut self, key: &Target, stream: Stream, drain: bool, buf: &mut [u8]) {
        loop {
            let Some(p) = self.proc(key) else { return };
            let slot = match stream {
                Stream::Stdout => &mut p.io.out,
                Stream::Stderr => &mut p.io.err,
            };
            let Some(f) = slot else { return };
            match f.read(buf) {
                Ok(0) => {
                    *slot = None;
                    if *key == Target::Main {
                        self.log.flush(stream);
                    }
                    return;
                }
                Ok(n) => {
                    self.output(key, stream, &buf[..n]);
                    if !drain {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // EIO: the pty's last slave closed.
                    if e.raw_os_error() != Some(libc::EIO) {
                        warn!(error = %e, "read process output");
                    }
                    *slot = None;
                    if *key == Target::Main {
                        self.log.flush(stream);
                    }
                    return;
                }
            }
        }
    }

    fn output(&mut self, key: &Target, stream: Stream, data: &[u8]) {
        if *key == Target::Main {
            self.log.write(stream, data);
        }
        let kind = match stream {
            Stream::Stdout => protocol::KIND_STDOUT,
            Stream::Stderr => protocol::KIND_STDERR,
        };
        let frame = protocol::frame(kind, data);
        for c in self.conns.values_mut() {
            if c.attached.as_ref() == Some(key) && !c.dead {
                c.send(&frame);
            }
        }
    }

    fn flush_stdin(&mut self, key: &Target) {
        let Some(p) = self.proc(key) else { return };
        let io = &mut p.io;
        if let Some(f) = &mut io.stdin {
            while !io.stdin_pending.is_empty() {
                match f.write(&io.stdin_pending) {
                    Ok(n) => {
                        io.stdin_pending.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        // The reader is gone: nothing more will be read.
                        io.stdin_pending.clear();
                        io.stdin = None;
                        return;
                    }
                }
            }
        } else {
            io.stdin_pending.clear();
        }
        if io.stdin_close_after && io.stdin_pending.is_empty() {
            io.stdin = None;
        }
    }

    fn transition(&mut self, event: Transition) {
        if let Some(next) = self.status.update(event) {
            debug!(container_id = %self.cfg.id, from = ?self.status, to = ?next, "status");
            self.status = next;
        }
    }

    fn state(&self) -> State {
        State {
            id: self.cfg.id.clone(),
            pid: self.main.pid,
            shim_pid: std::process::id() as i32,
            status: self.status,
            started_at: self.started_at.clone(),
            exit: self.main.exit.clone(),
        }
    }

    fn kill_exec(&mut self, exec_id: &str, signal: i32) -> Result<(), Error> {
        let p = self
            .execs
            .get(exec_id)
            .ok_or_else(|| Error::Remote(format!("no exec {exec_id}")))?;
        if p.exit.is_some() {
            return Ok(());
        }
        let sig = Signal::try_from(signal).map_err(Error::sys("signal"))?;
        // The exec process is our child and not yet reaped: its pid cannot be reused.
        nix::sys::signal::kill(Pid::from_raw(p.pid), sig).map_err(Error::sys("kill"))
    }

    fn resize(&mut self, exec_id: Option<String>, width: u16, height: u16) -> Result<(), Error> {
        let target = exec_id.map_or(Target::Main, Target::Exec);
        let p = self
            .proc(&target)
            .ok_or_else(|| Error::Remote("no such exec".into()))?;
        let tty =
            p.io.tty
                .as_ref()
                .ok_or_else(|| Error::Remote("process has no terminal".into()))?;
        let size = rustix::termios::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(tty, size).map_err(|e| Error::Sys {
            what: "set terminal size",
            source: e.into(),
        })
    }
}

/// Blocks SIGCHLD and returns a signalfd for it. Call before any child is started.
pub fn block_sigchld() -> Result<SignalFd, Error> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(Error::sys("block SIGCHLD"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(Error::sys("signalfd"))
}
