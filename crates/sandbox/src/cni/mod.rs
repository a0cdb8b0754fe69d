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

pub use attachment::{Attachment, Bandwidth, DnsConfig, PortMapping, RuntimeConfig};
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
    /// stays allocated) and the ADD error returned.
    pub async fn add(&self, att: &Attachment) -> Result<AddResult> {
        validate(att)?;
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
            self.run_del(&network, &run_as, Some(&record.result))
                .await?;
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
