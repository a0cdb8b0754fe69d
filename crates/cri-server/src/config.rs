//! berthd's configuration: built-in defaults, overlaid by a TOML file, overlaid by flags.
//!
//! Every key is optional. Unknown keys are rejected with the key named, so a typo never
//! silently falls back to a default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/berth/config.toml";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The CRI socket.
    pub socket: PathBuf,
    /// Persistent state: images, snapshots, pod and container records.
    pub root: PathBuf,
    /// Volatile state: shim sockets, netns pins, exit files.
    pub state: PathBuf,
    /// A tracing filter: a level (`info`) or directives (`berth_cri_server=debug,info`).
    pub log_level: String,
    pub log_format: LogFormat,
    pub cgroup_driver: CgroupDriver,
    /// cgroup parent of pods the kubelet gives none (cgroupfs path).
    pub cgroup_parent: String,
    /// The infra (pause) image of every pod; empty: berth's built-in pause, which needs
    /// no pull. A configured image is pulled (through the registry settings) when absent.
    pub pause_image: String,
    /// The berth-shim binary; empty: the one beside berthd, else `berth-shim` on PATH.
    pub shim_binary: PathBuf,
    /// The runc-compatible runtime the shims run; empty: `berth-oci` beside berthd, else
    /// on PATH.
    pub runtime_binary: PathBuf,
    pub cni: CniConfig,
    pub registry: RegistryConfig,
    pub metrics: MetricsConfig,
    pub streaming: StreamingConfig,
}

/// The Prometheus `/metrics` and `/healthz` endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// `host:port`; loopback by default. Port 0 picks a free port (logged).
    pub address: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            address: "127.0.0.1:9323".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CniConfig {
    /// Where network configurations (*.conflist, *.conf, *.json) are read from.
    pub conf_dir: PathBuf,
    /// Where plugin binaries are looked up, in order.
    pub bin_dirs: Vec<PathBuf>,
}

/// The streaming server (exec, attach, port-forward URLs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingConfig {
    /// The address it binds; loopback by default, so only local clients (the kubelet,
    /// crictl) reach it.
    pub address: std::net::IpAddr,
    /// 0: an ephemeral port, chosen at each start.
    pub port: u16,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            address: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
        }
    }
}

/// How images are pulled: registry hosts, credentials, limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Hosts configuration, containerd certs.d style: `<config_path>/<host>/hosts.toml`
    /// (or `_default/hosts.toml`) lists mirrors and the upstream. A missing directory
    /// means no mirrors.
    pub config_path: PathBuf,
    /// Registries (`host:port`) spoken to over plain HTTP.
    pub plain_http: Vec<String>,
    /// A docker `config.json` whose `auths` are used when PullImage brings no credentials.
    pub docker_config: Option<PathBuf>,
    /// Layers of one image fetched at once.
    pub max_concurrent_downloads: usize,
    /// What one layer may unpack to at most (bytes of its tar stream and of the file data
    /// it writes): a decompression bomb fails its pull at this size.
    pub max_layer_bytes: u64,
    /// Images that RemoveImage refuses and GC keeps (CRI `pinned`), e.g. the pause
    /// image: marked pinned when pulled, and at start if already stored.
    pub pinned_images: Vec<String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            config_path: "/etc/berth/certs.d".into(),
            plain_http: Vec::new(),
            docker_config: None,
            max_concurrent_downloads: 3,
            max_layer_bytes: 64 << 30,
            pinned_images: Vec::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: "/run/berth/berth.sock".into(),
            root: "/var/lib/berth".into(),
            state: "/run/berth".into(),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            cgroup_driver: CgroupDriver::Cgroupfs,
            cgroup_parent: "/berth".into(),
            pause_image: String::new(),
            shim_binary: PathBuf::new(),
            runtime_binary: PathBuf::new(),
            cni: CniConfig::default(),
            registry: RegistryConfig::default(),
            metrics: MetricsConfig::default(),
            streaming: StreamingConfig::default(),
        }
    }
}

impl Default for CniConfig {
    fn default() -> Self {
        CniConfig {
            conf_dir: "/etc/cni/net.d".into(),
            bin_dirs: vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
        }
    }
}

