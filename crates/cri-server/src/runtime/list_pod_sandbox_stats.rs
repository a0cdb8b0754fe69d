//! ListPodSandboxStats: resource usage of many pods.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ListPodSandboxStatsRequest, ListPodSandboxStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn list_pod_sandbox_stats(
        &self,
        _request: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ListPodSandboxStats",
        })
    }
}
