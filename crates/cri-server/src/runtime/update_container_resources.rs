//! UpdateContainerResources: changes the cgroup limits of a created or running container
//! (Linux resources only; the Windows field and the annotations are ignored).

use berth_api::runtime::v1::{UpdateContainerResourcesRequest, UpdateContainerResourcesResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn update_container_resources(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse> {
        if request.container_id.is_empty() {
            return Err(Error::InvalidArgument("container_id is empty".into()));
        }
        let linux = request.linux.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "container {}: no linux resources given",
                request.container_id
            ))
        })?;
        self.sandboxes
            .update_container_resources(&request.container_id, linux)
            .await?;
        Ok(UpdateContainerResourcesResponse {})
    }
}
