//! PortForward: returns a streaming-server URL to forward ports of the pod.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{PortForwardRequest, PortForwardResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn port_forward(&self, _request: PortForwardRequest) -> Result<PortForwardResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/PortForward",
        })
    }
}
