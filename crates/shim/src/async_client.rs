//! The client for tokio callers (berthd), behind the `tokio` feature: the same requests as
//! [`crate::client`], over a tokio `UnixStream`, so that waiting for an exit or streaming an
//! exec holds no thread.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::Error;
use crate::client::Event;
use crate::protocol::{self, ExitStatus, Request, Response, State};

fn proto_err(e: std::io::Error) -> Error {
    Error::Protocol(e.to_string())
}

async fn write_frame(
    w: &mut (impl AsyncWriteExt + Unpin),
    kind: u8,
    payload: &[u8],
) -> Result<(), Error> {
    w.write_all(&protocol::frame(kind, payload))
        .await
        .map_err(proto_err)
}

async fn send(w: &mut (impl AsyncWriteExt + Unpin), req: &Request) -> Result<(), Error> {
    let json = serde_json::to_vec(req).map_err(|e| Error::Protocol(e.to_string()))?;
    write_frame(w, protocol::KIND_JSON, &json).await
}

/// One frame; None at a clean end of stream.
async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> Result<Option<(u8, Vec<u8>)>, Error> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(proto_err(e)),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > protocol::MAX_FRAME {
        return Err(Error::Protocol(format!("bad frame length {len}")));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(proto_err)?;
    let kind = body.remove(0);
    Ok(Some((kind, body)))
}

fn decode(kind: u8, payload: Vec<u8>) -> Result<Event, Error> {
    let json_err = |e: serde_json::Error| Error::Protocol(e.to_string());
    Ok(match kind {
        protocol::KIND_STDOUT => Event::Stdout(payload),
        protocol::KIND_STDERR => Event::Stderr(payload),
        protocol::KIND_EXIT => Event::Exit(serde_json::from_slice(&payload).map_err(json_err)?),
        protocol::KIND_JSON => Event::Response(serde_json::from_slice(&payload).map_err(json_err)?),
        k => return Err(Error::Protocol(format!("unknown frame kind {k}"))),
    })
}

fn unexpected(r: Response) -> Error {
    Error::Protocol(format!("unexpected response {r:?}"))
}

