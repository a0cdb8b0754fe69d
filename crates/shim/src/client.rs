//! A blocking client of the shim's API, and the function that starts a shim.
//!
//! berthd (tokio) calls it through `spawn_blocking`; an attached [`Session`] can be split
//! with [`Session::stdin_writer`] to feed stdin from one thread while another reads output.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::Error;
use crate::protocol::{self, ExitStatus, Request, Response, State};

/// The API socket of the shim whose state directory is `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    crate::server::files::socket(state_dir)
}

/// The exit status the shim recorded in `state_dir`, if the container has exited: readable
/// with no shim running.
pub fn recorded_exit(state_dir: &Path) -> Result<Option<ExitStatus>, Error> {
    let path = crate::server::files::exit_status(state_dir);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Protocol(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// What a restarted berthd finds of a shim it started before.
pub enum Found {
    /// The shim serves its socket.
    Live { client: Client, state: State },
    /// No shim answers, but the container's exit was recorded.
    Exited(ExitStatus),
    /// Neither: the shim is gone and recorded no exit (it was killed, or never created the
    /// container). The caller asks the runtime (`state`, `delete --force`).
    Lost,
}

/// Re-attaches to the shim of `state_dir`, or reads what it left.
///
/// Assumptions a restarted berthd may rely on:
/// - a shim that serves its socket answers `state` at once (the loop never blocks on the
///   runtime), so a connect that succeeds and a `state` that fails mean the shim is dying;
/// - exit.json is written (atomically) before any client hears of the exit, and only by the
///   shim of that directory, so a record there is final;
/// - no exit.json and no shim means the shim died first: the container may still run, and
///   only the runtime can tell.
pub fn find(state_dir: &Path) -> Result<Found, Error> {
    if let Ok(mut client) = Client::connect(state_dir)
        && let Ok(state) = client.state()
    {
        return Ok(Found::Live { client, state });
    }
    Ok(match recorded_exit(state_dir)? {
        Some(e) => Found::Exited(e),
        None => Found::Lost,
    })
}

fn proto_err(e: std::io::Error) -> Error {
    Error::Protocol(e.to_string())
}

fn send(stream: &mut UnixStream, req: &Request) -> Result<(), Error> {
    let json = serde_json::to_vec(req).map_err(|e| Error::Protocol(e.to_string()))?;
    protocol::write_frame(stream, protocol::KIND_JSON, &json).map_err(proto_err)
}

fn read_response(stream: &mut UnixStream) -> Result<Response, Error> {
    loop {
        match protocol::read_frame(stream).map_err(proto_err)? {
            None => return Err(Error::Protocol("shim closed the connection".into())),
            Some((protocol::KIND_JSON, p)) => {
                return serde_json::from_slice(&p).map_err(|e| Error::Protocol(e.to_string()));
            }
            Some(_) => continue,
        }
    }
}

fn ok(r: Response) -> Result<Response, Error> {
    match r {
        Response::Error { message } => Err(Error::Remote(message)),
        r => Ok(r),
    }
}

fn unexpected(r: Response) -> Error {
    Error::Protocol(format!("unexpected response {r:?}"))
}

/// One connection to a shim.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the shim of `state_dir`.
    pub fn connect(state_dir: &Path) -> Result<Client, Error> {
        let path = socket_path(state_dir);
        let stream = UnixStream::connect(&path).map_err(Error::io("connect", &path))?;
        Ok(Client { stream })
    }

    /// Sends a request and reads its response (an `Error` response becomes `Err`).
    pub fn call(&mut self, req: &Request) -> Result<Response, Error> {
        send(&mut self.stream, req)?;
        ok(read_response(&mut self.stream)?)
    }

    fn call_ok(&mut self, req: &Request) -> Result<(), Error> {
        match self.call(req)? {
            Response::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    pub fn state(&mut self) -> Result<State, Error> {
        match self.call(&Request::State)? {
            Response::State(s) => Ok(s),
            r => Err(unexpected(r)),
        }
    }

    pub fn start(&mut self) -> Result<(), Error> {
        self.call_ok(&Request::Start)
    }

    pub fn kill(&mut self, signal: i32, all: bool) -> Result<(), Error> {
        self.call_ok(&Request::Kill {
            signal,
            all,
            exec_id: None,
        })
    }

    pub fn kill_exec(&mut self, exec_id: &str, signal: i32) -> Result<(), Error> {
        self.call_ok(&Request::Kill {
            signal,
            all: false,
            exec_id: Some(exec_id.to_owned()),
        })
    }

    pub fn resize(&mut self, exec_id: Option<&str>, width: u16, height: u16) -> Result<(), Error> {
        self.call_ok(&Request::Resize {
            exec_id: exec_id.map(str::to_owned),
            width,
            height,
        })
    }

    pub fn reopen_log(&mut self) -> Result<(), Error> {
        self.call_ok(&Request::ReopenLog)
    }

    /// Blocks until the main process (or `exec_id`) has exited.
    pub fn wait(&mut self, exec_id: Option<&str>) -> Result<ExitStatus, Error> {
        match self.call(&Request::Wait {
            exec_id: exec_id.map(str::to_owned),
        })? {
            Response::Exit(e) => Ok(e),
            r => Err(unexpected(r)),
        }
    }

    /// Deletes the container through the runtime; the shim then exits.
    pub fn delete(&mut self, force: bool) -> Result<(), Error> {
        self.call_ok(&Request::Delete { force })
    }

    pub fn shutdown(&mut self) -> Result<(), Error> {
        self.call_ok(&Request::Shutdown)
    }

    /// Starts a process in the container; the connection becomes its session.
    pub fn exec(
        mut self,
        exec_id: &str,
        process: serde_json::Value,
        tty: bool,
        stdin: bool,
    ) -> Result<(i32, Session), Error> {
        match self.call(&Request::Exec {
            exec_id: exec_id.to_owned(),
            process,
            tty,
            stdin,
        })? {
            Response::Exec { pid } => Ok((
                pid,
                Session {
                    stream: self.stream,
                    exec_id: Some(exec_id.to_owned()),
                },
            )),
            r => Err(unexpected(r)),
        }
    }

    /// Attaches to the main process's stdio.
    pub fn attach(mut self) -> Result<Session, Error> {
        match self.call(&Request::Attach)? {
            Response::Ok => Ok(Session {
                stream: self.stream,
                exec_id: None,
            }),
            r => Err(unexpected(r)),
        }
    }
}

/// What an attached connection receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process exited; its output before the exit has been delivered.
    Exit(ExitStatus),
    /// The answer to a request sent on the session (resize).
    Response(Response),
}

/// A connection attached to a process.
pub struct Session {
    stream: UnixStream,
    exec_id: Option<String>,
}

impl Session {
    /// The next event; None when the shim closed the connection.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        let Some((kind, payload)) = protocol::read_frame(&mut self.stream).map_err(proto_err)?
        else {
            return Ok(None);
        };
        let json_err = |e: serde_json::Error| Error::Protocol(e.to_string());
        Ok(Some(match kind {
            protocol::KIND_STDOUT => Event::Stdout(payload),
            protocol::KIND_STDERR => Event::Stderr(payload),
            protocol::KIND_EXIT => Event::Exit(serde_json::from_slice(&payload).map_err(json_err)?),
            protocol::KIND_JSON => {
                Event::Response(serde_json::from_slice(&payload).map_err(json_err)?)
            }
            k => return Err(Error::Protocol(format!("unknown frame kind {k}"))),
        }))
    }

    /// A second handle on the connection for writing stdin and resizes from another thread.
    pub fn stdin_writer(&self) -> Result<SessionWriter, Error> {
        Ok(SessionWriter {
            stream: self.stream.try_clone().map_err(proto_err)?,
            exec_id: self.exec_id.clone(),
        })
    }

    /// Reads to the exit: (status, stdout, stderr). For ExecSync.
    pub fn collect(mut self) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), Error> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match self.next_event()? {
                Some(Event::Stdout(d)) => out.extend(d),
                Some(Event::Stderr(d)) => err.extend(d),
                Some(Event::Exit(s)) => return Ok((s, out, err)),
                Some(Event::Response(_)) => {}
                None => return Err(Error::Protocol("shim closed the session".into())),
            }
        }
    }
}

