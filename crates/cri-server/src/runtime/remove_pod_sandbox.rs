//! RemovePodSandbox: removes the pod, its containers and everything they made.
//! Idempotent: an unknown pod is success.

use berth_api::runtime::v1::{RemovePodSandboxRequest, RemovePodSandboxResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn remove_pod_sandbox(
        &self,
        request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse> {
        self.sandboxes.remove_pod(&request.pod_sandbox_id).await?;
        Ok(RemovePodSandboxResponse {})
    }
}
