//! The executor's cgroup layer: one container's cgroup in every hierarchy of the host, on
//! pure cgroup v2 or on v1/hybrid hosts.
//!
//! - [`Layout`] says which hierarchies the host mounts;
//! - [`resolve_path`] turns `linux.cgroupsPath` into a cgroup path;
//! - [`Cgroup`] creates, configures, freezes, kills, measures and removes the cgroup.
//!
//! Each controller lives in its own file under `v1/` or `v2/` behind the small
//! [`controller::Controller`] trait and is unit-tested against a fixture directory. All
//! `unsafe` (the bpf(2) calls of the v2 device filter) is in `v2/bpf_sys.rs`.
//! docs/cgroups.md describes what each OCI field writes.

mod controller;
mod error;
mod fs;
mod layout;
mod path;
mod stats;
mod v1;
mod v2;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

pub use error::{CgroupError, OsError};
pub use layout::Layout;
pub use path::resolve_path;
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};

pub type Result<T> = std::result::Result<T, CgroupError>;

/// How long freeze and thaw wait for the kernel before giving up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long destroy retries an rmdir that fails with EBUSY (processes still exiting).
const RMDIR_TIMEOUT: Duration = Duration::from_secs(2);

/// One container's cgroup in every hierarchy. Cheap to construct and clone: no I/O until a
/// method is called.
#[derive(Clone, Debug)]
pub struct Cgroup {
    path: PathBuf,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// controller (or "name=...") -> this cgroup's directory in that hierarchy
    V1 {
        dirs: BTreeMap<String, PathBuf>,
        mounts: BTreeMap<String, PathBuf>,
    },
    /// the unified directory, and the cgroup2 mount point
    V2 { dir: PathBuf, root: PathBuf },
}

