//! StreamContainerStats: ListContainerStats, streamed in messages of at most 100.

use berth_api::runtime::v1::{
    ListContainerStatsRequest, StreamContainerStatsRequest, StreamContainerStatsResponse,
};

use super::RuntimeService;
use crate::error::Result;
use crate::instrument::{ResponseStream, paged};

impl RuntimeService {
    pub async fn stream_container_stats(
        &self,
        request: StreamContainerStatsRequest,
    ) -> Result<ResponseStream<StreamContainerStatsResponse>> {
        let list = self
            .list_container_stats(ListContainerStatsRequest {
                filter: request.filter,
            })
            .await?;
        Ok(paged(list.stats, |container_stats| {
            StreamContainerStatsResponse { container_stats }
        }))
    }
}
