//! The remotecommand protocols: exec and attach, whatever carries them.
//!
//! A transport (SPDY streams, WebSocket channels) turns its connection into an [`Io`]:
//! receivers for stdin and resize, a sender of [`Output`] for stdout, stderr and the error
//! channel, and a [`Gone`] for the client's departure. [`serve`] does the rest: starts the
//! exec (or attaches), pumps bytes both ways, and ends with the status on the error
//! channel.
//!
//! Versions (the `X-Stream-Protocol-Version` or `Sec-WebSocket-Protocol` value):
//!
//! | version | name | difference |
//! | --- | --- | --- |
//! | 1 | `channel.k8s.io` | error channel carries the failure message as text |
//! | 2 | `v2.channel.k8s.io` | as 1 |
//! | 3 | `v3.channel.k8s.io` | adds the resize channel |
//! | 4 | `v4.channel.k8s.io` | error channel carries a JSON `Status` (exit code in its causes) |
//! | 5 | `v5.channel.k8s.io` | as 4; over WebSocket, channel 255 closes a channel |

use std::sync::Arc;
use std::time::Duration;

use berth_sandbox::Sandboxes;
use berth_shim::async_client::SessionWriter;
use berth_shim::client::Event;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::Gone;
use super::spdy::{self, Connection, Stream};
use super::tokens::Target;

/// After the client is gone, an exec gets this long to exit on its own (its stdin was
/// closed) before it is killed.
pub const EXEC_GRACE: Duration = Duration::from_secs(5);

/// How long a SPDY client has to open its streams.
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl Version {
    /// Preference order: the newest the client offers wins.
    pub const ALL: [Version; 5] = [
        Version::V5,
        Version::V4,
        Version::V3,
        Version::V2,
        Version::V1,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Version::V1 => "channel.k8s.io",
            Version::V2 => "v2.channel.k8s.io",
            Version::V3 => "v3.channel.k8s.io",
            Version::V4 => "v4.channel.k8s.io",
            Version::V5 => "v5.channel.k8s.io",
        }
    }

    pub fn has_resize(self) -> bool {
        self >= Version::V3
    }

    pub fn json_status(self) -> bool {
        self >= Version::V4
    }

    /// The best version among those the client offered.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str> + Clone) -> Option<Version> {
        Version::ALL
            .into_iter()
            .find(|v| offered.clone().into_iter().any(|o| o == v.name()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stdout,
    Stderr,
    Error,
}

#[derive(Debug)]
pub enum Output {
    Data(Channel, Vec<u8>),
    Close(Channel),
}

/// A transport's side of one exec or attach.
pub struct Io {
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    pub resize: Option<mpsc::Receiver<Vec<u8>>>,
    pub out: mpsc::Sender<Output>,
    pub gone: Gone,
}

/// How the session ended, for the error channel.
enum Outcome {
    /// The process exited with this code (0 is success).
    Exited {
        code: i32,
    },
    /// Attach ended without an exit (the client left or the shim closed).
    Detached,
    Failed(String),
}

/// Runs `target` (exec or attach) over `io` and writes the status.
pub async fn serve(sandboxes: Arc<Sandboxes>, target: Target, version: Version, io: Io) {
    let out = io.out.clone();
    let outcome = match &target {
        Target::Exec { .. } => exec(&sandboxes, &target, io).await,
        Target::Attach { .. } => attach(&sandboxes, &target, io).await,
        Target::PortForward { .. } => Outcome::Failed("not a remotecommand request".into()),
    };
    if let Outcome::Failed(message) = &outcome {
        warn!(error = %message, "streaming {} failed", target.kind());
    }
    let _ = out.send(Output::Close(Channel::Stdout)).await;
    let _ = out.send(Output::Close(Channel::Stderr)).await;
    let cmd = match &target {
        Target::Exec { cmd, .. } => cmd.join(" "),
        _ => String::new(),
    };
    if let Some(status) = status_message(version, &outcome, &cmd) {
        let _ = out.send(Output::Data(Channel::Error, status)).await;
    }
    let _ = out.send(Output::Close(Channel::Error)).await;
}

/// What the error channel carries for `outcome`, if anything.
fn status_message(version: Version, outcome: &Outcome, cmd: &str) -> Option<Vec<u8>> {
    let failure = match outcome {
        Outcome::Exited { code: 0 } | Outcome::Detached => None,
        Outcome::Exited { code } => Some((
            format!(
                "command terminated with non-zero exit code: command '{cmd}' exited with {code}"
            ),
            Some(*code),
        )),
        Outcome::Failed(message) => Some((message.clone(), None)),
    };
    if !version.json_status() {
        return failure.map(|(message, _)| message.into_bytes());
    }
    let status = match failure {
        None => serde_json::json!({"metadata": {}, "status": "Success"}),
        Some((message, Some(code))) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Some((message, None)) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "code": 500,
        }),
    };
    Some(status.to_string().into_bytes())
}

