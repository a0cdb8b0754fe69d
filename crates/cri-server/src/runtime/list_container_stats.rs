//! ListContainerStats: the stats of every container that has a cgroup (created or running,
//! as containerd lists those with a task), filtered by id prefix, pod and labels.

use berth_api::runtime::v1::{ListContainerStatsRequest, ListContainerStatsResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn list_container_stats(
        &self,
        request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse> {
        let stats = self
            .sandboxes
            .list_container_stats(request.filter.unwrap_or_default())
            .await?;
        Ok(ListContainerStatsResponse { stats })
    }
}
