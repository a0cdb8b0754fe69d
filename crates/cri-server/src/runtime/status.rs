//! Status: the RuntimeReady and NetworkReady conditions the kubelet gates pods on.

use std::collections::HashMap;

use berth_api::runtime::v1::{RuntimeCondition, RuntimeStatus, StatusRequest, StatusResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use berth_sandbox::cni::{self, Readiness};

const RUNTIME_READY: &str = "RuntimeReady";
const NETWORK_READY: &str = "NetworkReady";
const NETWORK_NOT_READY_REASON: &str = "NetworkPluginNotReady";

impl RuntimeService {
    /// RuntimeReady is true while berthd serves. NetworkReady follows the CNI conf dir
    /// (see [`berth_sandbox::cni::config`]), checked afresh on every call so that a config written after
    /// start is picked up. `verbose` adds berthd's config, and the network config in
    /// use, as JSON under `info`.
    pub async fn status(&self, request: StatusRequest) -> Result<StatusResponse> {
        let cni = &self.config.cni;
        let readiness = cni::check(&cni.conf_dir, &cni.bin_dirs);
        let network = match &readiness {
            Readiness::Ready(_) => condition(NETWORK_READY, true, "", ""),
            Readiness::NotReady { message } => {
                condition(NETWORK_READY, false, NETWORK_NOT_READY_REASON, message)
            }
        };

        let mut info = HashMap::new();
        if request.verbose {
            let config = serde_json::to_string(&*self.config)
                .map_err(|e| Error::Internal(format!("encode config as json: {e}")))?;
            info.insert("config".to_string(), config);
            if let Readiness::Ready(net) = &readiness {
                let value = serde_json::json!({
                    "file": net.file,
                    "name": net.name,
                    "config": net.raw,
                });
                info.insert("cniNetwork".to_string(), value.to_string());
            }
            let pod_cidr = self.pod_cidr();
            if !pod_cidr.is_empty() {
                info.insert("podCIDR".to_string(), pod_cidr);
            }
        }

        Ok(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![condition(RUNTIME_READY, true, "", ""), network],
            }),
            info,
            runtime_handlers: Vec::new(),
            features: None,
        })
    }
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> RuntimeCondition {
    RuntimeCondition {
        r#type: kind.to_string(),
        status,
        reason: reason.to_string(),
        message: message.to_string(),
    }
}
