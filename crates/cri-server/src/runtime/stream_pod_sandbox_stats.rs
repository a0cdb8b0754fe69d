//! StreamPodSandboxStats: ListPodSandboxStats, streamed in messages of at most 100.

use berth_api::runtime::v1::{
    ListPodSandboxStatsRequest, StreamPodSandboxStatsRequest, StreamPodSandboxStatsResponse,
};

use super::RuntimeService;
use crate::error::Result;
use crate::instrument::{ResponseStream, paged};

impl RuntimeService {
    pub async fn stream_pod_sandbox_stats(
        &self,
        request: StreamPodSandboxStatsRequest,
    ) -> Result<ResponseStream<StreamPodSandboxStatsResponse>> {
        let list = self
            .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
                filter: request.filter,
            })
            .await?;
        Ok(paged(list.stats, |pod_sandbox_stats| {
            StreamPodSandboxStatsResponse { pod_sandbox_stats }
        }))
    }
}
