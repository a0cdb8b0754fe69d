//! ReopenContainerLog: the shim reopens the CRI log file (after the kubelet rotated it).

use berth_api::runtime::v1::{ReopenContainerLogRequest, ReopenContainerLogResponse};

use super::RuntimeService;
use crate::error::Result;

impl RuntimeService {
    pub async fn reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse> {
        self.sandboxes.reopen_log(&request.container_id).await?;
        Ok(ReopenContainerLogResponse {})
    }
}
