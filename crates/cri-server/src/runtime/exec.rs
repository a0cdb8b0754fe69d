//! Exec: returns a streaming-server URL for an interactive exec.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ExecRequest, ExecResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn exec(&self, _request: ExecRequest) -> Result<ExecResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/Exec",
        })
    }
}
