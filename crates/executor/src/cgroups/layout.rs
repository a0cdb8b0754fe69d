//! Which cgroup hierarchies the host mounts, read from /proc/self/mountinfo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{CgroupError, Result};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// v1 controllers berth knows; other words in a cgroup mount's options are mount flags.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

/// Host layout: pure v2 (one unified hierarchy), or v1/hybrid (one mount per v1 hierarchy,
/// with perhaps a cgroup2 mount beside them that berth does not use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Pure cgroup v2: the cgroup2 mount point (normally /sys/fs/cgroup).
    V2 { root: PathBuf },
    /// v1 or hybrid: each controller (and named hierarchy such as "name=systemd") with the mount
    /// point of its hierarchy; co-mounted controllers (cpu,cpuacct) share one.
    V1 {
        hierarchies: BTreeMap<String, PathBuf>,
        unified: Option<PathBuf>,
    },
}

impl Layout {
    /// Reads /proc/self/mountinfo.
    pub fn detect() -> Result<Layout> {
        let text = std::fs::read_to_string(MOUNTINFO).map_err(|e| CgroupError::Read {
            path: MOUNTINFO.into(),
            source: e.into(),
        })?;
        Layout::from_mountinfo(&text)
    }

    /// The host layout, read once per process: it does not change while a runtime command
    /// runs, and several steps of one command need it.
    pub fn cached() -> Result<&'static Layout> {
        static LAYOUT: std::sync::OnceLock<Layout> = std::sync::OnceLock::new();
        if let Some(l) = LAYOUT.get() {
            return Ok(l);
        }
        let l = Layout::detect()?;
        Ok(LAYOUT.get_or_init(|| l))
    }

    /// The distinct v1 hierarchy mount points (co-mounted controllers once); empty on v2.
    pub fn v1_mountpoints(&self) -> Vec<&Path> {
        match self {
            Layout::V2 { .. } => Vec::new(),
            Layout::V1 { hierarchies, .. } => {
                let mut v: Vec<&Path> = hierarchies.values().map(PathBuf::as_path).collect();
                v.sort();
                v.dedup();
                v
            }
        }
    }

    /// Parses the content of a mountinfo file. The first mount of a hierarchy wins.
    pub fn from_mountinfo(text: &str) -> Result<Layout> {
        let mut hierarchies = BTreeMap::new();
        let mut unified = None;
        for line in text.lines() {
            // "36 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory"
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            if left.len() < 5 || right.len() < 3 {
                continue;
            }
            let mount_point = PathBuf::from(unescape(left[4]));
            match right[0] {
                "cgroup2" => {
                    unified.get_or_insert(mount_point);
                }
                "cgroup" => {
                    for opt in right[2].split(',') {
                        if V1_CONTROLLERS.contains(&opt) || opt.starts_with("name=") {
                            hierarchies
                                .entry(opt.to_string())
                                .or_insert_with(|| mount_point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let has_v1_controller = hierarchies.keys().any(|k| !k.starts_with("name="));
        match (has_v1_controller, unified) {
            (true, unified) => Ok(Layout::V1 {
                hierarchies,
                unified,
            }),
            (false, Some(root)) => Ok(Layout::V2 { root }),
            (false, None) => Err(CgroupError::Layout {
                reason: format!("no cgroup hierarchy mounted (read {MOUNTINFO})"),
            }),
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }

    /// The mount point of a v1 controller's hierarchy.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        match self {
            Layout::V1 { hierarchies, .. } => hierarchies.get(controller).map(PathBuf::as_path),
            Layout::V2 { .. } => None,
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
23 1 8:1 / / rw,relatime - ext4 /dev/root rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_is_v1_with_comounted_controllers() {
        let l = Layout::from_mountinfo(HYBRID).unwrap();
        assert!(!l.is_v2());
        assert_eq!(
            l.v1_mount("cpu"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            l.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            l.v1_mount("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(
            l.v1_mount("name=systemd"),
            Some(Path::new("/sys/fs/cgroup/systemd"))
        );
        assert_eq!(l.v1_mount("xattr"), None);
        let Layout::V1 { unified, .. } = l else {
            unreachable!()
        };
        assert_eq!(unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn pure_v2() {
        let l = Layout::from_mountinfo(
            "25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        )
        .unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert!(l.is_v2());
    }

    #[test]
    fn nothing_mounted_is_an_error() {
        assert!(Layout::from_mountinfo("23 1 8:1 / / rw - ext4 /dev/root rw\n").is_err());
    }

    #[test]
    fn escaped_mount_points() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn detects_this_host() {
        // whatever the host is, detection must not fail where /sys/fs/cgroup is mounted
        if Path::new("/sys/fs/cgroup").exists() {
            Layout::detect().unwrap();
        }
    }
}
