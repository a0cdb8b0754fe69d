//! The result of an ADD: interfaces, IPs, routes and DNS, as the last plugin printed them.
//!
//! Results of spec 0.3.0 and later (`interfaces`, `ips`) are read as such; the older form
//! (`ip4`, `ip6`) is read into the same shape. The JSON itself is kept (`raw`): it is the
//! `prevResult` of DEL and CHECK and goes to the cache as printed.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

/// A parsed ADD result.
#[derive(Debug, Clone, PartialEq)]
pub struct AddResult {
    /// The interface the runtime asked for (CNI_IFNAME), which picks the pod IP.
    pub ifname: String,
    pub cni_version: String,
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    /// The result as the plugin printed it.
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    /// The netns path for an interface inside the sandbox; empty for a host interface.
    #[serde(default)]
    pub sandbox: String,
}

/// One address: `address/prefix_len` on `interfaces[interface]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    /// Index into [`AddResult::interfaces`].
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default)]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct Dns {
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Deserialize)]
struct Current {
    #[serde(default, rename = "cniVersion")]
    cni_version: String,
    #[serde(default)]
    interfaces: Vec<Interface>,
    #[serde(default)]
    ips: Vec<CurrentIp>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Deserialize)]
struct CurrentIp {
    address: String,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    interface: Option<usize>,
}

/// The 0.1.0/0.2.0 form.
#[derive(Deserialize)]
struct Legacy {
    #[serde(default)]
    ip4: Option<LegacyIp>,
    #[serde(default)]
    ip6: Option<LegacyIp>,
    #[serde(default)]
    dns: Dns,
}

#[derive(Deserialize)]
struct LegacyIp {
    ip: String,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    routes: Vec<Route>,
}

