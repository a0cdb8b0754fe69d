//! StreamContainers: like ListContainers, streamed.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StreamContainersRequest, StreamContainersResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::instrument::ResponseStream;

impl RuntimeService {
    pub async fn stream_containers(
        &self,
        _request: StreamContainersRequest,
    ) -> Result<ResponseStream<StreamContainersResponse>> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/StreamContainers",
        })
    }
}
