//! PortForward: stores the pod under a single-use token and returns the streaming-server
//! URL where the client forwards ports into the pod's network namespace
//! (crate::streaming).

use berth_api::runtime::v1::{PortForwardRequest, PortForwardResponse};

use super::RuntimeService;
use crate::error::{Error, Result};
use crate::streaming::tokens::Target;

impl RuntimeService {
    pub async fn port_forward(&self, request: PortForwardRequest) -> Result<PortForwardResponse> {
        let pod = self
            .sandboxes
            .records()
            .find_pod(&request.pod_sandbox_id)
            .filter(|p| p.state.is_visible())
            .ok_or_else(|| Error::NotFound {
                kind: "pod sandbox",
                id: request.pod_sandbox_id.clone(),
            })?;
        let ports = request
            .port
            .iter()
            .map(|p| {
                u16::try_from(*p)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| Error::InvalidArgument(format!("invalid port {p}")))
            })
            .collect::<Result<Vec<u16>>>()?;
        let url = self.streaming.url_for(Target::PortForward {
            pod_id: pod.id,
            ports,
        })?;
        Ok(PortForwardResponse { url })
    }
}
