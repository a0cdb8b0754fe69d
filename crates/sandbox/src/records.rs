//! Pod and container records: what berthd knows about each object, persisted as one
//! versioned JSON file per object (`<root>/pods/<id>.json`, `<root>/containers/<id>.json`),
//! written atomically (temp file, fsync, rename, fsync of the directory).
//!
//! [`Records`] owns them: an in-memory index that reads never block on (List and Status
//! calls clone out of it), changed only through [`Records::put_pod`] / [`Records::put_container`]
//! and the removes, which persist first and then update the index. The name index
//! (pod name key, container name key) reserves a name from the moment a create begins.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use berth_api::runtime::v1::{ContainerConfig, PodSandboxConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::{Error, Result};

/// Version of the record format written by this code.
pub const RECORD_VERSION: u32 = 1;

/// Where a pod is in its life.
///
/// ```text
///   pending ──run done──► ready ──stop──► notready ──remove──► (gone)
///      └────────────── failed/crashed: rolled back ──────────► (gone)
/// ```
/// `Pending` is written before the first resource is made, so that a berthd killed in
/// the middle of RunPodSandbox finds the record at restart and rolls the pod back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodState {
    Pending,
    Ready,
    NotReady,
}

impl PodState {
    /// Containers may be created in a pod only while it is ready.
    pub fn can_create_container(self) -> bool {
        self == PodState::Ready
    }

    /// Pending pods are invisible to List and Status: they are not created yet.
    pub fn is_visible(self) -> bool {
        self != PodState::Pending
    }
}

/// Where a container is in its life.
///
/// ```text
///   creating ──create done──► created ──start──► running ──exit──► exited ──remove──► (gone)
///                                └──────────────stop/exit───────────┘
/// ```
/// `Creating` is the container's `Pending`: rolled back at restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    Creating,
    Created,
    Running,
    Exited,
}

impl ContainerState {
    pub fn can_start(self) -> bool {
        self == ContainerState::Created
    }

    pub fn can_exec(self) -> bool {
        self == ContainerState::Running
    }

    pub fn is_visible(self) -> bool {
        self != ContainerState::Creating
    }
}

/// One pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    pub version: u32,
    pub id: String,
    pub config: PodSandboxConfig,
    pub runtime_handler: String,
    pub state: PodState,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    /// The pinned network namespace; None for host network.
    pub netns: Option<PathBuf>,
    /// Pod IPs from CNI, the primary first.
    pub ips: Vec<String>,
    /// The infra process's pid (0 until it runs).
    pub infra_pid: i32,
    /// cgroupsPath of the infra process; containers go beside it.
    pub cgroup_parent: String,
}

