//! CheckpointContainer: checkpoints a running container to an archive.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{CheckpointContainerRequest, CheckpointContainerResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn checkpoint_container(
        &self,
        _request: CheckpointContainerRequest,
    ) -> Result<CheckpointContainerResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/CheckpointContainer",
        })
    }
}
