//! Pods: RunPodSandbox, StopPodSandbox and RemovePodSandbox as sequences of named steps.
//!
//! Run: reserve the name and write a `pending` record; pod files (hostname, hosts,
//! resolv.conf, shm); the network namespace; CNI ADD; the infra process (spec, bundle,
//! shim, start); the record becomes `ready`. Each step pushes its undo on a
//! [`Cleanup`] stack, run in reverse when a later step fails. Stop and remove are
//! idempotent and tolerate every partial state, which is also how recovery rolls back a
//! pod whose RunPodSandbox was cut short.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::runtime::v1::{NamespaceMode, PodSandboxConfig};
use tracing::{info, warn};

use crate::cleanup::Cleanup;
use crate::cni::{Attachment, Bandwidth, DnsConfig, IpRange, PortMapping, RuntimeConfig};
use crate::records::{PodRecord, PodState, RECORD_VERSION};
use crate::shims::Launch;
use crate::spec::{self, Namespace, Namespaces, PodSpecInput};
use crate::{Error, Result, Sandboxes, files, netns, now_ns, pause};

/// The interface CNI plugs the pod into.
const IFNAME: &str = "eth0";

/// How long the infra process gets to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// The pod's namespace modes, as asked for (absent security context: all POD).
pub(crate) struct Modes {
    pub network: NamespaceMode,
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
}

pub(crate) fn modes(config: &PodSandboxConfig) -> Modes {
    let o = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default();
    Modes {
        network: o.network(),
        pid: o.pid(),
        ipc: o.ipc(),
    }
}

