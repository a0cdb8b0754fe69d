//! StreamPodSandboxes: ListPodSandbox, streamed in messages of at most 100 pods.

use berth_api::runtime::v1::{
    ListPodSandboxRequest, StreamPodSandboxesRequest, StreamPodSandboxesResponse,
};

use super::RuntimeService;
use crate::error::Result;
use crate::instrument::{ResponseStream, paged};

impl RuntimeService {
    pub async fn stream_pod_sandboxes(
        &self,
        request: StreamPodSandboxesRequest,
    ) -> Result<ResponseStream<StreamPodSandboxesResponse>> {
        let list = self
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: request.filter,
            })
            .await?;
        Ok(paged(list.items, |pod_sandboxes| {
            StreamPodSandboxesResponse { pod_sandboxes }
        }))
    }
}
