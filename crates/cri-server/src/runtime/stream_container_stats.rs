//! StreamContainerStats: like ListContainerStats, streamed.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StreamContainerStatsRequest, StreamContainerStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::instrument::ResponseStream;

impl RuntimeService {
    pub async fn stream_container_stats(
        &self,
        _request: StreamContainerStatsRequest,
    ) -> Result<ResponseStream<StreamContainerStatsResponse>> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StreamContainerStats",
        })
    }
}