pub struct SessionWriter {
    stream: UnixStream,
    exec_id: Option<String>,
}

impl SessionWriter {
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<(), Error> {
        for chunk in data.chunks(64 * 1024) {
            protocol::write_frame(&mut self.stream, protocol::KIND_STDIN, chunk)
                .map_err(proto_err)?;
        }
        Ok(())
    }

    pub fn close_stdin(&mut self) -> Result<(), Error> {
        protocol::write_frame(&mut self.stream, protocol::KIND_STDIN_CLOSE, &[]).map_err(proto_err)
    }

    /// Resizes the session's terminal; the answer arrives as an [`Event::Response`].
    pub fn resize(&mut self, width: u16, height: u16) -> Result<(), Error> {
        send(
            &mut self.stream,
            &Request::Resize {
                exec_id: self.exec_id.clone(),
                width,
                height,
            },
        )
    }
}

/// How to start a shim.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    /// The berth-shim binary.
    pub binary: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: Option<PathBuf>,
    pub runtime: Option<PathBuf>,
    pub runtime_root: Option<PathBuf>,
    pub stdin: bool,
    /// More flags for the shim (`--log-level debug`, `--log-format json`).
    pub extra_args: Vec<String>,
}

/// What a started shim reports.
#[derive(Debug, Clone, Deserialize)]
pub struct Started {
    pub shim_pid: i32,
    /// The container's pid (created, not started).
    pub pid: i32,
}

#[derive(Deserialize)]
struct Ready {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(flatten)]
    started: Option<Started>,
}

/// Starts a shim, which creates the container; returns once it serves its socket. The shim
/// detaches: it outlives the caller.
pub fn start_shim(o: &ShimOptions) -> Result<Started, Error> {
    let mut c = Command::new(&o.binary);
    c.arg("--id")
        .arg(&o.id)
        .arg("--bundle")
        .arg(&o.bundle)
        .arg("--state-dir")
        .arg(&o.state_dir);
    if let Some(p) = &o.log_path {
        c.arg("--log-path").arg(p);
    }
    if let Some(p) = &o.runtime {
        c.arg("--runtime").arg(p);
    }
    if let Some(p) = &o.runtime_root {
        c.arg("--runtime-root").arg(p);
    }
    if o.stdin {
        c.arg("--stdin");
    }
    c.args(&o.extra_args);
    let out = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Spawn {
            binary: o.binary.clone(),
            source: e,
        })?;
    let line = BufReader::new(&out.stdout[..])
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    match serde_json::from_str::<Ready>(&line) {
        Ok(Ready {
            ok: true,
            started: Some(s),
            ..
        }) => Ok(s),
        Ok(r) => Err(Error::Remote(r.error.unwrap_or_default())),
        Err(_) => Err(Error::Remote(format!(
            "shim failed to start ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}
