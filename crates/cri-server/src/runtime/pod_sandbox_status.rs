//! PodSandboxStatus: state, IPs, namespaces of one pod; `verbose` adds berth's record.

use std::collections::HashMap;

use berth_api::runtime::v1::{PodSandboxStatusRequest, PodSandboxStatusResponse};

use super::RuntimeService;
use super::convert;
use crate::error::Result;

impl RuntimeService {
    pub async fn pod_sandbox_status(
        &self,
        request: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse> {
        let pod = self.sandboxes.pod_record(&request.pod_sandbox_id)?;
        let mut info = HashMap::new();
        if request.verbose {
            let verbose = serde_json::json!({
                "pid": pod.infra_pid,
                "netns": pod.netns,
                "cgroupParent": pod.cgroup_parent,
                "config": pod.config,
                "runtimeHandler": pod.runtime_handler,
            });
            info.insert("info".to_string(), verbose.to_string());
        }
        Ok(PodSandboxStatusResponse {
            status: Some(convert::pod_status(&pod)),
            info,
            containers_statuses: Vec::new(),
            timestamp: berth_sandbox::now_ns(),
        })
    }
}
