//! cgroup v1 (and hybrid) controllers, one hierarchy each.

pub(crate) mod blkio;
pub(crate) mod cpu;
pub(crate) mod cpuset;
pub(crate) mod devices;
pub(crate) mod freezer;
pub(crate) mod hugetlb;
pub(crate) mod memory;
pub(crate) mod pids;

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

use super::controller::Controller;
use super::{CgroupError, Result};

/// Applies `r` to a cgroup whose directory in each mounted hierarchy is `dirs[controller]`.
pub(crate) fn apply(dirs: &BTreeMap<String, PathBuf>, r: &LinuxResources) -> Result<()> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::unsupported(
            "linux.resources.unified",
            "the host is cgroup v1",
        ));
    }
    one::<cpuset::Cpuset>(dirs, r)?;
    one::<cpu::Cpu>(dirs, r)?;
    one::<memory::Memory>(dirs, r)?;
    one::<pids::Pids>(dirs, r)?;
    one::<blkio::Blkio>(dirs, r)?;
    one::<devices::Devices>(dirs, r)?;
    if hugetlb::Hugetlb::needed(r) && !dirs.contains_key("hugetlb") {
        // the kubelet sends hugepage limits for every page size the node has, whether or not a
        // v1 hugetlb hierarchy exists (on hybrid hosts hugetlb often sits on cgroup2)
        tracing::warn!("no v1 hugetlb hierarchy: linux.resources.hugepageLimits ignored");
    } else {
        one::<hugetlb::Hugetlb>(dirs, r)?;
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        tracing::debug!("linux.resources.rdma is ignored");
    }
    if r.network().is_some() {
        tracing::debug!("linux.resources.network (net_cls, net_prio) is ignored");
    }
    Ok(())
}

fn one<C: Controller>(dirs: &BTreeMap<String, PathBuf>, r: &LinuxResources) -> Result<()> {
    if !C::needed(r) {
        return Ok(());
    }
    match dirs.get(C::NAME) {
        Some(dir) => C::apply(dir, r),
        None => Err(CgroupError::unsupported(
            C::FIELD,
            format!("no v1 {} hierarchy is mounted", C::NAME),
        )),
    }
}
