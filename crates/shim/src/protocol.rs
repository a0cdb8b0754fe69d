//! The shim's wire protocol: frames over a SOCK_STREAM unix socket.
//!
//! Every frame is `u32` big-endian length (of what follows), one kind byte, then the payload.
//! A client sends [`Request`]s as JSON frames (kind [`KIND_JSON`]) and, once a connection is
//! attached to a process (after `attach` or `exec`), stdin bytes ([`KIND_STDIN`]) and a stdin
//! close ([`KIND_STDIN_CLOSE`]). The shim answers each request with one [`Response`] JSON frame,
//! in order, and on an attached connection also sends output ([`KIND_STDOUT`],
//! [`KIND_STDERR`]) and, once the process has exited and its output is drained, one
//! [`KIND_EXIT`] frame carrying the [`ExitStatus`] as JSON.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

pub const KIND_JSON: u8 = 0;
pub const KIND_STDOUT: u8 = 1;
pub const KIND_STDERR: u8 = 2;
pub const KIND_EXIT: u8 = 3;
/// Client to shim: bytes for the attached process's stdin (same number as stdout: the
/// direction tells them apart).
pub const KIND_STDIN: u8 = 1;
pub const KIND_STDIN_CLOSE: u8 = 4;

/// Largest frame either side accepts (kind byte included).
pub const MAX_FRAME: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The container's state.
    State,
    /// `<runtime> start ID`.
    Start,
    /// A signal to the container (`<runtime> kill [--all] ID SIG`) or to one exec process.
    Kill {
        signal: i32,
        #[serde(default)]
        all: bool,
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// Starts an extra process in the container; the connection becomes attached to it.
    Exec {
        exec_id: String,
        /// An OCI `process` object; `terminal` is set from `tty`.
        process: serde_json::Value,
        #[serde(default)]
        tty: bool,
        #[serde(default)]
        stdin: bool,
    },
    /// Attaches the connection to the container's main process: its output is copied here,
    /// stdin frames go to it.
    Attach,
    /// Sets the terminal size of the main process (no exec_id) or of an exec process.
    Resize {
        #[serde(default)]
        exec_id: Option<String>,
        width: u16,
        height: u16,
    },
    /// Reopens the log file at its path (after the kubelet renamed it away).
    ReopenLog,
    /// Answers once the process (main or exec) has exited.
    Wait {
        #[serde(default)]
        exec_id: Option<String>,
    },
    /// `<runtime> delete [--force] ID`, then the shim exits.
    Delete {
        #[serde(default)]
        force: bool,
    },
    /// The shim exits, leaving the container alone.
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    State(State),
    Exec { pid: i32 },
    Exit(ExitStatus),
    Error { message: String },
}

/// Where the container is in its life.
///
/// ```text
///   created ──start──► running ──exit──► stopped
///      └──────────────exit─────────────────┘
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        })
    }
}

impl Status {
    pub fn can_start(self) -> bool {
        self == Status::Created
    }

    pub fn can_exec(self) -> bool {
        self == Status::Running
    }

    /// The only way a status changes: `event` applied to `self`, or None when the event
    /// does not apply in this status.
    pub fn update(self, event: Transition) -> Option<Status> {
        match (self, event) {
            (Status::Created, Transition::Started) => Some(Status::Running),
            (Status::Created | Status::Running, Transition::Exited) => Some(Status::Stopped),
            _ => None,
        }
    }
}

/// What moves a container from one [`Status`] to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Started,
    Exited,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    pub shim_pid: i32,
    pub status: Status,
    pub started_at: Option<String>,
    pub exit: Option<ExitStatus>,
}

/// How a process ended. Also the content of the shim's `exit.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Record format version.
    pub version: u32,
    pub pid: i32,
    /// The exit code, or 128 + signal when killed by one.
    pub exit_code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// The container's cgroup counted an OOM kill while it ran (main process only).
    pub oom_killed: bool,
    /// RFC 3339 UTC, nanoseconds.
    pub finished_at: String,
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&frame(kind, payload))
}

/// One frame as bytes.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.extend_from_slice(&(payload.len() as u32 + 1).to_be_bytes());
    v.push(kind);
    v.extend_from_slice(payload);
    v
}

/// Reads one frame (blocking); None at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad frame length {len}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let kind = body.remove(0);
    Ok(Some((kind, body)))
}

/// Takes one complete frame off the front of `buf`, if there is one.
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(format!("bad frame length {len}"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let kind = buf[4];
    let payload = buf[5..4 + len].to_vec();
    buf.drain(..4 + len);
    Ok(Some((kind, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_take_frame() {
        let mut buf = frame(KIND_STDOUT, b"hello");
        buf.extend(frame(KIND_JSON, b"{}"));
        buf.extend(&frame(KIND_EXIT, b"x")[..3]);
        assert_eq!(
            take_frame(&mut buf).unwrap(),
            Some((KIND_STDOUT, b"hello".to_vec()))
        );
        assert_eq!(
            take_frame(&mut buf).unwrap(),
            Some((KIND_JSON, b"{}".to_vec()))
        );
        assert_eq!(take_frame(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn status_changes_only_forward() {
        assert_eq!(
            Status::Created.update(Transition::Started),
            Some(Status::Running)
        );
        assert_eq!(
            Status::Created.update(Transition::Exited),
            Some(Status::Stopped)
        );
        assert_eq!(Status::Running.update(Transition::Started), None);
        assert_eq!(Status::Stopped.update(Transition::Started), None);
        assert_eq!(Status::Stopped.update(Transition::Exited), None);
        assert!(Status::Created.can_start() && !Status::Running.can_start());
        assert!(Status::Running.can_exec() && !Status::Stopped.can_exec());
    }

    #[test]
    fn requests_are_tagged_json() {
        let r: Request = serde_json::from_str(r#"{"op":"kill","signal":9}"#).unwrap();
        assert_eq!(
            r,
            Request::Kill {
                signal: 9,
                all: false,
                exec_id: None
            }
        );
        let s = serde_json::to_string(&Response::Exec { pid: 7 }).unwrap();
        assert_eq!(s, r#"{"result":"exec","pid":7}"#);
    }
}
