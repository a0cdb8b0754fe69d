//! RemovePodSandbox: deletes the pod and its containers. Idempotent.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{RemovePodSandboxRequest, RemovePodSandboxResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn remove_pod_sandbox(
        &self,
        _request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/RemovePodSandbox",
        })
    }
}
