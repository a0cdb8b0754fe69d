//! StopPodSandbox: stops the pod's containers and infra process and tears its network
//! down. Idempotent: an unknown or already stopped pod is success.

use berth_api::runtime::v1::{StopPodSandboxRequest, StopPodSandboxResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn stop_pod_sandbox(
        &self,
        request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse> {
        self.sandboxes.stop_pod(&request.pod_sandbox_id).await?;
        Ok(StopPodSandboxResponse {})
    }
}
