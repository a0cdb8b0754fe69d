//! CreateContainer: creates a container inside a pod; it does not run yet.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{CreateContainerRequest, CreateContainerResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn create_container(
        &self,
        _request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/CreateContainer",
        })
    }
}
