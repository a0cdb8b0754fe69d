//! ListContainerStats: resource usage of many containers.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ListContainerStatsRequest, ListContainerStatsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn list_container_stats(
        &self,
        _request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ListContainerStats",
        })
    }
}
