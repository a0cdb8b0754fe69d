//! StreamPodSandboxMetrics: like ListPodSandboxMetrics, streamed.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StreamPodSandboxMetricsRequest, StreamPodSandboxMetricsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::instrument::ResponseStream;

impl RuntimeService {
    pub async fn stream_pod_sandbox_metrics(
        &self,
        _request: StreamPodSandboxMetricsRequest,
    ) -> Result<ResponseStream<StreamPodSandboxMetricsResponse>> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StreamPodSandboxMetrics",
        })
    }
}
