//! Attach: returns a streaming-server URL to attach to the main process.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{AttachRequest, AttachResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn attach(&self, _request: AttachRequest) -> Result<AttachResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/Attach",
        })
    }
}
