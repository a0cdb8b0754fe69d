//! The console socket: the runtime connects and sends the pty master as SCM_RIGHTS.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::Error;

pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> Result<ConsoleSocket, Error> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(Error::io("bind console socket", path))?;
        Ok(ConsoleSocket {
            path: path.to_owned(),
            listener,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the runtime sent. Called after the runtime command returned: its connection
    /// and message wait in the socket's queues, so this does not block.
    pub fn receive_master(&self) -> Result<OwnedFd, Error> {
        let err = |message: String| Error::Console {
            path: self.path.clone(),
            message,
        };
        self.listener
            .set_nonblocking(true)
            .map_err(|e| err(e.to_string()))?;
        let (conn, _) = self
            .listener
            .accept()
            .map_err(|e| err(format!("accept: {e}")))?;
        conn.set_nonblocking(true).map_err(|e| err(e.to_string()))?;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 4096];
        rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut ancillary,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| err(format!("recvmsg: {e}")))?;
        for msg in ancillary.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = msg
                && let Some(fd) = fds.next()
            {
                return Ok(fd);
            }
        }
        Err(err("no file descriptor received".into()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
