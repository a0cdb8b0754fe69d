//! RuntimeConfig: the settings the kubelet must agree with; today the cgroup driver.

use berth_api::runtime::v1::{
    self as cri, LinuxRuntimeConfiguration, RuntimeConfigRequest, RuntimeConfigResponse,
};

use super::RuntimeService;
use crate::config::CgroupDriver;
use crate::error::Result;

impl RuntimeService {
    pub async fn runtime_config(
        &self,
        _request: RuntimeConfigRequest,
    ) -> Result<RuntimeConfigResponse> {
        let driver = match self.config.cgroup_driver {
            CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
            CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
        };
        Ok(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration {
                cgroup_driver: driver as i32,
            }),
        })
    }
}
