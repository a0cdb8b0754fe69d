//! RemoveContainer: kills the container if it runs and removes it, its rootfs and
//! bundle. Idempotent: an unknown container is success.

use berth_api::runtime::v1::{RemoveContainerRequest, RemoveContainerResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn remove_container(
        &self,
        request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse> {
        self.sandboxes
            .remove_container(&request.container_id)
            .await?;
        Ok(RemoveContainerResponse {})
    }
}
