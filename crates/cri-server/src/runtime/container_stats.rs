//! ContainerStats: resource usage of one container.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ContainerStatsRequest, ContainerStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn container_stats(
        &self,
        _request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ContainerStats",
        })
    }
}
