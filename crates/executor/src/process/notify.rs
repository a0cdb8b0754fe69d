//! Seccomp user notification: the listener fd the container process created when it loaded
//! its filter goes to the agent listening at `linux.seccomp.listenerPath`, with the container
//! process state, as the runtime spec describes (one SCM_RIGHTS message, fds named
//! ["seccompFd"]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use oci_spec::runtime::LinuxSeccomp;

use crate::error::{Error, IoContext, Result};

pub fn forward_listener(
    seccomp: Option<&LinuxSeccomp>,
    pid: i32,
    state: serde_json::Value,
    fd: OwnedFd,
) -> Result<()> {
    let seccomp =
        seccomp.ok_or_else(|| Error::spec("linux.seccomp", "listener fd without a profile"))?;
    let path = seccomp.listener_path().as_ref().ok_or_else(|| {
        Error::spec(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY needs a listener path",
        )
    })?;
    let stream = UnixStream::connect(path).ctx("connect seccomp agent", path)?;
    let msg = serde_json::json!({
        "ociVersion": "1.2.0",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": seccomp.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    })
    .to_string();
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(msg.as_bytes())];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| {
        Error::sys(
            format!("send the seccomp listener to {}", path.display()),
            e,
        )
    })?;
    Ok(())
}
