//! Version: names the runtime and the CRI version it speaks.

use berth_api::runtime::v1::{VersionRequest, VersionResponse};

use super::RuntimeService;
use crate::error::Result;

/// The version of the kubelet-facing API berth implements (the `version` field).
const KUBE_API_VERSION: &str = "0.1.0";
const RUNTIME_NAME: &str = "berth";
const RUNTIME_API_VERSION: &str = "v1";

impl RuntimeService {
    /// The request's `version` is the kubelet's API version; berth speaks only v1 and
    /// answers the same whatever it says.
    pub async fn version(&self, _request: VersionRequest) -> Result<VersionResponse> {
        Ok(VersionResponse {
            version: KUBE_API_VERSION.to_string(),
            runtime_name: RUNTIME_NAME.to_string(),
            runtime_version: env!("CARGO_PKG_VERSION").to_string(),
            runtime_api_version: RUNTIME_API_VERSION.to_string(),
        })
    }
}
