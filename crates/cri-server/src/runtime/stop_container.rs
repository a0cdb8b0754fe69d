//! StopContainer: the stop signal (the CRI's, the image's, or SIGTERM), then SIGKILL
//! after `timeout` seconds. Idempotent: an unknown or stopped container is success.

use berth_api::runtime::v1::{StopContainerRequest, StopContainerResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn stop_container(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse> {
        self.sandboxes
            .stop_container(&request.container_id, request.timeout)
            .await?;
        Ok(StopContainerResponse {})
    }
}
