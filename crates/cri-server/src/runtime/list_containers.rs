//! ListContainers: every container, filtered by id (prefix), pod, state and labels.

use berth_api::runtime::v1::{ListContainersRequest, ListContainersResponse};

use super::RuntimeService;
use super::convert;
use crate::error::Result;

impl RuntimeService {
    pub async fn list_containers(
        &self,
        request: ListContainersRequest,
    ) -> Result<ListContainersResponse> {
        let filter = request.filter.unwrap_or_default();
        let mut containers: Vec<_> = self
            .sandboxes
            .records()
            .containers()
            .iter()
            .filter(|c| convert::container_matches(c, &filter))
            .map(convert::container_summary)
            .collect();
        containers.sort_by_key(|c| c.created_at);
        Ok(ListContainersResponse { containers })
    }
}
