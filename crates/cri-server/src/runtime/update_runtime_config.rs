//! UpdateRuntimeConfig: the kubelet pushes the node's pod CIDR.

use berth_api::runtime::v1::{UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse};
use tracing::info;

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    /// Remembers the pod CIDR in memory (the kubelet sends it again after a berthd
    /// restart); CNI plugins that declare the `ipRanges` capability get it at pod
    /// creation. An empty CIDR leaves the last one alone.
    pub async fn update_runtime_config(
        &self,
        request: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse> {
        let pod_cidr = request
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if !pod_cidr.is_empty() && self.sandboxes.pod_cidr() != pod_cidr {
            info!(pod_cidr = %pod_cidr, "pod cidr updated");
            self.sandboxes.set_pod_cidr(&pod_cidr);
        }
        Ok(UpdateRuntimeConfigResponse {})
    }
}
