//! UpdateContainerResources: changes the cgroup limits of a live container.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{UpdateContainerResourcesRequest, UpdateContainerResourcesResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn update_container_resources(
        &self,
        _request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/UpdateContainerResources",
        })
    }
}
