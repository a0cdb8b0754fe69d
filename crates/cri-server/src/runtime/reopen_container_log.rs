//! ReopenContainerLog: makes the shim reopen the CRI log file (after the kubelet rotates it).
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ReopenContainerLogRequest, ReopenContainerLogResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn reopen_container_log(
        &self,
        _request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ReopenContainerLog",
        })
    }
}