/// One connection to a shim.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    pub async fn connect(state_dir: &Path) -> Result<Client, Error> {
        let path = crate::client::socket_path(state_dir);
        let stream = UnixStream::connect(&path)
            .await
            .map_err(Error::io("connect", &path))?;
        Ok(Client { stream })
    }

    /// Sends a request and reads its response (an `Error` response becomes `Err`).
    pub async fn call(&mut self, req: &Request) -> Result<Response, Error> {
        send(&mut self.stream, req).await?;
        loop {
            match read_frame(&mut self.stream).await? {
                None => return Err(Error::Protocol("shim closed the connection".into())),
                Some((protocol::KIND_JSON, p)) => {
                    return match serde_json::from_slice(&p)
                        .map_err(|e| Error::Protocol(e.to_string()))?
                    {
                        Response::Error { message } => Err(Error::Remote(message)),
                        r => Ok(r),
                    };
                }
                Some(_) => continue,
            }
        }
    }

    async fn call_ok(&mut self, req: &Request) -> Result<(), Error> {
        match self.call(req).await? {
            Response::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    pub async fn state(&mut self) -> Result<State, Error> {
        match self.call(&Request::State).await? {
            Response::State(s) => Ok(s),
            r => Err(unexpected(r)),
        }
    }

    pub async fn start(&mut self) -> Result<(), Error> {
        self.call_ok(&Request::Start).await
    }

    pub async fn kill(&mut self, signal: i32, all: bool) -> Result<(), Error> {
        self.call_ok(&Request::Kill {
            signal,
            all,
            exec_id: None,
        })
        .await
    }

    pub async fn kill_exec(&mut self, exec_id: &str, signal: i32) -> Result<(), Error> {
        self.call_ok(&Request::Kill {
            signal,
            all: false,
            exec_id: Some(exec_id.to_owned()),
        })
        .await
    }

    pub async fn resize(
        &mut self,
        exec_id: Option<&str>,
        width: u16,
        height: u16,
    ) -> Result<(), Error> {
        self.call_ok(&Request::Resize {
            exec_id: exec_id.map(str::to_owned),
            width,
            height,
        })
        .await
    }

    pub async fn reopen_log(&mut self) -> Result<(), Error> {
        self.call_ok(&Request::ReopenLog).await
    }

    pub async fn wait(&mut self, exec_id: Option<&str>) -> Result<ExitStatus, Error> {
        match self
            .call(&Request::Wait {
                exec_id: exec_id.map(str::to_owned),
            })
            .await?
        {
            Response::Exit(e) => Ok(e),
            r => Err(unexpected(r)),
        }
    }

    pub async fn delete(&mut self, force: bool) -> Result<(), Error> {
        self.call_ok(&Request::Delete { force }).await
    }

    pub async fn shutdown(&mut self) -> Result<(), Error> {
        self.call_ok(&Request::Shutdown).await
    }

    /// Starts a process in the container; the connection becomes its session.
    pub async fn exec(
        mut self,
        exec_id: &str,
        process: serde_json::Value,
        tty: bool,
        stdin: bool,
    ) -> Result<(i32, Session), Error> {
        let req = Request::Exec {
            exec_id: exec_id.to_owned(),
            process,
            tty,
            stdin,
        };
        match self.call(&req).await? {
            Response::Exec { pid } => Ok((pid, self.session(Some(exec_id)))),
            r => Err(unexpected(r)),
        }
    }

    /// Attaches to the main process's stdio.
    pub async fn attach(mut self) -> Result<Session, Error> {
        match self.call(&Request::Attach).await? {
            Response::Ok => Ok(self.session(None)),
            r => Err(unexpected(r)),
        }
    }

    fn session(self, exec_id: Option<&str>) -> Session {
        let (read, write) = self.stream.into_split();
        Session {
            reader: SessionReader { read },
            writer: SessionWriter {
                write,
                exec_id: exec_id.map(str::to_owned),
            },
        }
    }
}

/// A connection attached to a process; split it to read and write from separate tasks.
pub struct Session {
    pub reader: SessionReader,
    pub writer: SessionWriter,
}

impl Session {
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        self.reader.next_event().await
    }

    /// Reads to the exit: (status, stdout, stderr). For ExecSync.
    pub async fn collect(mut self) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), Error> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match self.next_event().await? {
                Some(Event::Stdout(d)) => out.extend(d),
                Some(Event::Stderr(d)) => err.extend(d),
                Some(Event::Exit(s)) => return Ok((s, out, err)),
                Some(Event::Response(_)) => {}
                None => return Err(Error::Protocol("shim closed the session".into())),
            }
        }
    }
}

pub struct SessionReader {
    read: OwnedReadHalf,
}

impl SessionReader {
    /// The next event; None when the shim closed the connection.
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        match read_frame(&mut self.read).await? {
            None => Ok(None),
            Some((kind, payload)) => decode(kind, payload).map(Some),
        }
    }
}

pub struct SessionWriter {
    write: OwnedWriteHalf,
    exec_id: Option<String>,
}

impl SessionWriter {
    pub async fn write_stdin(&mut self, data: &[u8]) -> Result<(), Error> {
        for chunk in data.chunks(64 * 1024) {
            write_frame(&mut self.write, protocol::KIND_STDIN, chunk).await?;
        }
        Ok(())
    }

    pub async fn close_stdin(&mut self) -> Result<(), Error> {
        write_frame(&mut self.write, protocol::KIND_STDIN_CLOSE, &[]).await
    }

    /// Resizes the session's terminal; the answer arrives as an [`Event::Response`].
    pub async fn resize(&mut self, width: u16, height: u16) -> Result<(), Error> {
        let req = Request::Resize {
            exec_id: self.exec_id.clone(),
            width,
            height,
        };
        send(&mut self.write, &req).await
    }
}
