//! RemoveContainer: deletes a container, killing it first if needed. Idempotent.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{RemoveContainerRequest, RemoveContainerResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn remove_container(
        &self,
        _request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/RemoveContainer",
        })
    }
}
