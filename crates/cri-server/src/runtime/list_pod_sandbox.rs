//! ListPodSandbox: every pod, filtered by id (prefix), state and labels.

use berth_api::runtime::v1::{ListPodSandboxRequest, ListPodSandboxResponse};

use super::RuntimeService;
use super::convert;
use crate::error::Result;

impl RuntimeService {
    pub async fn list_pod_sandbox(
        &self,
        request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse> {
        let filter = request.filter.unwrap_or_default();
        let mut items: Vec<_> = self
            .sandboxes
            .records()
            .pods()
            .iter()
            .filter(|p| convert::pod_matches(p, &filter))
            .map(convert::pod_summary)
            .collect();
        items.sort_by_key(|p| p.created_at);
        Ok(ListPodSandboxResponse { items })
    }
}
