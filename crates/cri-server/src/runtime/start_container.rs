//! StartContainer: starts a created container.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StartContainerRequest, StartContainerResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn start_container(
        &self,
        _request: StartContainerRequest,
    ) -> Result<StartContainerResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StartContainer",
        })
    }
}
