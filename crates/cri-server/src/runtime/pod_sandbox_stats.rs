//! PodSandboxStats: resource usage of one pod.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{PodSandboxStatsRequest, PodSandboxStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn pod_sandbox_stats(
        &self,
        _request: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/PodSandboxStats",
        })
    }
}