impl AddResult {
    /// Reads a result printed by a plugin for interface `ifname`.
    pub fn parse(raw: Value, ifname: &str) -> Result<AddResult, String> {
        if !raw.is_object() {
            return Err("result is not a json object".into());
        }
        let is_legacy = raw.get("ips").is_none()
            && raw.get("interfaces").is_none()
            && (raw.get("ip4").is_some() || raw.get("ip6").is_some());
        if is_legacy {
            let legacy: Legacy = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
            let mut ips = Vec::new();
            let mut routes = Vec::new();
            for ip in [legacy.ip4, legacy.ip6].into_iter().flatten() {
                let (address, prefix_len) = parse_cidr(&ip.ip)?;
                ips.push(IpConfig {
                    address,
                    prefix_len,
                    gateway: ip.gateway,
                    interface: None,
                });
                routes.extend(ip.routes);
            }
            return Ok(AddResult {
                ifname: ifname.to_string(),
                cni_version: raw
                    .get("cniVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                interfaces: Vec::new(),
                ips,
                routes,
                dns: legacy.dns,
                raw,
            });
        }
        let current: Current = serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        let mut ips = Vec::with_capacity(current.ips.len());
        for ip in current.ips {
            let (address, prefix_len) = parse_cidr(&ip.address)?;
            if let Some(i) = ip.interface.filter(|&i| i >= current.interfaces.len()) {
                return Err(format!(
                    "ip {} names interface {i} of {}",
                    ip.address,
                    current.interfaces.len()
                ));
            }
            ips.push(IpConfig {
                address,
                prefix_len,
                gateway: ip.gateway,
                interface: ip.interface,
            });
        }
        Ok(AddResult {
            ifname: ifname.to_string(),
            cni_version: current.cni_version,
            interfaces: current.interfaces,
            ips,
            routes: current.routes,
            dns: current.dns,
            raw,
        })
    }

    /// The pod's IPs, the pod IP first: the IPs on the runtime's interface inside the
    /// sandbox (all IPs if none is tied to it), IPv4 before IPv6, then any other IPs.
    pub fn ips(&self) -> Vec<IpAddr> {
        let on_ifname = |ip: &IpConfig| {
            ip.interface
                .and_then(|i| self.interfaces.get(i))
                .is_some_and(|iface| iface.name == self.ifname && !iface.sandbox.is_empty())
        };
        let mut primary: Vec<&IpConfig> = self.ips.iter().filter(|ip| on_ifname(ip)).collect();
        if primary.is_empty() {
            primary = self.ips.iter().collect();
        }
        // Stable: the plugin's order is kept within each family.
        primary.sort_by_key(|ip| ip.address.is_ipv6());
        let mut out: Vec<IpAddr> = primary.iter().map(|ip| ip.address).collect();
        for ip in &self.ips {
            if !out.contains(&ip.address) {
                out.push(ip.address);
            }
        }
        out
    }
}

fn parse_cidr(cidr: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| format!("address {cidr:?} is not in CIDR form"))?;
    let address: IpAddr = addr.parse().map_err(|e| format!("address {cidr:?}: {e}"))?;
    let prefix_len: u8 = len
        .parse()
        .ok()
        .filter(|&l| l <= if address.is_ipv4() { 32 } else { 128 })
        .ok_or_else(|| format!("address {cidr:?}: bad prefix length"))?;
    Ok((address, prefix_len))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bridge_result() -> Value {
        json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "berth0", "mac": "aa:bb:cc:dd:ee:01"},
                {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:02"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/run/berth/netns/p1"}
            ],
            "ips": [
                {"address": "fd00::5/64", "gateway": "fd00::1", "interface": 2},
                {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
                {"address": "192.168.9.1/24", "interface": 0}
            ],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
            "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}
        })
    }

    #[test]
    fn current_result_is_parsed() {
        let r = AddResult::parse(bridge_result(), "eth0").unwrap();
        assert_eq!(r.cni_version, "1.0.0");
        assert_eq!(r.interfaces.len(), 3);
        assert_eq!(r.interfaces[2].sandbox, "/run/berth/netns/p1");
        assert_eq!(r.ips[1].address, "10.88.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(r.ips[1].prefix_len, 16);
        assert_eq!(r.ips[1].gateway, Some("10.88.0.1".parse().unwrap()));
        assert_eq!(r.routes[1].gw, Some("fd00::1".parse().unwrap()));
        assert_eq!(r.dns.nameservers, ["10.96.0.10"]);
        assert_eq!(r.raw, bridge_result());
    }

    #[test]
    fn pod_ip_is_the_ipv4_on_the_sandbox_interface() {
        let r = AddResult::parse(bridge_result(), "eth0").unwrap();
        let ips: Vec<String> = r.ips().iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.88.0.5", "fd00::5", "192.168.9.1"]);
    }

    #[test]
    fn without_interface_indexes_all_ips_count() {
        let r = AddResult::parse(
            json!({"cniVersion": "0.4.0", "ips": [
                {"address": "fd00::7/64"}, {"address": "10.1.0.7/24"}]}),
            "eth0",
        )
        .unwrap();
        let ips: Vec<String> = r.ips().iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["10.1.0.7", "fd00::7"]);
    }

    #[test]
    fn legacy_result_is_read() {
        let r = AddResult::parse(
            json!({"cniVersion": "0.2.0",
                "ip4": {"ip": "10.2.0.3/24", "gateway": "10.2.0.1",
                        "routes": [{"dst": "0.0.0.0/0"}]},
                "dns": {}}),
            "eth0",
        )
        .unwrap();
        assert_eq!(r.ips(), ["10.2.0.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.routes.len(), 1);
    }

    #[test]
    fn bad_results_are_rejected_with_the_reason() {
        let bad = [
            (json!([]), "not a json object"),
            (json!({"ips": [{"address": "10.0.0.1"}]}), "CIDR"),
            (json!({"ips": [{"address": "10.0.0.1/33"}]}), "prefix"),
            (json!({"ips": [{"address": "nope/24"}]}), "nope"),
            (
                json!({"interfaces": [], "ips": [{"address": "10.0.0.1/8", "interface": 0}]}),
                "interface 0",
            ),
        ];
        for (raw, want) in bad {
            let err = AddResult::parse(raw.clone(), "eth0").unwrap_err();
            assert!(err.contains(want), "{raw}: {err}");
        }
    }
}
