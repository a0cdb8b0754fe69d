//! The streaming side of exec, attach and port-forward: the URL a CRI runtime answered with
//! is upgraded to SPDY/3.1 (the protocol the kubelet and crictl speak to any runtime's
//! streaming server), then local stdin/stdout/stderr or TCP connections are pumped through
//! its streams.

use std::io::Write;

use berth_cri_server::streaming::client::{Event, SpdyReader, SpdyWriter, spdy_split, upgrade};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use crate::error::Error;

pub type Reader = SpdyReader<OwnedReadHalf>;
pub type Writer = SpdyWriter<OwnedWriteHalf>;

/// The remotecommand protocol berthctl asks for (the one with exit codes and resize).
pub const REMOTECOMMAND_V4: &str = "v4.channel.k8s.io";
pub const PORTFORWARD: &str = "portforward.k8s.io";

/// How long output may still arrive after the runtime has sent the command's status.
const OUTPUT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

fn stream_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Stream(format!("{url}: {e}"))
}

/// Upgrades `url` to SPDY with `protocol`.
pub async fn connect(url: &str, protocol: &str) -> Result<(Reader, Writer), Error> {
    let up = upgrade(
        url,
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", protocol),
        ],
    )
    .await
    .map_err(|e| stream_err(url, e))?;
    if up.status != 101 {
        return Err(stream_err(
            url,
            format!("upgrade refused: {} {}", up.status, up.body.trim()),
        ));
    }
    Ok(spdy_split(up.stream))
}

/// Runs the reader in its own task (its reads are not cancel safe) and hands its events on.
pub fn spawn_reader(mut reader: Reader) -> mpsc::UnboundedReceiver<std::io::Result<Event>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match reader.next_event().await {
                Ok(Some(e)) => {
                    if tx.send(Ok(e)).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}

/// Which streams an exec or attach uses.
#[derive(Debug, Clone, Copy)]
pub struct Streams {
    pub stdin: bool,
    pub tty: bool,
}

/// Local stdin, read on its own thread (a blocking read that must not hold up exit).
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match std::io::Read::read(&mut std::io::stdin().lock(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// The local terminal in raw mode, restored when dropped (on every return path).
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let fd = rustix::stdio::stdin();
        if !rustix::termios::isatty(fd) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            rustix::stdio::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The terminal size as the resize stream wants it, if stdout or stdin is a terminal.
fn terminal_size() -> Option<Vec<u8>> {
    let ws = rustix::termios::tcgetwinsize(rustix::stdio::stdout())
        .or_else(|_| rustix::termios::tcgetwinsize(rustix::stdio::stdin()))
        .ok()?;
    Some(format!(r#"{{"Width":{},"Height":{}}}"#, ws.ws_col, ws.ws_row).into_bytes())
}

/// Exec or attach over `url`: pumps local stdin to the process, its output to local
/// stdout/stderr, until the runtime reports the outcome on the error stream (or, for attach,
/// the connection ends). A non-zero exit becomes `Error::Exit`.
pub async fn remotecommand(url: &str, s: Streams) -> Result<(), Error> {
    let (reader, mut w) = connect(url, REMOTECOMMAND_V4).await?;
    let io = |e: std::io::Error| stream_err(url, e);
    let mut events = spawn_reader(reader);
    let error = w.open(&[("streamType", "error")]).await.map_err(io)?;
    let stdin = match s.stdin {
        true => Some(w.open(&[("streamType", "stdin")]).await.map_err(io)?),
        false => None,
    };
    let stdout = w.open(&[("streamType", "stdout")]).await.map_err(io)?;
    let stderr = match s.tty {
        false => Some(w.open(&[("streamType", "stderr")]).await.map_err(io)?),
        true => None,
    };
    let resize = match s.tty {
        true => Some(w.open(&[("streamType", "resize")]).await.map_err(io)?),
        false => None,
    };
    let _raw = if s.tty && s.stdin {
        RawMode::enter()
    } else {
        None
    };
    if let Some(id) = resize
        && let Some(size) = terminal_size()
    {
        w.send(id, &size).await.map_err(io)?;
    }
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .map_err(io)?;
    let mut input = stdin.map(|_| stdin_chunks());
    let mut status = Vec::new();
    let mut open_outputs = 1 + usize::from(stderr.is_some());
    let mut error_done = false;
    // Once the status is in, output still in flight gets a moment, not forever (a server
    // that never closes stdout must not hang berthctl).
    let grace = tokio::time::sleep(std::time::Duration::from_secs(3600));
    tokio::pin!(grace);
    while !(error_done && open_outputs == 0) {
        tokio::select! {
            () = &mut grace, if error_done => break,
            ev = events.recv() => match ev {
                None | Some(Ok(Event::GoAway)) => break,
                Some(Err(e)) => return Err(io(e)),
                Some(Ok(Event::Data { stream, bytes })) => {
                    if stream == stdout {
                        let mut out = std::io::stdout().lock();
                        out.write_all(&bytes)?;
                        out.flush()?;
                    } else if Some(stream) == stderr {
                        std::io::stderr().write_all(&bytes)?;
                    } else if stream == error {
                        status.extend_from_slice(&bytes);
                    }
                }
                Some(Ok(Event::Closed { stream } | Event::Reset { stream })) => {
                    if stream == error {
                        error_done = true;
                        grace.as_mut().reset(tokio::time::Instant::now() + OUTPUT_GRACE);
                    } else if stream == stdout || Some(stream) == stderr {
                        open_outputs = open_outputs.saturating_sub(1);
                    }
                }
                Some(Ok(Event::Ping { id })) => w.ping(id).await.map_err(io)?,
                Some(Ok(Event::Replied { .. })) => {}
            },
            chunk = async { input.as_mut().unwrap().recv().await }, if input.is_some() => {
                let id = stdin.expect("stdin stream is open");
                match chunk {
                    Some(c) => w.send(id, &c).await.map_err(io)?,
                    None => {
                        w.close(id).await.map_err(io)?;
                        input = None;
                    }
                }
            },
            _ = winch.recv(), if resize.is_some() => {
                if let (Some(id), Some(size)) = (resize, terminal_size()) {
                    w.send(id, &size).await.map_err(io)?;
                }
            },
        }
    }
    drop(_raw);
    outcome(&status)
}

/// The v4 status on the error stream: Success, a non-zero exit code, or another failure.
fn outcome(status: &[u8]) -> Result<(), Error> {
    if status.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let v: serde_json::Value = match serde_json::from_slice(status) {
        Ok(v) => v,
        Err(_) => {
            return Err(Error::Stream(
                String::from_utf8_lossy(status).trim().to_string(),
            ));
        }
    };
    if v["status"] == "Success" {
        return Ok(());
    }
    if v["reason"] == "NonZeroExitCode"
        && let Some(causes) = v["details"]["causes"].as_array()
        && let Some(code) = causes
            .iter()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse::<i32>().ok())
    {
        return Err(Error::Exit(code));
    }
    Err(Error::Stream(
        v["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_reads_v4_statuses() {
        assert!(outcome(br#"{"metadata":{},"status":"Success"}"#).is_ok());
        assert!(outcome(b"").is_ok());
        let exit = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#;
        assert!(matches!(outcome(exit), Err(Error::Exit(7))));
        let other = br#"{"metadata":{},"status":"Failure","message":"exec: no such file"}"#;
        assert!(matches!(outcome(other), Err(Error::Stream(m)) if m == "exec: no such file"));
        assert!(matches!(outcome(b"boom"), Err(Error::Stream(m)) if m == "boom"));
    }
}
