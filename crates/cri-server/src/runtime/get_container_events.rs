//! GetContainerEvents: server stream of container lifecycle events (evented PLEG).
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ContainerEventResponse, GetEventsRequest};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::instrument::ResponseStream;

impl RuntimeService {
    pub async fn get_container_events(
        &self,
        _request: GetEventsRequest,
    ) -> Result<ResponseStream<ContainerEventResponse>> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/GetContainerEvents",
        })
    }
}