impl Config {
    /// Parses a config file's text. Missing keys take their defaults.
    pub fn from_toml(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e| Error::Config(e.message().to_string()))
    }

    /// Loads the config file. With `explicit` false (the default path, not named on the
    /// command line) a missing file means "all defaults"; a file named explicitly must
    /// exist.
    pub fn load(path: &Path, explicit: bool) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_toml(&text)
                .map_err(|e| Error::Config(format!("{}: {}", path.display(), strip(e)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Config::default())
            }
            Err(e) => Err(Error::io("read config file", path, e)),
        }
    }
}

/// A helper binary: `configured` when set, else `name` beside the running berthd, else
/// `name` (looked up on PATH when run).
pub fn helper_binary(configured: &Path, name: &str) -> PathBuf {
    if !configured.as_os_str().is_empty() {
        return configured.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// One line of explanation per key, in the order `berthd config default` prints them.
/// A key missing here fails a unit test, so the printed file always lists every key.
const KEY_DOCS: &[(&str, &str)] = &[
    ("socket", "the CRI socket the kubelet connects to"),
    (
        "root",
        "persistent state: images, snapshots, pod and container records",
    ),
    ("state", "volatile state: shim sockets, netns pins, bundles"),
    (
        "log_level",
        "a level (error, warn, info, debug, trace) or tracing directives",
    ),
    ("log_format", "text or json, on stderr"),
    (
        "cgroup_driver",
        "cgroupfs or systemd; must match the kubelet's cgroupDriver",
    ),
    (
        "cgroup_parent",
        "cgroup parent of pods the kubelet gives none",
    ),
    (
        "pause_image",
        "an infra image for every pod; empty: the built-in pause (no pull)",
    ),
    (
        "shim_binary",
        "berth-shim; empty: the one beside berthd, else on PATH",
    ),
    (
        "runtime_binary",
        "the runc-compatible runtime; empty: berth-oci beside berthd, else on PATH",
    ),
    (
        "cni.conf_dir",
        "where CNI network configs are read (the first in name order is used)",
    ),
    (
        "cni.bin_dirs",
        "where CNI plugin binaries are looked up, in order",
    ),
    (
        "registry.config_path",
        "registry hosts: <dir>/<host>/hosts.toml (mirrors, TLS), read at each pull",
    ),
    (
        "registry.plain_http",
        "registries (host:port) spoken to over plain HTTP",
    ),
    (
        "registry.docker_config",
        "a docker config.json whose auths are used when a pull brings none",
    ),
    (
        "registry.max_concurrent_downloads",
        "layers of one image fetched at once",
    ),
    (
        "registry.max_layer_bytes",
        "what one layer may unpack to; a larger one fails its pull",
    ),
    (
        "registry.pinned_images",
        "images RemoveImage refuses and garbage collection keeps",
    ),
    ("metrics.enabled", "serve Prometheus /metrics and /healthz"),
    (
        "metrics.address",
        "host:port of the metrics endpoint (loopback by default)",
    ),
    (
        "streaming.address",
        "where the exec/attach/port-forward streaming server listens",
    ),
    (
        "streaming.port",
        "its port; 0 picks a free one at each start",
    ),
];

/// Examples for keys whose default is "unset" (TOML has no null).
const UNSET_EXAMPLES: &[(&str, &str)] =
    &[("registry.docker_config", "\"/root/.docker/config.json\"")];

/// The full default configuration as a TOML file with every key commented out: what
/// `berthd config default` prints and `hack/install` installs.
pub fn default_toml() -> String {
    let value = toml::Value::try_from(Config::default()).expect("the default config serializes");
    let mut out = String::from(
        "# berthd configuration. Every key is optional; the values shown are the built-in\n\
         # defaults. Uncomment a line to change it. A key berthd does not know is an error.\n",
    );
    let mut section = "";
    for (key, doc) in KEY_DOCS {
        let (table, name) = key.split_once('.').unwrap_or(("", key));
        if table != section {
            out.push_str(&format!("\n# [{table}]\n"));
            section = table;
        } else if table.is_empty() && out.ends_with(".\n") {
            out.push('\n');
        }
        let current = if table.is_empty() {
            value.get(name)
        } else {
            value.get(table).and_then(|t| t.get(name))
        };
        let shown = match current {
            Some(v) => v.to_string(),
            None => UNSET_EXAMPLES
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, e)| e.to_string())
                .unwrap_or_default(),
        };
        out.push_str(&format!("# {doc}\n# {name} = {shown}\n"));
    }
    out
}

