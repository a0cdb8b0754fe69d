//! The typed messages the runtime process and the container's init exchange over a socketpair.
//! Each message is one SOCK_SEQPACKET record holding JSON, so a record is never split or merged.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Message {
    /// child -> runtime: a new user namespace exists, write its uid/gid maps.
    MapUsers,
    /// runtime -> child: the maps are written.
    UsersMapped,
    /// child -> runtime: host pid of the container process.
    Pid(i32),
    /// runtime -> container process: its host pid and creation time, for hook state.
    Started { pid: i32, created: String },
    /// init -> runtime: namespaces and mounts exist; run prestart and createRuntime hooks.
    RunCreateRuntimeHooks,
    /// runtime -> init: those hooks ran.
    HooksDone,
    /// init -> runtime: set up, waiting for `start`.
    Ready,
    /// container process -> runtime: the seccomp listener fd travels with this message, for
    /// the runtime to hand to the agent at linux.seccomp.listenerPath.
    SeccompListener,
    /// either side: a step failed; the text says which and why.
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// A connected pair; both ends are close-on-exec, so a successful execve closes the
    /// container's end, which is how the runtime learns that exec happened.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Message) -> io::Result<()> {
        let buf = serde_json::to_vec(msg).map_err(io::Error::other)?;
        socket::send(self.fd.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// Sends a message with a descriptor attached (SCM_RIGHTS).
    pub fn send_with_fd(&self, msg: &Message, fd: BorrowedFd<'_>) -> io::Result<()> {
        let buf = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let fds = [fd.as_raw_fd()];
        let iov = [io::IoSlice::new(&buf)];
        socket::sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// The next message, or None once the other end is closed (the peer exited or exec'd).
    pub fn recv(&self) -> io::Result<Option<Message>> {
        Ok(self.recv_with_fd()?.map(|(m, _)| m))
    }

    /// The next message and the descriptor that came with it, if any.
    pub fn recv_with_fd(&self) -> io::Result<Option<(Message, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut cmsg = nix::cmsg_space!([RawFd; 1]);
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            let (n, fd) = match socket::recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fd = None;
                    for c in msg.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: the kernel just installed this descriptor in our table
                                // for this message; nothing else refers to it.
                                let owned = unsafe { crate::sys::adopt_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                    (msg.bytes, fd)
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Ok(None);
            }
            let m = serde_json::from_slice(&buf[..n]).map_err(io::Error::other)?;
            return Ok(Some((m, fd)));
        }
    }

    /// Waits for one specific message; an Error message or a closed channel becomes an error.
    pub fn expect(&self, want: Message) -> io::Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Message::Error(e)) => Err(io::Error::other(e)),
            Some(m) => Err(io::Error::other(format!("expected {want:?}, got {m:?}"))),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("peer exited before sending {want:?}"),
            )),
        }
    }

    /// Child side: report a failure to the runtime (best effort: the runtime may be gone).
    /// When nobody listens any more (the container was created and `create` exited), the
    /// error goes to the process's stderr, which is the container's: it lands in its log.
    pub fn report_error(&self, err: &dyn std::fmt::Display) {
        if self.send(&Message::Error(err.to_string())).is_err() {
            eprintln!("berth-oci: container init: {err}");
        }
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
