//! ListPodSandboxMetrics: prometheus-style metrics of pods and their containers.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ListPodSandboxMetricsRequest, ListPodSandboxMetricsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn list_pod_sandbox_metrics(
        &self,
        _request: ListPodSandboxMetricsRequest,
    ) -> Result<ListPodSandboxMetricsResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ListPodSandboxMetrics",
        })
    }
}
