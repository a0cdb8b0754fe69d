//! ContainerStats: cpu, memory, swap and writable-layer usage of one container.

use berth_api::runtime::v1::{ContainerStatsRequest, ContainerStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn container_stats(
        &self,
        request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse> {
        if request.container_id.is_empty() {
            return Err(Error::InvalidArgument("container_id is empty".into()));
        }
        let stats = self
            .sandboxes
            .container_stats(&request.container_id)
            .await?;
        Ok(ContainerStatsResponse { stats: Some(stats) })
    }
}
