//! Exec: stores the command under a single-use token and returns the streaming-server
//! URL where the client runs it interactively (crate::streaming).

use berth_api::runtime::v1::{ExecRequest, ExecResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::streaming::tokens::Target;

impl RuntimeService {
    pub async fn exec(&self, request: ExecRequest) -> Result<ExecResponse> {
        if request.cmd.is_empty() {
            return Err(Error::InvalidArgument("exec command is empty".into()));
        }
        check_streams(request.stdin, request.stdout, request.stderr, request.tty)?;
        let container_id = self.running_container(&request.container_id)?;
        let url = self.streaming.url_for(Target::Exec {
            container_id,
            cmd: request.cmd,
            tty: request.tty,
            stdin: request.stdin,
            stdout: request.stdout,
            stderr: request.stderr,
        })?;
        Ok(ExecResponse { url })
    }

    /// The full id of a running container named by id or prefix.
    pub(super) fn running_container(&self, id: &str) -> Result<String> {
        let c = self
            .sandboxes
            .records()
            .find_container(id)
            .ok_or_else(|| Error::NotFound {
                kind: "container",
                id: id.to_string(),
            })?;
        if !c.state.can_exec() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        Ok(c.id)
    }
}

/// The CRI's rules for Exec and Attach streams: at least one, and no stderr with a tty
/// (a terminal has one output).
pub(super) fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<()> {
    if !(stdin || stdout || stderr) {
        return Err(Error::InvalidArgument(
            "one of stdin, stdout and stderr must be set".into(),
        ));
    }
    if tty && stderr {
        return Err(Error::InvalidArgument(
            "stderr must not be set with tty: a terminal has one output".into(),
        ));
    }
    Ok(())
}
