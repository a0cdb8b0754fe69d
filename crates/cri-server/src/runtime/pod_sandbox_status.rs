//! PodSandboxStatus: reports one pod: state, IPs, namespaces; container statuses on request.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{PodSandboxStatusRequest, PodSandboxStatusResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn pod_sandbox_status(
        &self,
        _request: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/PodSandboxStatus",
        })
    }
}
