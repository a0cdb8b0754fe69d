//! Attach: stores the request under a single-use token and returns the streaming-server
//! URL where the client attaches to the container's main process (crate::streaming).

use berth_api::runtime::v1::{AttachRequest, AttachResponse};

use super::RuntimeService;
use super::exec::check_streams;
use crate::error::Result;
use crate::streaming::tokens::Target;

impl RuntimeService {
    pub async fn attach(&self, request: AttachRequest) -> Result<AttachResponse> {
        check_streams(request.stdin, request.stdout, request.stderr, request.tty)?;
        let container_id = self.running_container(&request.container_id)?;
        let url = self.streaming.url_for(Target::Attach {
            container_id,
            tty: request.tty,
            stdin: request.stdin,
            stdout: request.stdout,
            stderr: request.stderr,
        })?;
        Ok(AttachResponse { url })
    }
}
