//! UpdatePodSandboxResources: the kubelet has resized the pod's cgroup (in-place resize) and
//! tells the runtime; berth records the pod's new overhead and resources.

use berth_api::runtime::v1::{UpdatePodSandboxResourcesRequest, UpdatePodSandboxResourcesResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn update_pod_sandbox_resources(
        &self,
        request: UpdatePodSandboxResourcesRequest,
    ) -> Result<UpdatePodSandboxResourcesResponse> {
        if request.pod_sandbox_id.is_empty() {
            return Err(Error::InvalidArgument("pod_sandbox_id is empty".into()));
        }
        self.sandboxes
            .update_pod_resources(&request.pod_sandbox_id, request.overhead, request.resources)
            .await?;
        Ok(UpdatePodSandboxResourcesResponse {})
    }
}