impl Cgroup {
    /// `path` is absolute from the hierarchy root, as [`resolve_path`] returns it.
    pub fn new(layout: &Layout, path: &Path) -> Cgroup {
        let rel = path.strip_prefix("/").unwrap_or(path);
        let kind = match layout {
            Layout::V2 { root } => Kind::V2 {
                dir: root.join(rel),
                root: root.clone(),
            },
            Layout::V1 { hierarchies, .. } => Kind::V1 {
                dirs: hierarchies
                    .iter()
                    .map(|(c, m)| (c.clone(), m.join(rel)))
                    .collect(),
                mounts: hierarchies.clone(),
            },
        };
        Cgroup {
            path: path.to_path_buf(),
            kind,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The v1 directory of `controller`, or the v2 directory.
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        match &self.kind {
            Kind::V1 { dirs, .. } => dirs.get(controller).map(PathBuf::as_path),
            Kind::V2 { dir, .. } => Some(dir),
        }
    }

    /// Every distinct directory of this cgroup (co-mounted v1 controllers share one).
    fn distinct_dirs(&self) -> Vec<&Path> {
        match &self.kind {
            Kind::V1 { dirs, .. } => dirs
                .values()
                .map(PathBuf::as_path)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Kind::V2 { dir, .. } => vec![dir],
        }
    }

    /// mkdir -p in each v1 hierarchy (a new cpuset cgroup gets its parent's cpus and mems), or
    /// on v2 the directory with the controllers berth uses enabled in every ancestor's
    /// cgroup.subtree_control.
    pub fn create(&self) -> Result<()> {
        match &self.kind {
            Kind::V1 { mounts, .. } => {
                let rel = self.path.strip_prefix("/").unwrap_or(&self.path);
                let distinct: BTreeMap<&Path, bool> = mounts
                    .iter()
                    .map(|(c, m)| (m.as_path(), c == "cpuset"))
                    .collect();
                for (mount, is_cpuset) in distinct {
                    let mut dir = mount.to_path_buf();
                    for comp in rel.components() {
                        let parent = dir.clone();
                        dir.push(comp);
                        fs::mkdir(&dir)?;
                        if is_cpuset {
                            v1::cpuset::fill_from_parent(&parent, &dir)?;
                        }
                    }
                }
                Ok(())
            }
            Kind::V2 { dir, root } => v2::create(root, dir),
        }
    }

    /// Writes `r` into the cgroup: at create, and at `update`.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        match &self.kind {
            Kind::V1 { dirs, .. } => v1::apply(dirs, r),
            Kind::V2 { dir, .. } => v2::apply(dir, r),
        }
    }

    /// Moves process `pid` into the cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for dir in self.distinct_dirs() {
            fs::write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Moves the calling process into the cgroup in every hierarchy. The caller must be
    /// single-threaded. On v1 this writes "0" to each hierarchy's `tasks` file: moving only the
    /// calling thread lets the kernel skip the global threadgroup lock, whose RCU grace period
    /// costs about 20 ms per migration on these machines (cgroup.procs always takes it).
    pub fn join_self(&self) -> Result<()> {
        match &self.kind {
            Kind::V1 { .. } => {
                for dir in self.distinct_dirs() {
                    fs::write(dir, "tasks", "0")?;
                }
                Ok(())
            }
            Kind::V2 { dir, .. } => fs::write(dir, "cgroup.procs", "0"),
        }
    }

    /// The directory whose cgroup.procs tells membership (v1: pids, memory, freezer, ...).
    fn membership_dir(&self) -> Result<&Path> {
        match &self.kind {
            Kind::V2 { dir, .. } => Ok(dir),
            Kind::V1 { dirs, .. } => ["pids", "memory", "freezer", "cpu", "devices"]
                .iter()
                .find_map(|c| dirs.get(*c))
                .or_else(|| dirs.values().next())
                .map(PathBuf::as_path)
                .ok_or_else(|| CgroupError::Layout {
                    reason: "no v1 hierarchy".into(),
                }),
        }
    }

    /// Every pid in this cgroup and its descendants.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        for d in fs::walk_dirs(self.membership_dir()?)? {
            out.extend(fs::read_pids(&d)?);
        }
        Ok(out)
    }

    fn freezer_dir(&self) -> Result<&Path> {
        self.dir("freezer").ok_or_else(|| {
            CgroupError::unsupported("freezer", "no v1 freezer hierarchy is mounted")
        })
    }

    /// Freezes every process and waits until the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<()> {
        match &self.kind {
            Kind::V1 { .. } => v1::freezer::set(self.freezer_dir()?, true, FREEZE_TIMEOUT),
            Kind::V2 { dir, .. } => v2::freezer::set(dir, true, FREEZE_TIMEOUT),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match &self.kind {
            Kind::V1 { .. } => v1::freezer::set(self.freezer_dir()?, false, FREEZE_TIMEOUT),
            Kind::V2 { dir, .. } => v2::freezer::set(dir, false, FREEZE_TIMEOUT),
        }
    }

    pub fn is_frozen(&self) -> Result<bool> {
        match &self.kind {
            Kind::V1 { .. } => v1::freezer::is_frozen(self.freezer_dir()?),
            Kind::V2 { dir, .. } => v2::freezer::is_frozen(dir),
        }
    }

    /// SIGKILLs every process: v2 cgroup.kill where the kernel has it, otherwise freeze (so
    /// nothing forks meanwhile), kill each pid, thaw (so the signals are delivered).
    pub fn kill_all(&self) -> Result<()> {
        if let Kind::V2 { dir, .. } = &self.kind {
            if fs::exists(dir, "cgroup.kill") {
                return fs::write(dir, "cgroup.kill", "1");
            }
        }
        let can_freeze = match &self.kind {
            Kind::V1 { dirs, .. } => dirs.contains_key("freezer"),
            Kind::V2 { dir, .. } => fs::exists(dir, "cgroup.freeze"),
        };
        if can_freeze {
            self.freeze()?;
        }
        let result = self.procs().and_then(|pids| {
            for pid in pids {
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => {
                        return Err(CgroupError::Kill {
                            pid,
                            source: e.into(),
                        });
                    }
                }
            }
            Ok(())
        });
        if can_freeze {
            self.thaw()?;
        }
        result
    }

    /// Usage figures, shaped like runc's `events --stats` "data" object.
    pub fn stats(&self) -> Result<Stats> {
        match &self.kind {
            Kind::V1 { dirs, .. } => stats::v1(dirs),
            Kind::V2 { dir, .. } => stats::v2(dir),
        }
    }

    /// How many processes the OOM killer killed in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        let (dir, file) = match &self.kind {
            Kind::V1 { dirs, .. } => (
                dirs.get("memory").ok_or_else(|| {
                    CgroupError::unsupported("memory", "no v1 memory hierarchy is mounted")
                })?,
                "memory.oom_control",
            ),
            Kind::V2 { dir, .. } => (dir, "memory.events"),
        };
        Ok(fs::read_key(dir, file, "oom_kill")?.unwrap_or(0))
    }

    /// Removes the cgroup (and any child cgroups, leaves first) in every hierarchy, retrying
    /// briefly while the kernel still counts exiting processes. Missing directories are fine.
    pub fn destroy(&self) -> Result<()> {
        for dir in self.distinct_dirs() {
            let mut all = fs::walk_dirs(dir)?;
            all.reverse();
            for d in all {
                rmdir_retry(&d)?;
            }
        }
        Ok(())
    }
}