async fn exec(sandboxes: &Arc<Sandboxes>, target: &Target, io: Io) -> Outcome {
    let Target::Exec {
        container_id,
        cmd,
        tty,
        stdin,
        stdout,
        stderr,
    } = target
    else {
        unreachable!("exec called with an exec target");
    };
    let started = async {
        let (_, client) = sandboxes.shim_of(container_id).await?;
        let process = sandboxes.exec_process(container_id, cmd, *tty)?;
        let exec_id = super::random_hex(8)?;
        let (pid, session) = client.exec(&exec_id, process, *tty, *stdin).await?;
        Ok::<_, berth_sandbox::Error>((exec_id, pid, session))
    };
    let (exec_id, pid, session) = match started.await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("exec in container {container_id}: {e}")),
    };
    info!(container_id = %container_id, exec_id = %exec_id, pid, tty, "exec started");
    let mut reader = session.reader;
    let mut gone = io.gone.clone();
    let input = tokio::spawn(pump_input(
        session.writer,
        io.stdin,
        io.resize,
        io.gone,
        true,
        true,
    ));
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut client_gone = false;
    let outcome = loop {
        let kill_timer = async {
            match kill_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = reader.next_event() => match ev {
                Ok(Some(Event::Stdout(d))) if *stdout => {
                    let _ = io.out.send(Output::Data(Channel::Stdout, d)).await;
                }
                Ok(Some(Event::Stderr(d))) if *stderr => {
                    let _ = io.out.send(Output::Data(Channel::Stderr, d)).await;
                }
                Ok(Some(Event::Exit(s))) => break Outcome::Exited { code: s.exit_code },
                Ok(Some(_)) => {}
                Ok(None) => break Outcome::Failed("the shim closed the exec session".into()),
                Err(e) => break Outcome::Failed(format!("exec session: {e}")),
            },
            () = gone.wait(), if !client_gone => {
                client_gone = true;
                kill_at = Some(tokio::time::Instant::now() + EXEC_GRACE);
                debug!(exec_id = %exec_id, "client gone; exec stdin closed");
            }
            () = kill_timer => {
                kill_at = None;
                warn!(exec_id = %exec_id, "client gone and exec still running; killing it");
                match sandboxes.shim_of(container_id).await {
                    Ok((_, mut c)) => {
                        if let Err(e) = c.kill_exec(&exec_id, libc_sigkill()).await {
                            warn!(exec_id = %exec_id, error = %e, "kill exec");
                        }
                    }
                    Err(e) => warn!(exec_id = %exec_id, error = %e, "kill exec"),
                }
            }
        }
    };
    input.abort();
    debug!(exec_id = %exec_id, "exec ended");
    outcome
}

fn libc_sigkill() -> i32 {
    nix::sys::signal::Signal::SIGKILL as i32
}