/// Checks a config file: Ok, or the error with the bad key and its line.
pub fn check_file(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read config file", path, e))?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        let start = e.span().map(|s| s.start.min(text.len())).unwrap_or(0);
        // An unknown field's span is its whole table: point at the key itself.
        let key_at = e
            .message()
            .split('`')
            .nth(1)
            .filter(|_| e.message().starts_with("unknown field"))
            .and_then(|key| {
                let mut offset = start;
                text[start..].lines().find_map(|l| {
                    let here = offset;
                    offset += l.len() + 1;
                    let t = l.trim_start();
                    (t.strip_prefix(key)?.trim_start().starts_with('=')).then_some(here)
                })
            });
        let line = e
            .span()
            .map(|_| text[..key_at.unwrap_or(start)].matches('\n').count() + 1);
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        Error::Config(format!("{}{at}: {}", path.display(), e.message()))
    })
}

fn strip(err: Error) -> String {
    match err {
        Error::Config(msg) => msg,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_lists_every_key_and_uncommented_gives_the_defaults() {
        let text = default_toml();
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .filter(|l| !l.starts_with("docker_config"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(Config::from_toml(&uncommented).unwrap(), Config::default());
        // Every key of the config has a line.
        let value = toml::Value::try_from(Config::default()).unwrap();
        for (k, v) in value.as_table().unwrap() {
            match v.as_table() {
                Some(t) => {
                    for k2 in t.keys() {
                        let key = format!("{k}.{k2}");
                        assert!(
                            KEY_DOCS.iter().any(|(d, _)| *d == key),
                            "{key} undocumented"
                        );
                    }
                }
                None => assert!(KEY_DOCS.iter().any(|(d, _)| d == k), "{k} undocumented"),
            }
        }
        assert!(text.contains("# docker_config = \"/root/.docker/config.json\""));
    }

    #[test]
    fn check_names_the_bad_key_and_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "socket = \"/x\"\n\n[cni]\nbin_dir = []\n").unwrap();
        let err = check_file(&path).unwrap_err().to_string();
        assert!(err.contains("bin_dir") && err.contains("line 4"), "{err}");
        std::fs::write(&path, "socket = \"/x\"\nlog_format = \"xml\"\n").unwrap();
        let err = check_file(&path).unwrap_err().to_string();
        assert!(err.contains("xml") && err.contains("line 2"), "{err}");
        std::fs::write(&path, "socket = \"/x\"\n").unwrap();
        assert!(check_file(&path).is_ok());
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn keys_override_defaults() {
        let cfg = Config::from_toml(
            r#"
            socket = "/tmp/b.sock"
            log_format = "json"
            cgroup_driver = "systemd"
            [cni]
            bin_dirs = ["/x"]
            [registry]
            plain_http = ["127.0.0.1:5000"]
            docker_config = "/root/.docker/config.json"
            [streaming]
            address = "0.0.0.0"
            port = 10010
            "#,
        )
        .unwrap();
        assert_eq!(cfg.socket, PathBuf::from("/tmp/b.sock"));
        assert_eq!(cfg.log_format, LogFormat::Json);
        assert_eq!(cfg.cgroup_driver, CgroupDriver::Systemd);
        assert_eq!(cfg.cni.bin_dirs, vec![PathBuf::from("/x")]);
        assert_eq!(cfg.cni.conf_dir, PathBuf::from("/etc/cni/net.d"));
        assert_eq!(cfg.root, PathBuf::from("/var/lib/berth"));
        assert_eq!(cfg.registry.plain_http, ["127.0.0.1:5000"]);
        assert_eq!(cfg.streaming.address.to_string(), "0.0.0.0");
        assert_eq!(cfg.streaming.port, 10010);
        assert_eq!(
            cfg.registry.config_path,
            PathBuf::from("/etc/berth/certs.d")
        );
        assert_eq!(
            cfg.registry.docker_config.as_deref(),
            Some(Path::new("/root/.docker/config.json"))
        );
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = Config::from_toml("sockett = \"/x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sockett"), "{err}");
        let err = Config::from_toml("[cni]\nbin_dir = []")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bin_dir"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected() {
        let err = Config::from_toml("cgroup_driver = \"cgroupv3\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cgroupv3"), "{err}");
    }

    #[test]
    fn missing_default_file_is_fine_but_explicit_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        assert_eq!(Config::load(&path, false).unwrap(), Config::default());
        assert!(Config::load(&path, true).is_err());
    }
}
