//! CreateContainer: a container in a ready pod, from an image already pulled.

use berth_api::runtime::v1::{CreateContainerRequest, CreateContainerResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse> {
        let config = request
            .config
            .ok_or_else(|| Error::InvalidArgument("CreateContainer without a config".into()))?;
        if request.pod_sandbox_id.is_empty() {
            return Err(Error::InvalidArgument(
                "CreateContainer without a pod_sandbox_id".into(),
            ));
        }
        let container_id = self
            .sandboxes
            .create_container(&request.pod_sandbox_id, config)
            .await?;
        Ok(CreateContainerResponse { container_id })
    }
}