async fn attach(sandboxes: &Arc<Sandboxes>, target: &Target, io: Io) -> Outcome {
    let Target::Attach {
        container_id,
        stdout,
        stderr,
        ..
    } = target
    else {
        unreachable!("attach called with an attach target");
    };
    let (record, session) = match async {
        let (record, client) = sandboxes.shim_of(container_id).await?;
        Ok::<_, berth_sandbox::Error>((record, client.attach().await?))
    }
    .await
    {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("attach to container {container_id}: {e}")),
    };
    info!(container_id = %container_id, "attached");
    let stdin_once = record.config.stdin_once;
    let mut reader = session.reader;
    let mut gone = io.gone.clone();
    let input = tokio::spawn(pump_input(
        session.writer,
        io.stdin,
        io.resize,
        io.gone,
        stdin_once,
        false,
    ));
    let outcome = loop {
        tokio::select! {
            ev = reader.next_event() => match ev {
                Ok(Some(Event::Stdout(d))) if *stdout => {
                    let _ = io.out.send(Output::Data(Channel::Stdout, d)).await;
                }
                Ok(Some(Event::Stderr(d))) if *stderr => {
                    let _ = io.out.send(Output::Data(Channel::Stderr, d)).await;
                }
                Ok(Some(Event::Exit(s))) => break Outcome::Exited { code: s.exit_code },
                Ok(Some(_)) => {}
                Ok(None) => break Outcome::Detached,
                Err(e) => break Outcome::Failed(format!("attach session: {e}")),
            },
            // Leaving never stops the container: only this session ends.
            () = gone.wait() => break Outcome::Detached,
        }
    };
    // A departed client's input side closes stdin (stdin_once) and returns; otherwise it
    // is stopped here, so the shim session is dropped whole.
    let mut input = input;
    if matches!(outcome, Outcome::Detached) {
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut input).await;
    }
    input.abort();
    debug!(container_id = %container_id, "detached");
    outcome
}

#[derive(Deserialize)]
struct TerminalSize {
    #[serde(rename = "Width")]
    width: u16,
    #[serde(rename = "Height")]
    height: u16,
}

