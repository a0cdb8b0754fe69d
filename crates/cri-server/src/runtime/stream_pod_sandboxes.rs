//! StreamPodSandboxes: like ListPodSandbox, streamed in pages for large nodes.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StreamPodSandboxesRequest, StreamPodSandboxesResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::instrument::ResponseStream;

impl RuntimeService {
    pub async fn stream_pod_sandboxes(
        &self,
        _request: StreamPodSandboxesRequest,
    ) -> Result<ResponseStream<StreamPodSandboxesResponse>> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StreamPodSandboxes",
        })
    }
}
