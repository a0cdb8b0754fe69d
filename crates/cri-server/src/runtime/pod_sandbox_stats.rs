//! PodSandboxStats: a pod's cpu, memory, network and process count, and its containers'
//! stats.

use berth_api::runtime::v1::{PodSandboxStatsRequest, PodSandboxStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn pod_sandbox_stats(
        &self,
        request: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse> {
        if request.pod_sandbox_id.is_empty() {
            return Err(Error::InvalidArgument("pod_sandbox_id is empty".into()));
        }
        let stats = self.sandboxes.pod_stats(&request.pod_sandbox_id).await?;
        Ok(PodSandboxStatsResponse { stats: Some(stats) })
    }
}