async fn recv(rx: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Client stdin and resize requests to the shim session. Stdin's end (or the client's
/// departure) closes the process's stdin when `close_stdin` holds. After the client is
/// gone the writer is held (until the task is aborted) when `hold_after_gone` says so:
/// dropping it half-closes the shim connection, and an exec's exit must still be read.
async fn pump_input(
    mut w: SessionWriter,
    mut stdin: Option<mpsc::Receiver<Vec<u8>>>,
    mut resize: Option<mpsc::Receiver<Vec<u8>>>,
    mut gone: Gone,
    close_stdin: bool,
    hold_after_gone: bool,
) {
    let mut sizes = Vec::new();
    loop {
        tokio::select! {
            d = recv(&mut stdin) => match d {
                Some(d) => {
                    if w.write_stdin(&d).await.is_err() {
                        return;
                    }
                }
                None => {
                    stdin = None;
                    if close_stdin {
                        let _ = w.close_stdin().await;
                    }
                }
            },
            r = recv(&mut resize) => match r {
                Some(d) => {
                    sizes.extend_from_slice(&d);
                    for (width, height) in take_sizes(&mut sizes) {
                        if w.resize(width, height).await.is_err() {
                            return;
                        }
                    }
                }
                None => resize = None,
            },
            () = gone.wait() => {
                if stdin.is_some() && close_stdin {
                    let _ = w.close_stdin().await;
                }
                if hold_after_gone {
                    std::future::pending::<()>().await;
                }
                return;
            }
        }
    }
}

/// Complete `{"Width":w,"Height":h}` objects at the front of `buf` (the client writes them
/// back to back); a partial one stays for the next read, garbage is dropped.
fn take_sizes(buf: &mut Vec<u8>) -> Vec<(u16, u16)> {
    let mut sizes = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<TerminalSize>();
    let mut used = 0;
    loop {
        match stream.next() {
            Some(Ok(s)) => {
                used = stream.byte_offset();
                if s.width > 0 && s.height > 0 {
                    sizes.push((s.width, s.height));
                }
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(_)) => {
                used = buf.len();
                break;
            }
            None => {
                used = buf.len();
                break;
            }
        }
    }
    buf.drain(..used);
    sizes
}

/// Serves exec or attach on a SPDY connection: waits for the client's streams, then runs
/// [`serve`] with them.
pub async fn serve_spdy(
    sandboxes: Arc<Sandboxes>,
    target: Target,
    version: Version,
    mut conn: Connection,
) {
    let (tty, stdin, stdout, stderr) = match &target {
        Target::Exec {
            tty,
            stdin,
            stdout,
            stderr,
            ..
        }
        | Target::Attach {
            tty,
            stdin,
            stdout,
            stderr,
            ..
        } => (*tty, *stdin, *stdout, *stderr),
        Target::PortForward { .. } => return conn.close().await,
    };
    let mut want: Vec<&str> = vec!["error"];
    if stdin {
        want.push("stdin");
    }
    if stdout {
        want.push("stdout");
    }
    if stderr && !tty {
        want.push("stderr");
    }
    if tty && version.has_resize() {
        want.push("resize");
    }
    let mut streams: Vec<(String, Stream)> = Vec::new();
    let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
    while !want.iter().all(|w| streams.iter().any(|(t, _)| t == w)) {
        let next = tokio::time::timeout_at(deadline, conn.streams.recv()).await;
        let stream = match next {
            Ok(Some(s)) => s,
            Ok(None) => return conn.close().await,
            Err(_) => {
                warn!("client did not open its streams in time");
                if let Some((_, e)) = streams.iter().find(|(t, _)| t == "error") {
                    conn.writer
                        .data(e.id, b"timed out waiting for client to create streams")
                        .await;
                }
                return conn.close().await;
            }
        };
        let kind = stream.header("streamtype").unwrap_or_default().to_string();
        if !want.contains(&kind.as_str()) || streams.iter().any(|(t, _)| *t == kind) {
            conn.writer
                .reset(stream.id, spdy::frame::RST_REFUSED_STREAM)
                .await;
            continue;
        }
        streams.push((kind, stream));
    }
    let mut take = |kind: &str| {
        streams
            .iter()
            .position(|(t, _)| t == kind)
            .map(|i| streams.remove(i).1)
    };
    let error = take("error").expect("the error stream is always waited for");
    let stdin_stream = take("stdin");
    let stdout_stream = take("stdout");
    let stderr_stream = take("stderr");
    let resize_stream = take("resize");
    let ids = [
        (Channel::Stdout, stdout_stream.as_ref().map(|s| s.id)),
        (Channel::Stderr, stderr_stream.as_ref().map(|s| s.id)),
        (Channel::Error, Some(error.id)),
    ];
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(16);
    let writer = conn.writer.clone();
    let forward = tokio::spawn(async move {
        let id_of = |c: Channel| ids.iter().find(|(ch, _)| *ch == c).and_then(|(_, id)| *id);
        while let Some(o) = out_rx.recv().await {
            match o {
                Output::Data(c, d) => {
                    if let Some(id) = id_of(c) {
                        writer.data(id, &d).await;
                    }
                }
                Output::Close(c) => {
                    if let Some(id) = id_of(c) {
                        writer.fin(id).await;
                    }
                }
            }
        }
    });
    let io = Io {
        stdin: stdin_stream.map(|s| s.data),
        resize: resize_stream.map(|s| s.data),
        out: out_tx,
        gone: conn.gone(),
    };
    serve(sandboxes, target, version, io).await;
    let _ = forward.await;
    conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_offered_version_wins() {
        assert_eq!(
            Version::negotiate(["v4.channel.k8s.io", "v3.channel.k8s.io"]),
            Some(Version::V4)
        );
        assert_eq!(Version::negotiate(["channel.k8s.io"]), Some(Version::V1));
        assert_eq!(Version::negotiate(["v9.channel.k8s.io"]), None);
    }

    #[test]
    fn v4_status_carries_the_exit_code() {
        let s = status_message(Version::V4, &Outcome::Exited { code: 3 }, "sh -c exit 3").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        let ok = status_message(Version::V5, &Outcome::Exited { code: 0 }, "true").unwrap();
        assert_eq!(ok, br#"{"metadata":{},"status":"Success"}"#);
    }

    #[test]
    fn old_versions_write_only_failures_as_text() {
        assert!(status_message(Version::V2, &Outcome::Exited { code: 0 }, "x").is_none());
        let s = status_message(Version::V3, &Outcome::Failed("boom".into()), "x").unwrap();
        assert_eq!(s, b"boom");
    }

    #[test]
    fn sizes_are_parsed_back_to_back_and_across_reads() {
        let mut buf = br#"{"Width":80,"Height":24}{"Width":100,"#.to_vec();
        assert_eq!(take_sizes(&mut buf), vec![(80, 24)]);
        buf.extend_from_slice(br#""Height":30}"#);
        assert_eq!(take_sizes(&mut buf), vec![(100, 30)]);
        assert!(buf.is_empty());
        let mut junk = b"not json".to_vec();
        assert!(take_sizes(&mut junk).is_empty());
        assert!(junk.is_empty());
    }
}
