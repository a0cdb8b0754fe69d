//! The shim's single-threaded event loop: one `poll` over the container's output, its stdin,
//! the API socket and its connections, and a signalfd for SIGCHLD.
//!
//! `poll` over a list rebuilt each turn, not epoll: a shim watches a handful of descriptors
//! (three per process, one per client), so rebuilding costs less than keeping epoll
//! registrations in step with every open and close.

pub mod console;
pub mod crilog;
pub mod files;
pub mod oom;
mod ops;
pub mod runtime;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use crate::Error;
use crate::protocol::{self, ExitStatus, Request, Response, State, Status, Transition};
use console::ConsoleSocket;
use crilog::{CriLog, LogFile, Stream};
use runtime::{ProcStdio, Runtime};

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

/// The stdio of one process as the shim holds it.
#[derive(Default)]
struct Io {
    /// stdout pipe, or the pty master.
    out: Option<File>,
    err: Option<File>,
    stdin: Option<File>,
    stdin_pending: Vec<u8>,
    stdin_close_after: bool,
    /// The pty master, for resize.
    tty: Option<File>,
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

struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    attached: Option<Target>,
    waits: Vec<Target>,
    dead: bool,
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

fn set_nonblocking(fd: impl AsFd) -> Result<(), Error> {
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(Error::sys("fcntl F_GETFL"))?;
    fcntl(
        &fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(Error::sys("fcntl F_SETFL"))?;
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("pipe2"))
}

fn reader(fd: OwnedFd) -> Result<File, Error> {
    set_nonblocking(&fd)?;
    Ok(File::from(fd))
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// Reads what is there without waiting; for the error text a failed runtime left on a pipe.
fn read_available(f: &mut File) -> String {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        v.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&v).trim().to_owned()
}

fn with_stderr(e: Error, stderr: String) -> Error {
    match e {
        Error::Runtime { op, status, .. } => Error::Runtime { op, status, stderr },
        e => e,
    }
}

/// Process stdio: pipes (the shim keeps the read ends and the stdin write end) or, with a
/// terminal, a console socket the runtime sends the pty master to.
struct Plumbing {
    stdio: ProcStdio,
    io: Io,
    console: Option<ConsoleSocket>,
    /// The runtime's stderr when it is not the process's (terminal case).
    runtime_err: Option<File>,
}

fn plumbing(tty: bool, stdin: bool, console_path: PathBuf) -> Result<Plumbing, Error> {
    let mut io = Io::default();
    if tty {
        let (r, w) = pipe()?;
        return Ok(Plumbing {
            stdio: ProcStdio {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::from(w),
            },
            io,
            console: Some(ConsoleSocket::bind(&console_path)?),
            runtime_err: Some(reader(r)?),
        });
    }
    let stdin = if stdin {
        let (r, w) = pipe()?;
        set_nonblocking(&w)?;
        io.stdin = Some(File::from(w));
        Stdio::from(r)
    } else {
        Stdio::null()
    };
    let (or, ow) = pipe()?;
    let (er, ew) = pipe()?;
    io.out = Some(reader(or)?);
    io.err = Some(reader(er)?);
    Ok(Plumbing {
        stdio: ProcStdio {
            stdin,
            stdout: Stdio::from(ow),
            stderr: Stdio::from(ew),
        },
        io,
        console: None,
        runtime_err: None,
    })
}

impl Plumbing {
    /// The process's side of the stdio, for the runtime command; the shim keeps its side.
    fn take_stdio(&mut self) -> ProcStdio {
        std::mem::replace(
            &mut self.stdio,
            ProcStdio {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
            },
        )
    }

    /// After the runtime returned: takes the pty master, if any.
    fn finish(mut self) -> Result<Io, Error> {
        if let Some(c) = &self.console {
            let master = c.receive_master()?;
            set_nonblocking(&master)?;
            let master = File::from(master);
            self.io.stdin = Some(master.try_clone().map_err(Error::io("dup", c.path()))?);
            self.io.tty = Some(master.try_clone().map_err(Error::io("dup", c.path()))?);
            self.io.out = Some(master);
        }
        Ok(self.io)
    }

    fn failure(&mut self, e: Error) -> Error {
        let text = match (&mut self.runtime_err, &mut self.io.err) {
            (Some(f), _) | (None, Some(f)) => read_available(f),
            _ => String::new(),
        };
        with_stderr(e, text)
    }
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

fn exit_of(pid: i32, ws: WaitStatus) -> Option<(i32, Option<i32>)> {
    match ws {
        WaitStatus::Exited(p, code) if p.as_raw() == pid => Some((code, None)),
        WaitStatus::Signaled(p, sig, _) if p.as_raw() == pid => {
            Some((128 + sig as i32, Some(sig as i32)))
        }
        _ => None,
    }
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

    fn accept(&mut self) {
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

    fn conn_event(&mut self, id: u64, revents: PollFlags) {
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

    fn respond(&mut self, conn: u64, resp: &Response) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let json = serde_json::to_vec(resp).unwrap_or_default();
            c.send(&protocol::frame(protocol::KIND_JSON, &json));
        }
    }

    fn request(&mut self, conn: u64, req: Request) -> Option<Response> {
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

    /// Reaps every child that exited and records the ends of the main and exec processes.
    ///
    /// While a runtime command is in flight only that command and the known exec processes
    /// are reaped: the container's init stays a zombie, so that its pid still names it for
    /// the runtime (`start` opens a pidfd on it, `kill` signals it), and an exec process the
    /// command starts is reaped only once its pid is known.
    fn reap(&mut self) -> Result<(), Error> {
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
    fn reap_execs(&mut self) -> bool {
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

    fn finished(&mut self, key: &Target, status: ExitStatus) {
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

    fn main_exited(&mut self, exit_code: i32, signal: Option<i32>) {
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

    fn exec_exited(&mut self, exec_id: String, exit_code: i32, signal: Option<i32>) {
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

impl Conn {
    fn send(&mut self, frame: &[u8]) {
        if self.outbuf.len() + frame.len() > MAX_CONN_BUFFER {
            warn!("client too slow: dropped");
            self.dead = true;
            return;
        }
        self.outbuf.extend_from_slice(frame);
        self.flush();
    }

    fn send_exit(&mut self, status: &ExitStatus) {
        let json = serde_json::to_vec(status).unwrap_or_default();
        self.send(&protocol::frame(protocol::KIND_EXIT, &json));
    }

    fn flush(&mut self) {
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

/// Blocks SIGCHLD and returns a signalfd for it. Call before any child is started.
pub fn block_sigchld() -> Result<SignalFd, Error> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(Error::sys("block SIGCHLD"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(Error::sys("signalfd"))
}
