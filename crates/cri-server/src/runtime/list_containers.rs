//! ListContainers: lists containers, optionally filtered.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ListContainersRequest, ListContainersResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn list_containers(
        &self,
        _request: ListContainersRequest,
    ) -> Result<ListContainersResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ListContainers",
        })
    }
}
