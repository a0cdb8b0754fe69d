//! ContainerStatus: reports one container.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ContainerStatusRequest, ContainerStatusResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn container_status(
        &self,
        _request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ContainerStatus",
        })
    }
}
