//! The runtime side of the CNI spec: network configs, plugin invocation, result cache.
//!
//! PLACEHOLDER API (being written on another branch): the signatures the pod code uses.

use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("cni: {0}")]
pub struct Error(pub String);

#[derive(Debug, Clone, Default)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: String,
}

#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub netns: PathBuf,
    pub ifname: String,
    pub args: Vec<(String, String)>,
    pub capabilities: Capabilities,
}

pub struct AddResult;

impl AddResult {
    pub fn ips(&self) -> Vec<IpAddr> {
        Vec::new()
    }
}

pub struct Cni;

impl Cni {
    pub fn new(_conf_dir: PathBuf, _bin_dirs: Vec<PathBuf>, _cache_dir: PathBuf) -> Cni {
        Cni
    }
    pub async fn add(&self, _att: &Attachment) -> Result<AddResult, Error> {
        Err(Error("not written yet".into()))
    }
    pub async fn del(&self, _att: &Attachment) -> Result<(), Error> {
        Ok(())
    }
}
