//! The runtime side of the CNI spec (1.0.0, and 0.3.x/0.4.0 lists): network configs,
//! plugin invocation, result cache.
//!
//! - [`config`]: which network berth uses (the first valid file of the conf dir) and
//!   whether its plugins are installed (the NetworkReady condition).
//! - [`Cni`]: ADD, CHECK and DEL of a pod's [`Attachment`] to that network: each plugin
//!   of the list run in order (DEL: in reverse) with the CNI_* environment, its config on
//!   stdin with `prevResult` and the `runtimeConfig` of the capabilities it declares.
//! - [`cache`]: what a successful ADD did, so that DEL replays the same list with the same
//!   `prevResult` after a berthd restart or a change of the conf dir.
//!
//! See docs/cri.md, "CNI".

pub mod attachment;
pub mod cache;
pub mod config;
mod exec;
pub mod result;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tracing::{debug, info, warn};

pub use attachment::{Attachment, Bandwidth, DnsConfig, IpRange, PortMapping, RuntimeConfig};
pub use config::{Network, Readiness, check, discover};
pub use exec::Command;
pub use result::AddResult;

/// The default time one plugin invocation may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What can go wrong wiring a pod; plugin errors name the plugin and the network.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no valid cni network config in {}{skipped}", dir.display())]
    NoNetwork { dir: PathBuf, skipped: String },

    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },

    #[error("cni plugin {plugin} of network {network} not found in {dirs}")]
    PluginNotFound {
        network: String,
        plugin: String,
        dirs: String,
    },

    #[error(
        "cni plugin {plugin} of network {network}: {command} failed: {msg}{}{}",
        code.map(|c| format!(" (code {c})")).unwrap_or_default(),
        if details.is_empty() { String::new() } else { format!(": {details}") }
    )]
    Plugin {
        network: String,
        plugin: String,
        command: Command,
        code: Option<u32>,
        msg: String,
        details: String,
    },

    #[error("cni plugin {plugin} of network {network}: {command} timed out after {timeout:?}")]
    Timeout {
        network: String,
        plugin: String,
        command: Command,
        timeout: Duration,
    },

    #[error("cni plugin {plugin} of network {network}: exec {}: {source}", path.display())]
    Exec {
        network: String,
        plugin: String,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cni plugin {plugin} of network {network}: {command}: invalid result: {reason}")]
    InvalidResult {
        network: String,
        plugin: String,
        command: Command,
        reason: String,
    },

    #[error("cni attachment of container {container_id}: {reason}")]
    InvalidAttachment {
        container_id: String,
        reason: String,
    },

    #[error("no cached cni result for container {container_id} interface {ifname}")]
    NotCached {
        container_id: String,
        ifname: String,
    },

    #[error("container {container_id} is already attached on {ifname} (cached in {})", path.display())]
    AlreadyAttached {
        container_id: String,
        ifname: String,
        path: PathBuf,
    },

    #[error("cni cache {}: {reason}", path.display())]
    Cache { path: PathBuf, reason: String },

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{add}; and the cleanup DEL failed too: {del}")]
    AddCleanup { add: Box<Error>, del: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// For `map_err`: an I/O error with the operation and the path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// An attachment read back from the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached {
    /// The network list as ADD ran it.
    pub network: Network,
    pub attachment: Attachment,
    pub result: AddResult,
}

/// The CNI runtime: where configs, plugins and the result cache are. Cheap to make; holds
/// no state beyond the paths (the cache is on disk).
#[derive(Debug, Clone)]
pub struct Cni {
    conf_dir: PathBuf,
    bin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
    timeout: Duration,
}

impl Cni {
    pub fn new(
        conf_dir: impl Into<PathBuf>,
        bin_dirs: Vec<PathBuf>,
        cache_dir: impl Into<PathBuf>,
    ) -> Cni {
        Cni {
            conf_dir: conf_dir.into(),
            bin_dirs,
            cache_dir: cache_dir.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The time one plugin invocation may take before it is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Cni {
        self.timeout = timeout;
        self
    }

    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The NetworkReady check (see [`config::check`]).
    pub fn readiness(&self) -> Readiness {
        check(&self.conf_dir, &self.bin_dirs)
    }

    /// The network ADD would use now.
    pub fn network(&self) -> Result<Network> {
        discover(&self.conf_dir)
    }

    fn invoker(&self) -> exec::Invoker<'_> {
        exec::Invoker {
            bin_dirs: &self.bin_dirs,
            timeout: self.timeout,
        }
    }

    /// Attaches the pod: ADD through every plugin of the current network, in order, then
    /// caches the result. If a plugin fails, the whole list is DELeted (so no address
    /// stays allocated) and the ADD error returned. An attachment already cached is
    /// refused before any plugin runs: a failing second ADD would otherwise DEL the
    /// first one.
    pub async fn add(&self, att: &Attachment) -> Result<AddResult> {
        validate(att)?;
        if let Some((path, _)) = self.cached_record(att)? {
            return Err(Error::AlreadyAttached {
                container_id: att.container_id.clone(),
                ifname: att.ifname.clone(),
                path,
            });
        }
        let network = self.network()?;
        let mut prev: Option<Value> = None;
        let mut failed = None;
        for plugin in &network.plugins {
            let stdin = exec::plugin_stdin(
                &network.name,
                &network.cni_version,
                plugin,
                prev.as_ref(),
                att,
            );
            match self
                .invoker()
                .invoke(&network.name, Command::Add, &stdin, att)
                .await
            {
                Ok(Some(result)) => prev = Some(result),
                Ok(None) => {
                    failed = Some(Error::InvalidResult {
                        network: network.name.clone(),
                        plugin: config::plugin_type(plugin).unwrap_or_default(),
                        command: Command::Add,
                        reason: "no result printed".into(),
                    });
                    break;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let outcome = match (failed, prev) {
            (Some(e), _) => Err(e),
            (None, None) => unreachable!("a network has at least one plugin"),
            (None, Some(raw)) => AddResult::parse(raw, &att.ifname)
                .map_err(|reason| Error::InvalidResult {
                    network: network.name.clone(),
                    plugin: network
                        .plugins
                        .last()
                        .and_then(|p| config::plugin_type(p).ok())
                        .unwrap_or_default(),
                    command: Command::Add,
                    reason,
                })
                .and_then(|result| {
                    let record = cache::Record {
                        version: cache::RECORD_VERSION,
                        network_name: network.name.clone(),
                        config_file: network.file.clone(),
                        network: network.as_conflist(),
                        attachment: att.clone(),
                        result: result.raw.clone(),
                    };
                    let path = self.cache_path(&network.name, att);
                    cache::write(&path, &record)?;
                    Ok(result)
                }),
        };
        match outcome {
            Ok(result) => {
                info!(
                    network = %network.name,
                    container_id = %att.container_id,
                    ips = ?result.ips(),
                    "pod network attached"
                );
                Ok(result)
            }
            Err(add) => {
                warn!(
                    network = %network.name,
                    container_id = %att.container_id,
                    error = %add,
                    "cni add failed, deleting"
                );
                match self.run_del(&network, att, None).await {
                    Ok(()) => Err(add),
                    Err(del) => Err(Error::AddCleanup {
                        add: Box::new(add),
                        del: Box::new(del),
                    }),
                }
            }
        }
    }

    /// CHECK of a cached attachment, with the network and result ADD cached. Skipped (Ok)
    /// for lists older than 0.4.0 or with `disableCheck`.
    pub async fn check(&self, att: &Attachment) -> Result<()> {
        validate(att)?;
        let Some((_, record)) = self.cached_record(att)? else {
            return Err(Error::NotCached {
                container_id: att.container_id.clone(),
                ifname: att.ifname.clone(),
            });
        };
        let network = cached_network(&record)?;
        if !network.supports_check() {
            debug!(network = %network.name, container_id = %att.container_id, "check skipped");
            return Ok(());
        }
        let run_as = merged(att, &record.attachment);
        for plugin in &network.plugins {
            let stdin = exec::plugin_stdin(
                &network.name,
                &network.cni_version,
                plugin,
                Some(&record.result),
                &run_as,
            );
            self.invoker()
                .invoke(&network.name, Command::Check, &stdin, &run_as)
                .await?;
        }
        Ok(())
    }

    /// Detaches the pod: DEL through every plugin, in reverse order. With a cache entry
    /// (found by container id and interface), DEL runs the cached list with the cached
    /// result as `prevResult` and the cached args and runtime config, then drops the entry.
    /// Without one it runs the current network, so a DEL of something never added (or
    /// added by a berthd that crashed before caching) still succeeds and frees what the
    /// plugins find. With neither a cache entry nor a network config there is nothing
    /// berth knows to undo, and it is Ok.
    pub async fn del(&self, att: &Attachment) -> Result<()> {
        validate(att)?;
        if let Some((path, record)) = self.cached_record(att)? {
            let network = cached_network(&record)?;
            let run_as = merged(att, &record.attachment);
            // DEL got prevResult in 0.4.0; older plugins are not given one (as libcni).
            let prev =
                config::version_at_least(&network.cni_version, (0, 4, 0)).then_some(&record.result);
            self.run_del(&network, &run_as, prev).await?;
            cache::remove(&path)?;
            info!(network = %network.name, container_id = %att.container_id, "pod network detached");
            return Ok(());
        }
        let network = match self.network() {
            Ok(network) => network,
            Err(Error::NoNetwork { .. }) | Err(Error::Io { .. }) => {
                warn!(
                    container_id = %att.container_id,
                    conf_dir = %self.conf_dir.display(),
                    "cni del: no cached attachment and no network config, nothing to do"
                );
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.run_del(&network, att, None).await?;
        // A cache entry of this name can only be a stale one of another berthd's making.
        cache::remove(&self.cache_path(&network.name, att))?;
        debug!(network = %network.name, container_id = %att.container_id, "uncached del done");
        Ok(())
    }

    /// The cached attachment of `container_id` on the default interface (else on any),
    /// for reading the pod's IPs back after a restart.
    pub fn cached(&self, container_id: &str) -> Result<Option<Cached>> {
        let mut found = cache::find(&self.cache_dir, container_id, None)?;
        let pick = found
            .iter()
            .position(|(_, r)| r.attachment.ifname == attachment::DEFAULT_IFNAME)
            .unwrap_or(0);
        if found.is_empty() {
            return Ok(None);
        }
        let (path, record) = found.swap_remove(pick);
        let network = cached_network(&record)?;
        let result = AddResult::parse(record.result.clone(), &record.attachment.ifname)
            .map_err(|reason| Error::Cache { path, reason })?;
        Ok(Some(Cached {
            network,
            attachment: record.attachment,
            result,
        }))
    }

    fn cache_path(&self, network: &str, att: &Attachment) -> PathBuf {
        cache::path(&self.cache_dir, network, &att.container_id, &att.ifname)
    }

    fn cached_record(&self, att: &Attachment) -> Result<Option<(PathBuf, cache::Record)>> {
        Ok(
            cache::find(&self.cache_dir, &att.container_id, Some(&att.ifname))?
                .into_iter()
                .next(),
        )
    }

    /// DEL of every plugin of `network`, last first. Every plugin is run even if one
    /// fails (so that, say, portmap's rules go even if bridge cannot clean up); the first
    /// error is returned.
    async fn run_del(
        &self,
        network: &Network,
        att: &Attachment,
        prev_result: Option<&Value>,
    ) -> Result<()> {
        let mut first_err = None;
        for plugin in network.plugins.iter().rev() {
            let stdin = exec::plugin_stdin(
                &network.name,
                &network.cni_version,
                plugin,
                prev_result,
                att,
            );
            if let Err(e) = self
                .invoker()
                .invoke(&network.name, Command::Del, &stdin, att)
                .await
            {
                warn!(network = %network.name, container_id = %att.container_id, error = %e, "cni del");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn validate(att: &Attachment) -> Result<()> {
    match att.invalid() {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidAttachment {
            container_id: att.container_id.clone(),
            reason,
        }),
    }
}

/// The attachment a replay runs with: the caller's netns (the pin may have moved), the
/// cached args and runtime config (what ADD was given).
fn merged(now: &Attachment, cached: &Attachment) -> Attachment {
    Attachment {
        container_id: now.container_id.clone(),
        netns: now.netns.clone(),
        ifname: now.ifname.clone(),
        args: cached.args.clone(),
        capabilities: cached.capabilities.clone(),
    }
}

fn cached_network(record: &cache::Record) -> Result<Network> {
    Network::from_value(&record.config_file, record.network.clone(), true).map_err(|reason| {
        Error::Cache {
            path: record.config_file.clone(),
            reason: format!("cached network {}: {reason}", record.network_name),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;

    /// Fake plugins (shell scripts) that log each call and keep each stdin.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Fake {
            let fake = Fake {
                dir: tempfile::tempdir().unwrap(),
            };
            for sub in ["bin", "conf", "cache", "calls"] {
                std::fs::create_dir(fake.dir.path().join(sub)).unwrap();
            }
            fake
        }

        fn path(&self, sub: &str) -> PathBuf {
            self.dir.path().join(sub)
        }

        /// A plugin that prints `result` on ADD, or fails with `code` if given.
        fn plugin(&self, name: &str, result: &Value, fail: Option<u32>) {
            let calls = self.path("calls");
            let add = match fail {
                Some(code) => {
                    format!("echo '{{\"code\":{code},\"msg\":\"{name} says no\"}}'; exit 1")
                }
                None => format!("echo '{result}'"),
            };
            let body = format!(
                "#!/bin/sh\nn=$(ls {calls} | wc -l)\ncat > {calls}/$(printf %02d $n)-$CNI_COMMAND-{name}.json\n\
                 [ \"$CNI_COMMAND\" = ADD ] && {{ {add}; }}\nexit 0\n",
                calls = calls.display()
            );
            let path = self.path("bin").join(name);
            std::fs::write(&path, body).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }

        fn conflist(&self, plugins: Value) {
            let conf = json!({"cniVersion": "1.0.0", "name": "fakenet", "plugins": plugins});
            std::fs::write(self.path("conf").join("10-fake.conflist"), conf.to_string()).unwrap();
        }

        fn cni(&self) -> Cni {
            Cni::new(
                self.path("conf"),
                vec![self.path("bin")],
                self.path("cache"),
            )
        }

        /// The calls so far, in order: (command, plugin, stdin).
        fn calls(&self) -> Vec<(String, String, Value)> {
            let mut names: Vec<String> = std::fs::read_dir(self.path("calls"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
                .iter()
                .map(|n| {
                    let mut parts = n.trim_end_matches(".json").splitn(3, '-');
                    parts.next();
                    let cmd = parts.next().unwrap().to_string();
                    let plugin = parts.next().unwrap().to_string();
                    let stdin = std::fs::read(self.path("calls").join(n)).unwrap();
                    (cmd, plugin, serde_json::from_slice(&stdin).unwrap())
                })
                .collect()
        }

        fn summary(&self) -> Vec<String> {
            self.calls()
                .into_iter()
                .map(|(c, p, _)| format!("{c} {p}"))
                .collect()
        }
    }

    fn result(ip: &str) -> Value {
        json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": "/run/ns/p1"}],
            "ips": [{"address": ip, "interface": 0}]})
    }

    fn attachment() -> Attachment {
        let mut att = Attachment::new("p1", "/run/ns/p1").with_pod("ns", "pod", "uid");
        att.capabilities.port_mappings.push(PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: String::new(),
        });
        att
    }

    #[tokio::test]
    async fn add_chains_results_caches_and_del_replays_the_cache_in_reverse() {
        let fake = Fake::new();
        fake.plugin("fa", &result("10.9.0.2/24"), None);
        fake.plugin("fb", &result("10.9.0.3/24"), None);
        fake.conflist(json!([{"type": "fa"},
            {"type": "fb", "capabilities": {"portMappings": true}}]));
        let cni = fake.cni();
        let att = attachment();

        let added = cni.add(&att).await.unwrap();
        assert_eq!(
            added.ips(),
            ["10.9.0.3".parse::<std::net::IpAddr>().unwrap()]
        );
        let err = cni.add(&att).await.unwrap_err();
        assert!(matches!(err, Error::AlreadyAttached { .. }), "{err}");
        let calls = fake.calls();
        assert_eq!(fake.summary(), ["ADD fa", "ADD fb"]);
        assert_eq!(calls[0].2.get("prevResult"), None);
        assert_eq!(calls[0].2.get("runtimeConfig"), None);
        assert_eq!(calls[1].2["prevResult"], result("10.9.0.2/24"));
        assert_eq!(
            calls[1].2["runtimeConfig"]["portMappings"][0]["hostPort"],
            8080
        );
        assert_eq!(calls[1].2["name"], "fakenet");
        assert!(fake.path("cache").join("fakenet-p1-eth0.json").exists());

        cni.check(&att).await.unwrap();
        assert_eq!(fake.summary()[2..], ["CHECK fa", "CHECK fb"]);

        // The conf dir goes away; a new Cni (berthd restarted) DELs what was cached.
        std::fs::remove_file(fake.path("conf").join("10-fake.conflist")).unwrap();
        let restarted = fake.cni();
        let cached = restarted.cached("p1").unwrap().unwrap();
        assert_eq!(cached.result.ips(), added.ips());
        assert_eq!(cached.attachment, att);
        restarted
            .del(&Attachment::new("p1", "/run/ns/p1"))
            .await
            .unwrap();
        let calls = fake.calls();
        assert_eq!(fake.summary()[4..], ["DEL fb", "DEL fa"]);
        for (_, _, stdin) in &calls[4..] {
            assert_eq!(stdin["prevResult"], result("10.9.0.3/24"));
        }
        // The cached capabilities, not the caller's (empty) ones.
        assert_eq!(
            calls[4].2["runtimeConfig"]["portMappings"][0]["containerPort"],
            80
        );
        assert!(restarted.cached("p1").unwrap().is_none());

        // Nothing cached, no config: nothing to undo.
        restarted.del(&att).await.unwrap();
        assert_eq!(fake.calls().len(), 6);
        let err = restarted.check(&att).await.unwrap_err();
        assert!(matches!(err, Error::NotCached { .. }), "{err}");
    }

    #[tokio::test]
    async fn failed_add_is_deleted_whole_and_not_cached() {
        let fake = Fake::new();
        fake.plugin("fa", &result("10.9.0.2/24"), None);
        fake.plugin("ff", &Value::Null, Some(42));
        fake.plugin("fc", &result("10.9.0.4/24"), None);
        fake.conflist(json!([{"type": "fa"}, {"type": "ff"}, {"type": "fc"}]));
        let cni = fake.cni();
        let err = cni.add(&attachment()).await.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("cni plugin ff of network fakenet: ADD failed: ff says no (code 42)"),
            "{msg}"
        );
        assert_eq!(
            fake.summary(),
            ["ADD fa", "ADD ff", "DEL fc", "DEL ff", "DEL fa"]
        );
        assert!(cni.cached("p1").unwrap().is_none());
    }

    #[tokio::test]
    async fn uncached_del_runs_the_current_network() {
        let fake = Fake::new();
        fake.plugin("fa", &result("10.9.0.2/24"), None);
        fake.conflist(json!([{"type": "fa"}]));
        fake.cni().del(&attachment()).await.unwrap();
        let calls = fake.calls();
        assert_eq!(fake.summary(), ["DEL fa"]);
        assert_eq!(calls[0].2.get("prevResult"), None);
    }

    #[tokio::test]
    async fn invalid_attachment_runs_nothing() {
        let fake = Fake::new();
        fake.plugin("fa", &result("10.9.0.2/24"), None);
        fake.conflist(json!([{"type": "fa"}]));
        let mut att = attachment();
        att.args.push(("X".into(), "a;b".into()));
        let err = fake.cni().add(&att).await.unwrap_err();
        assert!(matches!(err, Error::InvalidAttachment { .. }), "{err}");
        assert!(fake.calls().is_empty());
    }
}
