//! ListPodSandbox: lists pods, optionally filtered.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ListPodSandboxRequest, ListPodSandboxResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn list_pod_sandbox(
        &self,
        _request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ListPodSandbox",
        })
    }
}
