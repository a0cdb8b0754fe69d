//! RunPodSandbox: creates the pod: infra process, namespaces, CNI network. Ready on success.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{RunPodSandboxRequest, RunPodSandboxResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn run_pod_sandbox(
        &self,
        _request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/RunPodSandbox",
        })
    }
}
