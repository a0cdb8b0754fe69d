//! ContainerStatus: state, exit code and reason, times, log path, mounts, image;
//! `verbose` adds the pid and berth's record.

use std::collections::HashMap;

use berth_api::runtime::v1::{ContainerStatusRequest, ContainerStatusResponse};

use super::RuntimeService;
use super::convert;
use crate::error::Result;

impl RuntimeService {
    pub async fn container_status(
        &self,
        request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse> {
        let c = self.sandboxes.container_record(&request.container_id)?;
        let mut info = HashMap::new();
        if request.verbose {
            let verbose = serde_json::json!({
                "pid": c.pid,
                "sandboxID": c.pod_id,
                "config": c.config,
                "stopSignal": c.stop_signal,
            });
            info.insert("info".to_string(), verbose.to_string());
        }
        Ok(ContainerStatusResponse {
            status: Some(convert::container_status(&c)),
            info,
        })
    }
}
