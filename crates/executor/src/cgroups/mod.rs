//! TEMPORARY placeholder, replaced by the cgroups branch before merge.
use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, CgroupError>;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub enum Layout {
    V1,
}
impl Layout {
    pub fn detect() -> Result<Layout> {
        Ok(Layout::V1)
    }
    pub fn is_v2(&self) -> bool {
        false
    }
}

pub fn resolve_path(p: Option<&str>, id: &str) -> Result<PathBuf> {
    let p = p
        .map(str::to_owned)
        .unwrap_or_else(|| format!("/berth-oci/{id}"));
    if p.split('/').any(|c| c == "..") {
        return Err(CgroupError::Invalid(format!(
            "linux.cgroupsPath: {p:?} contains \"..\""
        )));
    }
    Ok(PathBuf::from(p))
}

const CTRLS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

#[derive(Debug, Clone)]
pub struct Cgroup {
    path: PathBuf,
}
impl Cgroup {
    pub fn new(_l: &Layout, path: &Path) -> Cgroup {
        Cgroup {
            path: path.to_owned(),
        }
    }
    fn dir(&self, c: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(c)
            .join(self.path.strip_prefix("/").unwrap_or(&self.path))
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn create(&self) -> Result<()> {
        for c in CTRLS {
            let d = self.dir(c);
            std::fs::create_dir_all(&d).map_err(|e| CgroupError::Io {
                op: "mkdir",
                path: d.clone(),
                source: e,
            })?;
            if *c == "cpuset" {
                let mut cur = PathBuf::from("/sys/fs/cgroup/cpuset");
                for comp in self
                    .path
                    .strip_prefix("/")
                    .unwrap_or(&self.path)
                    .components()
                {
                    cur.push(comp);
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        let v = std::fs::read_to_string(Path::new("/sys/fs/cgroup/cpuset").join(f))
                            .unwrap_or_default();
                        let _ = std::fs::write(cur.join(f), v.trim());
                    }
                }
            }
        }
        Ok(())
    }
    pub fn apply(&self, _r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        Ok(())
    }
    pub fn add_process(&self, pid: i32) -> Result<()> {
        for c in CTRLS {
            let p = self.dir(c).join("cgroup.procs");
            std::fs::write(&p, pid.to_string()).map_err(|e| CgroupError::Io {
                op: "write",
                path: p.clone(),
                source: e,
            })?;
        }
        Ok(())
    }
    pub fn procs(&self) -> Result<Vec<i32>> {
        let p = self.dir("pids").join("cgroup.procs");
        let s = std::fs::read_to_string(&p).map_err(|e| CgroupError::Io {
            op: "read",
            path: p.clone(),
            source: e,
        })?;
        Ok(s.lines().filter_map(|l| l.parse().ok()).collect())
    }
    pub fn freeze(&self) -> Result<()> {
        let p = self.dir("freezer").join("freezer.state");
        std::fs::write(&p, "FROZEN").map_err(|e| CgroupError::Io {
            op: "write",
            path: p.clone(),
            source: e,
        })
    }
    pub fn thaw(&self) -> Result<()> {
        let p = self.dir("freezer").join("freezer.state");
        std::fs::write(&p, "THAWED").map_err(|e| CgroupError::Io {
            op: "write",
            path: p.clone(),
            source: e,
        })
    }
    pub fn is_frozen(&self) -> Result<bool> {
        let p = self.dir("freezer").join("freezer.state");
        Ok(std::fs::read_to_string(&p)
            .map(|s| s.trim() == "FROZEN")
            .unwrap_or(false))
    }
    pub fn kill_all(&self) -> Result<()> {
        let _ = self.freeze();
        for pid in self.procs().unwrap_or_default() {
            unsafe { libc::kill(pid, 9) };
        }
        self.thaw()
    }
    pub fn stats(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    pub fn oom_kill_count(&self) -> Result<u64> {
        Ok(0)
    }
    pub fn destroy(&self) -> Result<()> {
        for c in CTRLS {
            let d = self.dir(c);
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(CgroupError::Io {
                        op: "rmdir",
                        path: d.clone(),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }
}