fn rmdir_retry(dir: &Path) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < RMDIR_TIMEOUT => {
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source: e.into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_layout() -> Layout {
        Layout::from_mountinfo(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        )
        .unwrap()
    }

    #[test]
    fn new_maps_the_path_into_every_hierarchy() {
        let cg = Cgroup::new(&v1_layout(), Path::new("/kubepods/pod1/abc"));
        assert_eq!(cg.path(), Path::new("/kubepods/pod1/abc"));
        assert_eq!(
            cg.dir("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/kubepods/pod1/abc"))
        );
        assert_eq!(
            cg.dir("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/abc"))
        );
        assert_eq!(cg.distinct_dirs().len(), 2);
        let v2 = Cgroup::new(
            &Layout::V2 {
                root: "/sys/fs/cgroup".into(),
            },
            Path::new("/a/b"),
        );
        assert_eq!(v2.dir("memory"), Some(Path::new("/sys/fs/cgroup/a/b")));
    }

    #[test]
    fn v1_create_apply_add_on_fixture_hierarchies() {
        let root = tempfile::tempdir().unwrap();
        let mem = root.path().join("memory");
        let cpuset = root.path().join("cpuset");
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::create_dir_all(&cpuset).unwrap();
        std::fs::write(cpuset.join("cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(cpuset.join("cpuset.mems"), "0\n").unwrap();
        let layout = Layout::from_mountinfo(&format!(
            "1 1 0:1 / {} rw - cgroup cgroup rw,memory\n2 1 0:2 / {} rw - cgroup cgroup rw,cpuset\n",
            mem.display(),
            cpuset.display()
        ))
        .unwrap();
        let cg = Cgroup::new(&layout, Path::new("/a/b"));
        // plain directories have no cpuset files: create the ones the kernel would
        std::fs::create_dir_all(cpuset.join("a/b")).unwrap();
        for d in ["a", "a/b"] {
            std::fs::write(cpuset.join(d).join("cpuset.cpus"), "").unwrap();
            std::fs::write(cpuset.join(d).join("cpuset.mems"), "").unwrap();
        }
        cg.create().unwrap();
        assert!(mem.join("a/b").is_dir());
        assert_eq!(
            std::fs::read_to_string(cpuset.join("a/b/cpuset.cpus")).unwrap(),
            "0-1\n"
        );
        std::fs::write(mem.join("a/b/memory.limit_in_bytes"), "").unwrap();
        std::fs::write(mem.join("a/b/cgroup.procs"), "").unwrap();
        std::fs::write(cpuset.join("a/b/cgroup.procs"), "").unwrap();
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).unwrap();
        cg.apply(&r).unwrap();
        assert_eq!(
            std::fs::read_to_string(mem.join("a/b/memory.limit_in_bytes")).unwrap(),
            "1048576\n"
        );
        let r: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":5}}"#).unwrap();
        let e = cg.apply(&r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "linux.resources.pids: not supported: no v1 pids hierarchy is mounted"
        );
        let r: LinuxResources = serde_json::from_str(r#"{"unified":{"memory.high":"1"}}"#).unwrap();
        assert!(cg.apply(&r).is_err());
        cg.add_process(42).unwrap();
        assert_eq!(cg.procs().unwrap(), vec![42]);
        assert_eq!(
            std::fs::read_to_string(cpuset.join("a/b/cgroup.procs")).unwrap(),
            "42\n"
        );
    }

    #[test]
    fn write_error_message_is_lowercase_with_path() {
        let d = tempfile::tempdir().unwrap();
        let e = fs::write(d.path(), "memory.limit_in_bytes", "1").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "write {}/memory.limit_in_bytes: no such file or directory",
                d.path().display()
            )
        );
    }
}
