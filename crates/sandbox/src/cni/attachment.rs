//! What the runtime says about one pod when it calls the plugins: the attachment (container
//! id, netns, interface name, CNI_ARGS) and the runtime config ("capabilities": port
//! mappings, bandwidth, DNS) handed to the plugins that declare them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The interface name berth asks for inside the pod.
pub const DEFAULT_IFNAME: &str = "eth0";

/// One pod's attachment to the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// CNI_CONTAINERID: the pod sandbox id.
    pub container_id: String,
    /// CNI_NETNS: the pinned network namespace.
    pub netns: PathBuf,
    /// CNI_IFNAME.
    pub ifname: String,
    /// CNI_ARGS, in order (`IgnoreUnknown=1` is always put first, see [`Self::cni_args`]).
    pub args: Vec<(String, String)>,
    /// The runtime config the plugins may ask for through their `capabilities`.
    pub capabilities: RuntimeConfig,
}

impl Attachment {
    /// An attachment on `eth0` with no args and no capabilities.
    pub fn new(container_id: impl Into<String>, netns: impl Into<PathBuf>) -> Attachment {
        Attachment {
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: DEFAULT_IFNAME.to_string(),
            args: Vec::new(),
            capabilities: RuntimeConfig::default(),
        }
    }

    /// Adds the args the kubelet's pods carry: K8S_POD_NAMESPACE, K8S_POD_NAME,
    /// K8S_POD_INFRA_CONTAINER_ID (the sandbox id) and K8S_POD_UID.
    pub fn with_pod(mut self, namespace: &str, name: &str, uid: &str) -> Attachment {
        let infra = self.container_id.clone();
        for (k, v) in [
            ("K8S_POD_NAMESPACE", namespace),
            ("K8S_POD_NAME", name),
            ("K8S_POD_INFRA_CONTAINER_ID", infra.as_str()),
            ("K8S_POD_UID", uid),
        ] {
            self.args.push((k.to_string(), v.to_string()));
        }
        self
    }

    /// CNI_ARGS: `IgnoreUnknown=1;K=V;...`. `IgnoreUnknown=1` comes first, once, so that
    /// a plugin that does not know the K8S_* args does not refuse them.
    pub fn cni_args(&self) -> String {
        std::iter::once(("IgnoreUnknown", "1"))
            .chain(
                self.args
                    .iter()
                    .filter(|(k, _)| k != "IgnoreUnknown")
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Why the attachment cannot be passed to a plugin, if it cannot.
    pub(crate) fn invalid(&self) -> Option<String> {
        if self.container_id.is_empty() {
            return Some("empty container id".into());
        }
        if self.ifname.is_empty() || self.ifname.len() > 15 || self.ifname.contains('/') {
            return Some(format!("invalid interface name {:?}", self.ifname));
        }
        for (k, v) in &self.args {
            if k.is_empty() || k.contains(['=', ';']) || v.contains(';') {
                return Some(format!("cni arg {k:?}={v:?} contains '=' or ';'"));
            }
        }
        None
    }
}

/// The runtime config berth can give plugins. Field names are the capability names of the
/// CNI conventions document.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsConfig>,
    /// The node's pod CIDR (from the kubelet's UpdateRuntimeConfig), for IPAM plugins
    /// that take it at runtime (host-local's `ipRanges` capability).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_ranges: Vec<Vec<IpRange>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRange {
    pub subnet: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// "tcp", "udp" or "sctp".
    pub protocol: String,
    /// The host address to bind; empty for all.
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// Rates in bits per second, bursts in bits (the bandwidth plugin's units).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    #[serde(default)]
    pub ingress_rate: u64,
    #[serde(default)]
    pub ingress_burst: u64,
    #[serde(default)]
    pub egress_rate: u64,
    #[serde(default)]
    pub egress_burst: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub searches: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl RuntimeConfig {
    /// The `runtimeConfig` for one plugin: only the capabilities it declares (`true` in
    /// its `capabilities` map) and berth has a value for. `None` when nothing is left.
    pub fn for_plugin(&self, plugin: &Value) -> Option<Value> {
        let declared = plugin.get("capabilities").and_then(Value::as_object)?;
        let Ok(Value::Object(all)) = serde_json::to_value(self) else {
            return None;
        };
        let chosen: Map<String, Value> = all
            .into_iter()
            .filter(|(cap, _)| declared.get(cap).and_then(Value::as_bool) == Some(true))
            .collect();
        (!chosen.is_empty()).then_some(Value::Object(chosen))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn att() -> Attachment {
        let mut a =
            Attachment::new("sb1", "/run/berth/netns/sb1").with_pod("default", "web", "u-1");
        a.capabilities = RuntimeConfig {
            port_mappings: vec![PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: String::new(),
            }],
            bandwidth: Some(Bandwidth {
                ingress_rate: 1000,
                ..Bandwidth::default()
            }),
            dns: None,
            ip_ranges: Vec::new(),
        };
        a
    }

    #[test]
    fn cni_args_start_with_ignore_unknown_once() {
        let mut a = att();
        a.args.push(("IgnoreUnknown".into(), "0".into()));
        assert_eq!(
            a.cni_args(),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;\
             K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=u-1"
        );
        assert_eq!(Attachment::new("x", "/n").cni_args(), "IgnoreUnknown=1");
    }

    #[test]
    fn args_with_separators_are_invalid() {
        let mut a = att();
        assert_eq!(a.invalid(), None);
        a.args.push(("K".into(), "a;b".into()));
        assert!(a.invalid().unwrap().contains("\"K\""));
        let mut a = att();
        a.ifname = "a-very-long-interface".into();
        assert!(a.invalid().is_some());
    }

    #[test]
    fn runtime_config_holds_only_declared_capabilities() {
        let a = att();
        let portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}});
        assert_eq!(
            a.capabilities.for_plugin(&portmap),
            Some(json!({"portMappings": [
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}))
        );
        let bw = json!({"type": "bandwidth",
            "capabilities": {"bandwidth": true, "portMappings": false, "dns": true}});
        assert_eq!(
            a.capabilities.for_plugin(&bw),
            Some(json!({"bandwidth": {"ingressRate": 1000, "ingressBurst": 0,
                "egressRate": 0, "egressBurst": 0}}))
        );
        // Declared, but berth has no DNS config for this pod: nothing to pass.
        let dns = json!({"type": "x", "capabilities": {"dns": true}});
        assert_eq!(a.capabilities.for_plugin(&dns), None);
        assert_eq!(a.capabilities.for_plugin(&json!({"type": "bridge"})), None);
    }

    #[test]
    fn host_ip_is_named_as_the_conventions_say() {
        let m = PortMapping {
            host_port: 1,
            container_port: 2,
            protocol: "udp".into(),
            host_ip: "10.0.0.1".into(),
        };
        assert_eq!(serde_json::to_value(&m).unwrap()["hostIP"], "10.0.0.1");
    }
}
