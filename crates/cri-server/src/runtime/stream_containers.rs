//! StreamContainers: ListContainers, streamed in messages of at most 100 containers.

use berth_api::runtime::v1::{
    ListContainersRequest, StreamContainersRequest, StreamContainersResponse,
};

use super::RuntimeService;
use crate::error::Result;
use crate::instrument::{ResponseStream, paged};

impl RuntimeService {
    pub async fn stream_containers(
        &self,
        request: StreamContainersRequest,
    ) -> Result<ResponseStream<StreamContainersResponse>> {
        let list = self
            .list_containers(ListContainersRequest {
                filter: request.filter,
            })
            .await?;
        Ok(paged(list.containers, |containers| {
            StreamContainersResponse { containers }
        }))
    }
}
