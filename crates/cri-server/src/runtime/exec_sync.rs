//! ExecSync: runs a command in a running container and returns its output (capped at
//! 15 MiB) and exit code; past the timeout the command is killed and the call fails
//! with DeadlineExceeded, which the kubelet reads as a probe timeout.

use std::time::Duration;

use berth_api::runtime::v1::{ExecSyncRequest, ExecSyncResponse};
use berth_sandbox::ExecSync;

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn exec_sync(&self, request: ExecSyncRequest) -> Result<ExecSyncResponse> {
        let out = self
            .sandboxes
            .exec_sync(ExecSync {
                container_id: request.container_id,
                cmd: request.cmd,
                timeout: (request.timeout > 0).then(|| Duration::from_secs(request.timeout as u64)),
            })
            .await?;
        Ok(ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    }
}
