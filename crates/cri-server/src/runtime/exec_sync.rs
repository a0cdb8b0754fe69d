//! ExecSync: runs a command in a container and returns its output and exit code.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ExecSyncRequest, ExecSyncResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn exec_sync(&self, _request: ExecSyncRequest) -> Result<ExecSyncResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ExecSync",
        })
    }
}
