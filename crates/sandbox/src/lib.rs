//! berth-sandbox: pods and containers.
//!
//! [`Sandboxes`] is the handle berthd's RuntimeService calls: it runs pods (an infra
//! process holding the pod's namespaces, networked by CNI) and their containers (each
//! supervised by a berth-shim running berth-oci), keeps their [`records`], and rebuilds
//! itself from them at start ([`recovery`]). See docs/cri.md for the whole picture.

pub mod cleanup;
pub mod cni;
mod container;
mod error;
mod files;
pub mod netns;
pub mod pause;
mod pod;
pub mod records;
pub mod recovery;
mod shims;
pub mod spec;
mod stats;
mod update;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::{Snapshotter, Store};
use tokio::sync::broadcast;

pub use container::{ExecOutput, ExecSync};
pub use error::{Error, Result};
pub use records::{ContainerRecord, ContainerState, Exit, PodRecord, PodState, Records};

/// How berthd set the sandbox layer up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Persistent state (records, snapshots, CNI cache, the infra rootfs).
    pub root: PathBuf,
    /// Volatile state (shim dirs, netns pins, bundles, pod files).
    pub state: PathBuf,
    /// The berth-shim binary.
    pub shim_binary: PathBuf,
    /// The runc-compatible runtime the shims run.
    pub runtime_binary: PathBuf,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
    /// The cgroup parent of pods the kubelet gave none (absolute, cgroupfs form).
    pub default_cgroup_parent: String,
    /// An image to run pods' infra process from, instead of the built-in pause; it must
    /// be in the image store when a pod is run.
    pub pause_image: Option<String>,
}

/// A container lifecycle event, for GetContainerEvents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Started,
    Stopped,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub container_id: String,
    pub pod_id: String,
    pub kind: EventKind,
    /// Nanoseconds since the epoch.
    pub at: i64,
}

/// Pods and containers. Cheap to share behind an `Arc`.
pub struct Sandboxes {
    opts: Options,
    records: Records,
    images: Arc<Store>,
    snapshots: Arc<Snapshotter>,
    cni: cni::Cni,
    locks: Locks,
    events: broadcast::Sender<Event>,
    pause_rootfs: PathBuf,
    /// The node's pod CIDR, as the kubelet last sent it (UpdateRuntimeConfig).
    pod_cidr: std::sync::RwLock<String>,
    stats: stats::Collector,
}

impl Sandboxes {
    /// Opens the records and prepares the directories; [`recovery::recover`] must run
    /// next, before any RPC is served.
    pub fn open(opts: Options, images: Arc<Store>, snapshots: Arc<Snapshotter>) -> Result<Self> {
        for dir in [
            opts.state.join("pods"),
            opts.state.join("containers"),
            opts.state.join("shims"),
            opts.state.join("netns"),
            opts.state.join("runtime"),
        ] {
            std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        }
        let records = Records::open(&opts.root)?;
        let pause_rootfs = pause::install(&opts.root.join("pause"))?;
        let cni = cni::Cni::new(
            opts.cni_conf_dir.clone(),
            opts.cni_bin_dirs.clone(),
            opts.root.join("cni"),
        );
        let (events, _) = broadcast::channel(1024);
        Ok(Sandboxes {
            opts,
            records,
            images,
            snapshots,
            cni,
            locks: Locks::default(),
            events,
            pause_rootfs,
            pod_cidr: Default::default(),
            stats: stats::Collector::new(),
        })
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn images(&self) -> &Arc<Store> {
        &self.images
    }

    /// The pod CIDR CNI plugins get (`ipRanges`); empty until the kubelet sends one.
    pub fn pod_cidr(&self) -> String {
        self.pod_cidr
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_pod_cidr(&self, cidr: &str) {
        *self.pod_cidr.write().unwrap_or_else(|p| p.into_inner()) = cidr.to_string();
    }

    /// Container lifecycle events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn emit(&self, container_id: &str, pod_id: &str, kind: EventKind) {
        let _ = self.events.send(Event {
            container_id: container_id.to_string(),
            pod_id: pod_id.to_string(),
            kind,
            at: now_ns(),
        });
    }

    /// A visible pod by full id or unique prefix, else NotFound naming `id`.
    pub fn pod_record(&self, id: &str) -> Result<PodRecord> {
        self.records.find_pod(id).ok_or_else(|| Error::NotFound {
            kind: "pod sandbox",
            id: id.to_string(),
        })
    }

    /// A visible container by full id or unique prefix, else NotFound naming `id`.
    pub fn container_record(&self, id: &str) -> Result<ContainerRecord> {
        self.records
            .find_container(id)
            .ok_or_else(|| Error::NotFound {
                kind: "container",
                id: id.to_string(),
            })
    }

    /// Takes the lock of a container and reads its record afresh under it.
    async fn lock_container(
        &self,
        id: &str,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, ContainerRecord)> {
        let found = self.container_record(id)?;
        let guard = self.locks.lock(&found.id).await;
        let c = self
            .records
            .container(&found.id)
            .ok_or_else(|| Error::NotFound {
                kind: "container",
                id: id.to_string(),
            })?;
        Ok((guard, c))
    }

    /// Takes the lock of a pod and reads its record afresh under it.
    async fn lock_pod(&self, id: &str) -> Result<(tokio::sync::OwnedMutexGuard<()>, PodRecord)> {
        let found = self.pod_record(id)?;
        let guard = self.locks.lock(&found.id).await;
        let p = self.records.pod(&found.id).ok_or_else(|| Error::NotFound {
            kind: "pod sandbox",
            id: id.to_string(),
        })?;
        Ok((guard, p))
    }

    fn pod_dir(&self, id: &str) -> PathBuf {
        self.opts.state.join("pods").join(id)
    }

    fn bundle_dir(&self, container_id: &str) -> PathBuf {
        self.opts.state.join("containers").join(container_id)
    }

    fn shim_dir(&self, id: &str) -> PathBuf {
        self.opts.state.join("shims").join(id)
    }

    fn netns_dir(&self) -> PathBuf {
        self.opts.state.join("netns")
    }

    fn runtime_root(&self) -> PathBuf {
        self.opts.state.join("runtime")
    }
}

/// One async lock per pod or container id: operations on one object run one at a
/// time, while reads (List, Status) go to [`Records`] and never wait for them.
#[derive(Default)]
struct Locks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Locks {
    async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(id.to_string()).or_default().clone()
        };
        m.lock_owned().await
    }

    fn forget(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Nanoseconds since the epoch, as CRI timestamps are.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A new object id: 64 lowercase hex characters from the kernel's random source.
fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Error::Internal(format!("getrandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Removes a directory tree; a missing one is fine.
fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}