impl PodRecord {
    pub fn name_key(&self) -> String {
        pod_name_key(&self.config)
    }
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub code: i32,
    /// Nanoseconds since the epoch.
    pub finished_at: i64,
    /// OOMKilled, Completed, Error, or Unknown (lost while berthd was down with no record).
    pub reason: String,
    pub message: String,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub version: u32,
    pub id: String,
    pub pod_id: String,
    pub config: ContainerConfig,
    /// The pod's name key, for the container's name key.
    pub pod_name_key: String,
    /// The image as the kubelet named it.
    pub image_name: String,
    /// The image id (config digest).
    pub image_id: String,
    /// A digest-pinned reference of the image, when one is known, else the id.
    pub image_ref: String,
    pub state: ContainerState,
    pub created_at: i64,
    pub started_at: i64,
    pub pid: i32,
    pub exit: Option<Exit>,
    /// Absolute path of the CRI log file, empty when the kubelet gave none.
    pub log_path: String,
    /// The signal StopContainer sends first (from the image's StopSignal).
    pub stop_signal: i32,
    /// The identity the container's process runs as (uid, gid, supplementary gids).
    #[serde(default)]
    pub user: Option<ProcessUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl ContainerRecord {
    pub fn name_key(&self) -> String {
        let m = self.config.metadata.clone().unwrap_or_default();
        format!("{}_{}_{}", m.name, self.pod_name_key, m.attempt)
    }
}

/// `<name>_<namespace>_<uid>_<attempt>`: the key two pods may not share.
pub fn pod_name_key(config: &PodSandboxConfig) -> String {
    let m = config.metadata.clone().unwrap_or_default();
    format!("{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
}

#[derive(Default)]
struct Index {
    pods: HashMap<String, PodRecord>,
    containers: HashMap<String, ContainerRecord>,
    /// name key -> id, for pods and containers (keys of the two kinds cannot collide:
    /// a container key has the pod key inside it and one more component).
    names: HashMap<String, String>,
}

/// The records, on disk and in memory.
#[derive(Clone)]
pub struct Records {
    dir: PathBuf,
    index: Arc<RwLock<Index>>,
}

impl Records {
    /// Opens the records under `dir`, loading every record there. Unreadable records are
    /// moved aside (`<file>.corrupt`) and logged, not fatal: one bad file must not keep
    /// berthd from serving every other pod.
    pub fn open(dir: &Path) -> Result<Records> {
        let mut index = Index::default();
        for (kind, sub) in [("pod", "pods"), ("container", "containers")] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
            for entry in fs::read_dir(&d).map_err(Error::io("read", &d))? {
                let path = entry.map_err(Error::io("read", &d))?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.starts_with('.') {
                    let _ = fs::remove_file(&path); // an unfinished atomic write
                    continue;
                }
                if !name.ends_with(".json") {
                    continue;
                }
                let loaded = if kind == "pod" {
                    load::<PodRecord>(&path).map(|r| {
                        index.pods.insert(r.id.clone(), r);
                    })
                } else {
                    load::<ContainerRecord>(&path).map(|r| {
                        index.containers.insert(r.id.clone(), r);
                    })
                };
                if let Err(e) = loaded {
                    warn!(path = %path.display(), error = %e, "unreadable record moved aside");
                    let _ = fs::rename(&path, path.with_extension("json.corrupt"));
                }
            }
        }
        let names: Vec<(String, String)> = index
            .pods
            .values()
            .map(|p| (p.name_key(), p.id.clone()))
            .chain(
                index
                    .containers
                    .values()
                    .map(|c| (c.name_key(), c.id.clone())),
            )
            .collect();
        index.names.extend(names);
        Ok(Records {
            dir: dir.to_path_buf(),
            index: Arc::new(RwLock::new(index)),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `key` for `id`; Err(existing id) when another object holds it.
    pub fn reserve_name(&self, key: &str, id: &str) -> std::result::Result<(), String> {
        let mut index = self.write();
        match index.names.get(key) {
            Some(existing) if existing != id => Err(existing.clone()),
            _ => {
                index.names.insert(key.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    /// Releases `key` if `id` holds it.
    pub fn release_name(&self, key: &str, id: &str) {
        let mut index = self.write();
        if index.names.get(key).is_some_and(|holder| holder == id) {
            index.names.remove(key);
        }
    }

    pub fn pod(&self, id: &str) -> Option<PodRecord> {
        self.read().pods.get(id).cloned()
    }

    pub fn pods(&self) -> Vec<PodRecord> {
        self.read().pods.values().cloned().collect()
    }

    pub fn container(&self, id: &str) -> Option<ContainerRecord> {
        self.read().containers.get(id).cloned()
    }

    pub fn containers(&self) -> Vec<ContainerRecord> {
        self.read().containers.values().cloned().collect()
    }

    pub fn containers_of(&self, pod_id: &str) -> Vec<ContainerRecord> {
        self.read()
            .containers
            .values()
            .filter(|c| c.pod_id == pod_id)
            .cloned()
            .collect()
    }

    /// Finds a visible pod by full id or unique id prefix (as crictl users type them).
    pub fn find_pod(&self, id: &str) -> Option<PodRecord> {
        find_by_prefix(&self.read().pods, id, |p| p.state.is_visible())
    }

    /// Finds a visible container by full id or unique id prefix.
    pub fn find_container(&self, id: &str) -> Option<ContainerRecord> {
        find_by_prefix(&self.read().containers, id, |c| c.state.is_visible())
    }

    /// Persists `record` and makes it the indexed one.
    pub fn put_pod(&self, record: &PodRecord) -> Result<()> {
        write_atomic(&self.path("pods", &record.id), record)?;
        self.write().pods.insert(record.id.clone(), record.clone());
        Ok(())
    }

    pub fn put_container(&self, record: &ContainerRecord) -> Result<()> {
        write_atomic(&self.path("containers", &record.id), record)?;
        self.write()
            .containers
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    /// Changes a container record in place (read, `f`, persist); None if it is gone.
    pub fn update_container(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<Option<ContainerRecord>> {
        let Some(mut record) = self.container(id) else {
            return Ok(None);
        };
        f(&mut record);
        self.put_container(&record)?;
        Ok(Some(record))
    }

    pub fn update_pod(
        &self,
        id: &str,
        f: impl FnOnce(&mut PodRecord),
    ) -> Result<Option<PodRecord>> {
        let Some(mut record) = self.pod(id) else {
            return Ok(None);
        };
        f(&mut record);
        self.put_pod(&record)?;
        Ok(Some(record))
    }

    /// Deletes a pod record and releases its name; a missing one is fine.
    pub fn remove_pod(&self, id: &str) -> Result<()> {
        remove_file(&self.path("pods", id))?;
        let mut index = self.write();
        if let Some(p) = index.pods.remove(id) {
            let key = p.name_key();
            if index.names.get(&key).is_some_and(|holder| holder == id) {
                index.names.remove(&key);
            }
        }
        Ok(())
    }

    pub fn remove_container(&self, id: &str) -> Result<()> {
        remove_file(&self.path("containers", id))?;
        let mut index = self.write();
        if let Some(c) = index.containers.remove(id) {
            let key = c.name_key();
            if index.names.get(&key).is_some_and(|holder| holder == id) {
                index.names.remove(&key);
            }
        }
        Ok(())
    }

    fn path(&self, sub: &str, id: &str) -> PathBuf {
        self.dir.join(sub).join(format!("{id}.json"))
    }
}

fn find_by_prefix<T: Clone>(
    map: &HashMap<String, T>,
    id: &str,
    visible: impl Fn(&T) -> bool,
) -> Option<T> {
    if id.is_empty() {
        return None;
    }
    if let Some(r) = map.get(id) {
        return visible(r).then(|| r.clone());
    }
    let mut found = map
        .iter()
        .filter(|(k, r)| k.starts_with(id) && visible(r))
        .map(|(_, r)| r);
    match (found.next(), found.next()) {
        (Some(r), None) => Some(r.clone()),
        _ => None,
    }
}

fn load<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(Error::io("read", path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("record {}: {e}", path.display())))
}

/// Writes `value` as JSON to `path` atomically: temp file beside it, fsync, rename,
/// fsync of the directory.
pub fn write_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let dir = path.parent().expect("record path has a parent");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("record");
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))?;
    let mut f = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(Error::io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(Error::io("rename", path))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", dir))
}

fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::runtime::v1::PodSandboxMetadata;

    fn pod(id: &str, name: &str) -> PodRecord {
        PodRecord {
            version: RECORD_VERSION,
            id: id.into(),
            config: PodSandboxConfig {
                metadata: Some(PodSandboxMetadata {
                    name: name.into(),
                    uid: "u1".into(),
                    namespace: "default".into(),
                    attempt: 0,
                }),
                ..Default::default()
            },
            runtime_handler: String::new(),
            state: PodState::Ready,
            created_at: 1,
            netns: None,
            ips: vec!["10.0.0.2".into()],
            infra_pid: 42,
            cgroup_parent: "/berth".into(),
        }
    }

    #[test]
    fn records_survive_a_reopen_and_names_stay_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let r = Records::open(dir.path()).unwrap();
        let p = pod("abcdef", "web");
        r.put_pod(&p).unwrap();
        r.reserve_name(&p.name_key(), &p.id).unwrap();
        let again = Records::open(dir.path()).unwrap();
        assert_eq!(again.pod("abcdef"), Some(p.clone()));
        assert_eq!(
            again.reserve_name(&p.name_key(), "other"),
            Err("abcdef".to_string())
        );
        again.remove_pod("abcdef").unwrap();
        again.remove_pod("abcdef").unwrap();
        assert!(again.reserve_name(&p.name_key(), "other").is_ok());
        assert!(Records::open(dir.path()).unwrap().pods().is_empty());
    }

    #[test]
    fn ids_resolve_by_unique_prefix_only() {
        let dir = tempfile::tempdir().unwrap();
        let r = Records::open(dir.path()).unwrap();
        r.put_pod(&pod("abc123", "a")).unwrap();
        r.put_pod(&pod("abd456", "b")).unwrap();
        assert_eq!(r.find_pod("abc").unwrap().id, "abc123");
        assert!(r.find_pod("ab").is_none());
        assert!(r.find_pod("").is_none());
        let mut pending = pod("ffff", "c");
        pending.state = PodState::Pending;
        r.put_pod(&pending).unwrap();
        assert!(r.find_pod("ffff").is_none());
    }

    #[test]
    fn a_corrupt_record_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        Records::open(dir.path()).unwrap();
        fs::write(dir.path().join("pods/bad.json"), b"{nope").unwrap();
        let r = Records::open(dir.path()).unwrap();
        assert!(r.pods().is_empty());
        assert!(dir.path().join("pods/bad.json.corrupt").exists());
    }
}
