//! UpdatePodSandboxResources: tells the runtime the pod-level resources changed (in-place resize).
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{UpdatePodSandboxResourcesRequest, UpdatePodSandboxResourcesResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn update_pod_sandbox_resources(
        &self,
        _request: UpdatePodSandboxResourcesRequest,
    ) -> Result<UpdatePodSandboxResourcesResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/UpdatePodSandboxResources",
        })
    }
}