impl Sandboxes {
    /// RunPodSandbox. Returns the new pod's id.
    pub async fn run_pod(
        self: &Arc<Self>,
        config: PodSandboxConfig,
        runtime_handler: String,
    ) -> Result<String> {
        let meta = config
            .metadata
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("pod sandbox config has no metadata".into()))?;
        for (field, value) in [
            ("name", &meta.name),
            ("namespace", &meta.namespace),
            ("uid", &meta.uid),
        ] {
            if value.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "pod sandbox metadata.{field} is empty"
                )));
            }
        }
        if !runtime_handler.is_empty() && runtime_handler != "berth" {
            return Err(Error::InvalidArgument(format!(
                "runtime handler {runtime_handler:?} is not configured (berth has only the default handler)"
            )));
        }
        let m = modes(&config);
        let host_network = m.network == NamespaceMode::Node;
        let host_ipc = m.ipc == NamespaceMode::Node;
        let sysctls = config
            .linux
            .as_ref()
            .map(|l| l.sysctls.clone())
            .unwrap_or_default();
        spec::validate_sysctls(&sysctls, host_network, host_ipc)?;

        let id = crate::new_id()?;
        let key = crate::records::pod_name_key(&config);
        if let Err(existing) = self.records.reserve_name(&key, &id) {
            return Err(Error::AlreadyExists {
                kind: "pod sandbox",
                id: format!("{existing} (name {key})"),
            });
        }
        let _guard = self.locks.lock(&id).await;
        let mut record = PodRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            config,
            runtime_handler,
            state: PodState::Pending,
            created_at: now_ns(),
            netns: None,
            ips: Vec::new(),
            infra_pid: 0,
            cgroup_parent: String::new(),
        };
        let mut cleanup = Cleanup::new();
        match self.run_pod_steps(&mut record, &mut cleanup).await {
            Ok(()) => {
                cleanup.dismiss();
                self.watch_infra(&id);
                info!(pod_id = %id, pod = %key, ips = ?record.ips, "pod ready");
                Ok(id)
            }
            Err(e) => {
                warn!(pod_id = %id, pod = %key, error = %e, "run pod failed; undoing");
                cleanup.run(&id).await;
                let _ = self.records.remove_pod(&id);
                self.records.release_name(&key, &id);
                self.locks.forget(&id);
                Err(e)
            }
        }
    }

    async fn run_pod_steps(
        self: &Arc<Self>,
        record: &mut PodRecord,
        cleanup: &mut Cleanup,
    ) -> Result<()> {
        let id = record.id.clone();
        self.records.put_pod(record)?;
        let m = modes(&record.config);
        let host_network = m.network == NamespaceMode::Node;

        // Pod files.
        let dir = self.pod_dir(&id);
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        {
            let dir = dir.clone();
            cleanup.push("pod files", async move { files::remove(&dir) });
        }
        files::write(
            &dir,
            &record.config,
            host_network,
            m.ipc != NamespaceMode::Node,
        )?;

        // Network: a pinned namespace, wired by CNI below.
        let mut attach = None;
        if !host_network {
            let ns = netns::NetNs::create(&self.netns_dir(), &id)?;
            let path = ns.path().to_path_buf();
            {
                let path = path.clone();
                cleanup.push("network namespace", async move {
                    netns::remove(&path).map_err(Error::from)
                });
            }
            record.netns = Some(path.clone());
            self.records.put_pod(record)?;
            let att = attachment(record, &path, &self.pod_cidr());
            {
                // DEL is idempotent: undoing an ADD that failed (and was already rolled
                // back by the CNI code) is harmless.
                let (this, att) = (self.clone(), att.clone());
                cleanup.push("cni add", async move {
                    this.cni.del(&att).await.map_err(Error::from)
                });
            }
            attach = Some(att);
        }

        // The infra process.
        record.cgroup_parent = cgroup_parent(&record.config, &self.opts.default_cgroup_parent);
        let (rootfs, args) = self.infra_rootfs(&id, cleanup).await?;
        let input = PodSpecInput {
            sandbox_id: &id,
            config: &record.config,
            rootfs: &rootfs,
            args,
            namespaces: Namespaces {
                network: match &record.netns {
                    Some(p) => Namespace::Join(p.clone()),
                    None => Namespace::Host,
                },
                ipc: new_unless_node(m.ipc),
                uts: if host_network {
                    Namespace::Host
                } else {
                    Namespace::New
                },
                pid: new_unless_node(m.pid),
            },
            cgroups_path: cgroup_path(&record.cgroup_parent, &id),
        };
        let spec = spec::pod_spec(&input)?;
        let bundle = dir.join("bundle");
        write_bundle(&bundle, &spec)?;
        {
            let this = self.clone();
            let id = id.clone();
            cleanup.push("infra process", async move { this.delete_shim(&id).await });
        }
        // CNI ADD and the infra process's start are independent (the process only holds
        // namespaces; the plugins configure the pinned netns it joins): run them together.
        let network = async {
            match &attach {
                Some(att) => self.cni.add(att).await.map(|r| Some(r.ips())),
                None => Ok(None),
            }
        };
        let infra = async {
            let started = self
                .start_shim(Launch {
                    id: &id,
                    bundle: &bundle,
                    log_path: None,
                    stdin: false,
                })
                .await?;
            self.shim(&id).await?.start().await?;
            Ok::<_, Error>(started)
        };
        let (network, infra) = tokio::join!(network, infra);
        let started = infra?;
        if let Some(ips) = network? {
            record.ips = ips.iter().map(|ip| ip.to_string()).collect();
        }
        record.infra_pid = started.pid;
        record.state = PodState::Ready;
        self.records.put_pod(record)
    }

    /// The infra process's rootfs and argv: the built-in pause, shared read-only by every
    /// pod, or a snapshot of the configured pause image (snapshot id = pod id). The
    /// snapshot is writable so that the runtime can make mount points in it; the spec
    /// makes the root read-only once they are mounted.
    async fn infra_rootfs(
        self: &Arc<Self>,
        id: &str,
        cleanup: &mut Cleanup,
    ) -> Result<(PathBuf, Vec<String>)> {
        let Some(name) = &self.opts.pause_image else {
            return Ok((
                self.pause_rootfs.clone(),
                vec![pause::PATH_IN_ROOTFS.to_string()],
            ));
        };
        let image = self.images.status(name)?.ok_or_else(|| {
            Error::FailedPrecondition(format!("pause image {name} is not in the image store"))
        })?;
        let args: Vec<String> = image
            .config
            .entrypoint
            .iter()
            .chain(&image.config.cmd)
            .cloned()
            .collect();
        if args.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "pause image {name} has no entrypoint or cmd"
            )));
        }
        let chain_ids: Vec<_> = image.layers.iter().map(|l| l.chain_id.clone()).collect();
        let (store, snaps, sid) = (self.images.clone(), self.snapshots.clone(), id.to_string());
        let rootfs =
            tokio::task::spawn_blocking(move || snaps.prepare(&store, &sid, &chain_ids, false))
                .await
                .map_err(|e| Error::Internal(format!("snapshot task: {e}")))??;
        let this = self.clone();
        let sid = id.to_string();
        cleanup.push(
            "pause snapshot",
            async move { this.remove_snapshot(&sid).await },
        );
        Ok((rootfs, args))
    }

    /// Removes snapshot `id` (a container's rootfs or a pod's pause image view); a
    /// missing one is fine.
    pub(crate) async fn remove_snapshot(&self, id: &str) -> Result<()> {
        let (snaps, id) = (self.snapshots.clone(), id.to_string());
        tokio::task::spawn_blocking(move || snaps.remove(&id))
            .await
            .map_err(|e| Error::Internal(format!("snapshot task: {e}")))?
            .map_err(Error::from)
    }

    /// Watches the infra process: when it dies the pod is no longer ready.
    pub(crate) fn watch_infra(self: &Arc<Self>, id: &str) {
        let this = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let exit = this.wait_exit(&id, Duration::MAX).await;
            let changed = this.records.update_pod(&id, |p| {
                if p.state == PodState::Ready {
                    p.state = PodState::NotReady;
                }
            });
            if let Ok(Some(p)) = changed {
                info!(pod_id = %id, state = ?p.state, exit_code = exit.map(|e| e.exit_code), "infra process exited");
            }
        });
    }

    /// StopPodSandbox: stops every container (SIGKILL), the infra process, tears down the
    /// network. An unknown id is success.
    pub async fn stop_pod(self: &Arc<Self>, id: &str) -> Result<()> {
        let Some(pod) = self.records.find_pod(id) else {
            return Ok(());
        };
        let _guard = self.locks.lock(&pod.id).await;
        self.stop_pod_locked(&pod.id).await
    }

    pub(crate) async fn stop_pod_locked(self: &Arc<Self>, id: &str) -> Result<()> {
        let Some(pod) = self.records.pod(id) else {
            return Ok(());
        };
        for c in self.records.containers_of(id) {
            self.stop_container_by_id(&c.id, 0).await?;
        }
        self.signal(id, libc::SIGKILL).await?;
        if self.wait_exit(id, KILL_WAIT).await.is_none() {
            return Err(Error::Internal(format!(
                "infra process of pod {id} did not die within {KILL_WAIT:?} of SIGKILL"
            )));
        }
        // A pending pod may have its namespace pinned but not yet recorded.
        let pin = self.netns_dir().join(id);
        let ns = pod.netns.clone().or_else(|| pin.exists().then_some(pin));
        if let Some(ns) = &ns {
            if ns.exists() {
                self.cni
                    .del(&attachment(&pod, ns, &self.pod_cidr()))
                    .await?;
            }
            netns::remove(ns)?;
        }
        // The shared shm goes with the pod's last process; the other files stay until
        // remove (a stopped pod still reports its hostname and DNS).
        let shm = self.pod_dir(id).join("shm");
        if files::is_mountpoint(&shm) {
            let _ = rustix::mount::unmount(&shm, rustix::mount::UnmountFlags::DETACH);
        }
        self.records.update_pod(id, |p| {
            p.state = PodState::NotReady;
            p.netns = None;
        })?;
        info!(pod_id = %id, "pod stopped");
        Ok(())
    }

    /// RemovePodSandbox: stops the pod if needed, removes its containers and everything
    /// the pod made. An unknown id is success.
    pub async fn remove_pod(self: &Arc<Self>, id: &str) -> Result<()> {
        let Some(pod) = self.records.find_pod(id) else {
            return Ok(());
        };
        let _guard = self.locks.lock(&pod.id).await;
        self.remove_pod_locked(&pod.id).await?;
        self.locks.forget(&pod.id);
        Ok(())
    }

    pub(crate) async fn remove_pod_locked(self: &Arc<Self>, id: &str) -> Result<()> {
        self.stop_pod_locked(id).await?;
        for c in self.records.containers_of(id) {
            self.remove_container_by_id(&c.id).await?;
        }
        self.delete_shim(id).await?;
        self.remove_snapshot(id).await?;
        files::remove(&self.pod_dir(id))?;
        self.records.remove_pod(id)?;
        self.stats.forget(id);
        info!(pod_id = %id, "pod removed");
        Ok(())
    }
}

