//! StopContainer: signals the container, waits up to the timeout, then kills it. Idempotent.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StopContainerRequest, StopContainerResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn stop_container(
        &self,
        _request: StopContainerRequest,
    ) -> Result<StopContainerResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StopContainer",
        })
    }
}
