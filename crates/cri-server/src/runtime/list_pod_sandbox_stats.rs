//! ListPodSandboxStats: the stats of every pod, filtered by id prefix and labels.

use berth_api::runtime::v1::{ListPodSandboxStatsRequest, ListPodSandboxStatsResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn list_pod_sandbox_stats(
        &self,
        request: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse> {
        let stats = self
            .sandboxes
            .list_pod_stats(request.filter.unwrap_or_default())
            .await?;
        Ok(ListPodSandboxStatsResponse { stats })
    }
}
