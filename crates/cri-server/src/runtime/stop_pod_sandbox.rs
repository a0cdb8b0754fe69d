//! StopPodSandbox: stops every process of the pod and releases its network. Idempotent.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StopPodSandboxRequest, StopPodSandboxResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn stop_pod_sandbox(
        &self,
        _request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StopPodSandbox",
        })
    }
}
