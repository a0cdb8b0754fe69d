//! StreamPodSandboxStats: like ListPodSandboxStats, streamed.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StreamPodSandboxStatsRequest, StreamPodSandboxStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::instrument::ResponseStream;

impl RuntimeService {
    pub async fn stream_pod_sandbox_stats(
        &self,
        _request: StreamPodSandboxStatsRequest,
    ) -> Result<ResponseStream<StreamPodSandboxStatsResponse>> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StreamPodSandboxStats",
        })
    }
}