impl Sandboxes {
    /// CNI DEL of a pod no record names any more (recovery's sweep): what the cache holds.
    pub(crate) async fn cni_del_cached(&self, id: &str) -> Result<()> {
        let mut att = Attachment::new(id, self.netns_dir().join(id));
        att.ifname = IFNAME.to_string();
        Ok(self.cni.del(&att).await?)
    }
}

fn new_unless_node(mode: NamespaceMode) -> Namespace {
    if mode == NamespaceMode::Node {
        Namespace::Host
    } else {
        Namespace::New
    }
}

/// The CNI attachment of a pod: the same for ADD and DEL. Port mappings, bandwidth (the
/// `kubernetes.io/{ingress,egress}-bandwidth` annotations), DNS and the node's pod CIDR
/// go to the plugins that declare those capabilities.
fn attachment(pod: &PodRecord, netns: &std::path::Path, pod_cidr: &str) -> Attachment {
    let meta = pod.config.metadata.clone().unwrap_or_default();
    let mut att =
        Attachment::new(pod.id.clone(), netns).with_pod(&meta.namespace, &meta.name, &meta.uid);
    att.ifname = IFNAME.to_string();
    att.capabilities = RuntimeConfig {
        port_mappings: pod
            .config
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| PortMapping {
                host_port: p.host_port as u16,
                container_port: p.container_port as u16,
                protocol: p.protocol().as_str_name().to_ascii_lowercase(),
                host_ip: p.host_ip.clone(),
            })
            .collect(),
        bandwidth: bandwidth(&pod.config.annotations),
        dns: pod.config.dns_config.as_ref().map(|d| DnsConfig {
            servers: d.servers.clone(),
            searches: d.searches.clone(),
            options: d.options.clone(),
        }),
        ip_ranges: if pod_cidr.is_empty() {
            Vec::new()
        } else {
            vec![vec![IpRange {
                subnet: pod_cidr.to_string(),
            }]]
        },
    };
    att
}

