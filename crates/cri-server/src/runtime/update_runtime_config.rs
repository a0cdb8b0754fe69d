//! UpdateRuntimeConfig: the kubelet pushes the node's pod CIDR.

use berth_api::runtime::v1::{UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse};
use tracing::info;

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    /// Remembers the pod CIDR in memory (the kubelet sends it again after a berthd
    /// restart). Nothing uses it yet: CNI will hand it to the IPAM plugin once pod
    /// networking lands in the sandbox crate. An empty CIDR leaves the last one alone.
    pub async fn update_runtime_config(
        &self,
        request: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse> {
        let pod_cidr = request
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        if !pod_cidr.is_empty() {
            let mut current = self
                .pod_cidr
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if *current != pod_cidr {
                info!(pod_cidr = %pod_cidr, "pod cidr updated");
                *current = pod_cidr;
            }
        }
        Ok(UpdateRuntimeConfigResponse {})
    }
}
