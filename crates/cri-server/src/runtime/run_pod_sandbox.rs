//! RunPodSandbox: creates the pod: infra process, namespaces, CNI network. Ready on success.

use berth_api::runtime::v1::{RunPodSandboxRequest, RunPodSandboxResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn run_pod_sandbox(
        &self,
        request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse> {
        let config = request
            .config
            .ok_or_else(|| Error::InvalidArgument("RunPodSandbox without a config".into()))?;
        let pod_sandbox_id = self
            .sandboxes
            .run_pod(config, request.runtime_handler)
            .await?;
        Ok(RunPodSandboxResponse { pod_sandbox_id })
    }
}
