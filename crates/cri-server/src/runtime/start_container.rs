//! StartContainer: starts a created container.

use berth_api::runtime::v1::{StartContainerRequest, StartContainerResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn start_container(
        &self,
        request: StartContainerRequest,
    ) -> Result<StartContainerResponse> {
        self.sandboxes
            .start_container(&request.container_id)
            .await?;
        Ok(StartContainerResponse {})
    }
}
