//! ListMetricDescriptors: describes the metrics ListPodSandboxMetrics returns.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ListMetricDescriptorsRequest, ListMetricDescriptorsResponse};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn list_metric_descriptors(
        &self,
        _request: ListMetricDescriptorsRequest,
    ) -> Result<ListMetricDescriptorsResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.RuntimeService/ListMetricDescriptors",
        })
    }
}
