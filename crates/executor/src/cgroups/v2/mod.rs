//! cgroup v2 controllers, all in the one unified directory.

mod bpf;
mod bpf_sys;
pub(crate) mod cpu;
pub(crate) mod cpuset;
pub(crate) mod devices;
pub(crate) mod freezer;
pub(crate) mod hugetlb;
pub(crate) mod io;
pub(crate) mod memory;
pub(crate) mod pids;
pub(crate) mod unified;

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::controller::Controller;
use super::{CgroupError, Result, fs};

/// Controllers berth enables for its cgroups, when the parent offers them.
const WANTED: &[&str] = &["cpuset", "cpu", "io", "memory", "pids", "hugetlb"];

/// Creates `dir` below `root`, enabling the wanted controllers in the cgroup.subtree_control
/// of `root` and of every ancestor on the way.
pub(crate) fn create(root: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| CgroupError::Layout {
        reason: format!("{} is not below {}", dir.display(), root.display()),
    })?;
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        enable_controllers(&cur)?;
        cur.push(comp);
        fs::mkdir(&cur)?;
    }
    Ok(())
}

fn enable_controllers(dir: &Path) -> Result<()> {
    let available = fs::read(dir, "cgroup.controllers")?;
    let enabled = fs::read(dir, "cgroup.subtree_control")?;
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for c in available.split_whitespace() {
        if WANTED.contains(&c) && !enabled.contains(&c) {
            fs::write(dir, "cgroup.subtree_control", &format!("+{c}"))?;
        }
    }
    Ok(())
}

/// Applies `r` to the unified directory `dir`. `unified` goes last so its keys win.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    one::<cpuset::Cpuset>(dir, r)?;
    one::<cpu::Cpu>(dir, r)?;
    one::<memory::Memory>(dir, r)?;
    one::<pids::Pids>(dir, r)?;
    one::<io::Io>(dir, r)?;
    one::<hugetlb::Hugetlb>(dir, r)?;
    one::<devices::Devices>(dir, r)?;
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        tracing::debug!("linux.resources.rdma is ignored");
    }
    if r.network().is_some() {
        tracing::debug!("linux.resources.network has no cgroup v2 controller: ignored");
    }
    one::<unified::Unified>(dir, r)
}

fn one<C: Controller>(dir: &Path, r: &LinuxResources) -> Result<()> {
    if C::needed(r) {
        C::apply(dir, r)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::read;

    #[test]
    fn create_enables_offered_controllers_in_each_ancestor() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::write(
            r.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .unwrap();
        std::fs::write(r.join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::create_dir(r.join("a")).unwrap();
        std::fs::write(r.join("a/cgroup.controllers"), "memory pids\n").unwrap();
        std::fs::write(r.join("a/cgroup.subtree_control"), "").unwrap();
        create(r, &r.join("a/b")).unwrap();
        assert!(r.join("a/b").is_dir());
        assert_eq!(
            read(r, "cgroup.subtree_control"),
            "memory\n+cpuset\n+cpu\n+io\n+hugetlb\n+pids\n"
        );
        assert_eq!(
            read(&r.join("a"), "cgroup.subtree_control"),
            "+memory\n+pids\n"
        );
    }
}