/// Traffic shaping from the pod's bandwidth annotations (Kubernetes quantities in
/// bits per second); bursts unlimited, as containerd sets them.
fn bandwidth(annotations: &std::collections::HashMap<String, String>) -> Option<Bandwidth> {
    let rate = |key: &str| annotations.get(key).and_then(|q| parse_quantity(q));
    let (ingress, egress) = (
        rate("kubernetes.io/ingress-bandwidth"),
        rate("kubernetes.io/egress-bandwidth"),
    );
    if ingress.is_none() && egress.is_none() {
        return None;
    }
    let burst = |r: Option<u64>| if r.is_some() { u64::from(u32::MAX) } else { 0 };
    Some(Bandwidth {
        ingress_rate: ingress.unwrap_or(0),
        ingress_burst: burst(ingress),
        egress_rate: egress.unwrap_or(0),
        egress_burst: burst(egress),
    })
}

/// A Kubernetes quantity ("10M", "1Gi", "500k", "100") as an integer.
fn parse_quantity(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// The pod's cgroup parent in cgroupfs form: the kubelet's (a path, or a systemd slice
/// name expanded to its path), else berthd's default.
pub(crate) fn cgroup_parent(config: &PodSandboxConfig, default: &str) -> String {
    let given = config
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.as_str())
        .unwrap_or("");
    if given.is_empty() {
        return default.to_string();
    }
    if let Some(slice) = given
        .strip_suffix(".slice")
        .filter(|_| !given.contains('/'))
    {
        // kubepods-burstable-pod1.slice -> /kubepods.slice/kubepods-burstable.slice/...
        let mut path = String::new();
        let mut prefix = String::new();
        for part in slice.split('-') {
            if !prefix.is_empty() {
                prefix.push('-');
            }
            prefix.push_str(part);
            path.push_str(&format!("/{prefix}.slice"));
        }
        return path;
    }
    if given.starts_with('/') {
        given.to_string()
    } else {
        format!("/{given}")
    }
}

/// cgroupsPath of one process of the pod.
pub(crate) fn cgroup_path(parent: &str, id: &str) -> String {
    format!("{}/{id}", parent.trim_end_matches('/'))
}

/// Writes `<bundle>/config.json`.
pub(crate) fn write_bundle(bundle: &std::path::Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    std::fs::create_dir_all(bundle).map_err(Error::io("create", bundle))?;
    let path: PathBuf = bundle.join("config.json");
    let json =
        serde_json::to_vec(spec).map_err(|e| Error::Internal(format!("encode spec: {e}")))?;
    std::fs::write(&path, json).map_err(Error::io("write", &path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::runtime::v1::LinuxPodSandboxConfig;

    fn with_parent(p: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: p.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn bandwidth_annotations_become_bits_per_second() {
        let a = std::collections::HashMap::from([
            (
                "kubernetes.io/ingress-bandwidth".to_string(),
                "10M".to_string(),
            ),
            (
                "kubernetes.io/egress-bandwidth".to_string(),
                "1Gi".to_string(),
            ),
        ]);
        let b = bandwidth(&a).unwrap();
        assert_eq!(b.ingress_rate, 10_000_000);
        assert_eq!(b.egress_rate, 1 << 30);
        assert!(bandwidth(&Default::default()).is_none());
        assert_eq!(parse_quantity("500k"), Some(500_000));
        assert_eq!(parse_quantity("12x"), None);
    }

    #[test]
    fn cgroup_parents_in_cgroupfs_form() {
        assert_eq!(cgroup_parent(&with_parent(""), "/berth"), "/berth");
        assert_eq!(
            cgroup_parent(&with_parent("/kubepods/burstable/pod1"), "/berth"),
            "/kubepods/burstable/pod1"
        );
        assert_eq!(
            cgroup_parent(&with_parent("kubepods-burstable-pod1.slice"), "/berth"),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"
        );
        assert_eq!(cgroup_path("/kubepods/pod1/", "abc"), "/kubepods/pod1/abc");
    }
}
