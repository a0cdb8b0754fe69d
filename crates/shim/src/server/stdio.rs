//! A process's stdio as the shim holds it: pipes, or a pty master received on a console
//! socket.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use super::console::ConsoleSocket;
use super::runtime::ProcStdio;
use crate::Error;

/// The stdio of one process as the shim holds it.
#[derive(Default)]
pub(super) struct Io {
    /// stdout pipe, or the pty master.
    pub(super) out: Option<File>,
    pub(super) err: Option<File>,
    pub(super) stdin: Option<File>,
    pub(super) stdin_pending: Vec<u8>,
    pub(super) stdin_close_after: bool,
    /// The pty master, for resize.
    pub(super) tty: Option<File>,
}

pub(super) fn set_nonblocking(fd: impl AsFd) -> Result<(), Error> {
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(Error::sys("fcntl F_GETFL"))?;
    fcntl(
        &fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(Error::sys("fcntl F_SETFL"))?;
    Ok(())
}

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("pipe2"))
}

pub(super) fn reader(fd: OwnedFd) -> Result<File, Error> {
    set_nonblocking(&fd)?;
    Ok(File::from(fd))
}

/// Reads what is there without waiting; for the error text a failed runtime left on a pipe.
pub(super) fn read_available(f: &mut File) -> String {
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

pub(super) fn with_stderr(e: Error, stderr: String) -> Error {
    match e {
        Error::Runtime { op, status, .. } => Error::Runtime { op, status, stderr },
        e => e,
    }
}

/// Process stdio: pipes (the shim keeps the read ends and the stdin write end) or, with a
/// terminal, a console socket the runtime sends the pty master to.
pub(super) struct Plumbing {
    pub(super) stdio: ProcStdio,
    pub(super) io: Io,
    pub(super) console: Option<ConsoleSocket>,
    /// The runtime's stderr when it is not the process's (terminal case).
    pub(super) runtime_err: Option<File>,
}

pub(super) fn plumbing(tty: bool, stdin: bool, console_path: PathBuf) -> Result<Plumbing, Error> {
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
    pub(super) fn take_stdio(&mut self) -> ProcStdio {
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
    pub(super) fn finish(mut self) -> Result<Io, Error> {
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

    pub(super) fn failure(&mut self, e: Error) -> Error {
        let text = match (&mut self.runtime_err, &mut self.io.err) {
            (Some(f), _) | (None, Some(f)) => read_available(f),
            _ => String::new(),
        };
        with_stderr(e, text)
    }
}
