//! CRI `LinuxContainerResources` to OCI `LinuxResources` (cgroupfs driver).

use std::path::Path;

use berth_api::runtime::v1::LinuxContainerResources;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxHugepageLimitBuilder,
    LinuxMemoryBuilder, LinuxResources, LinuxResourcesBuilder,
};

use super::{Error, Result, build_err};

/// Whether the node accounts swap (cgroup v1 memory.memsw.*, cgroup v2 memory.swap.max): only
/// then is a swap limit written, as containerd does; the runtime refuses one otherwise.
pub fn swap_accounting() -> bool {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        // v2: the root has no memory.swap.max; look in berthd's own cgroup.
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|c| {
                c.lines().find_map(|l| {
                    l.strip_prefix("0::")
                        .map(|p| p.trim_start_matches('/').to_owned())
                })
            })
            .unwrap_or_default();
        return !own.is_empty() && root.join(own).join("memory.swap.max").exists();
    }
    root.join("memory/memory.memsw.limit_in_bytes").exists()
}

/// The cgroup limits of `r`, with `devices` as the device rules. Zero or negative values
/// mean "not set", as in the CRI. `swap_accounting`: see [`swap_accounting`].
pub fn linux_resources(
    r: Option<&LinuxContainerResources>,
    devices: Vec<LinuxDeviceCgroup>,
    swap_accounting: bool,
) -> Result<LinuxResources> {
    let mut b = LinuxResourcesBuilder::default().devices(devices);
    let Some(r) = r else {
        return b.build().map_err(build_err("linux.resources"));
    };
    let mut cpu = LinuxCpuBuilder::default();
    let mut cpu_set = false;
    if r.cpu_shares > 0 {
        cpu = cpu.shares(r.cpu_shares as u64);
        cpu_set = true;
    }
    if r.cpu_quota > 0 {
        cpu = cpu.quota(r.cpu_quota);
        cpu_set = true;
    }
    if r.cpu_period > 0 {
        cpu = cpu.period(r.cpu_period as u64);
        cpu_set = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(r.cpuset_cpus.clone());
        cpu_set = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu = cpu.mems(r.cpuset_mems.clone());
        cpu_set = true;
    }
    if cpu_set {
        b = b.cpu(cpu.build().map_err(build_err("linux.resources.cpu"))?);
    }
    if r.memory_limit_in_bytes > 0 {
        // No swap for containers: swap limit = memory limit, unless the kubelet says otherwise.
        let swap = if r.memory_swap_limit_in_bytes > 0 {
            if r.memory_swap_limit_in_bytes < r.memory_limit_in_bytes {
                return Err(Error::InvalidArgument(format!(
                    "memory_swap_limit_in_bytes {} is below memory_limit_in_bytes {}",
                    r.memory_swap_limit_in_bytes, r.memory_limit_in_bytes
                )));
            }
            r.memory_swap_limit_in_bytes
        } else {
            r.memory_limit_in_bytes
        };
        let mut mem = LinuxMemoryBuilder::default().limit(r.memory_limit_in_bytes);
        if swap_accounting {
            mem = mem.swap(swap);
        }
        let mem = mem.build().map_err(build_err("linux.resources.memory"))?;
        b = b.memory(mem);
    }
    if !r.hugepage_limits.is_empty() {
        let mut limits = Vec::new();
        for h in &r.hugepage_limits {
            if h.page_size.is_empty() {
                return Err(Error::InvalidArgument(
                    "hugepage_limits: empty page_size".into(),
                ));
            }
            let limit = i64::try_from(h.limit).map_err(|_| {
                Error::InvalidArgument(format!(
                    "hugepage_limits {}: limit {} out of range",
                    h.page_size, h.limit
                ))
            })?;
            limits.push(
                LinuxHugepageLimitBuilder::default()
                    .page_size(h.page_size.clone())
                    .limit(limit)
                    .build()
                    .map_err(build_err("linux.resources.hugepageLimits"))?,
            );
        }
        b = b.hugepage_limits(limits);
    }
    if !r.unified.is_empty() {
        for key in r.unified.keys() {
            if key.is_empty() || key.contains('/') || key.starts_with('.') {
                return Err(Error::InvalidArgument(format!(
                    "unified: {key:?} is not a cgroup file name"
                )));
            }
        }
        b = b.unified(r.unified.clone());
    }
    b.build().map_err(build_err("linux.resources"))
}

/// Every container starts by being denied every device; allow rules follow.
pub fn deny_all_devices() -> Result<LinuxDeviceCgroup> {
    LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(build_err("linux.resources.devices"))
}

/// The privileged rule: every device, read, write and mknod.
pub fn allow_all_devices() -> Result<LinuxDeviceCgroup> {
    LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .access("rwm")
        .build()
        .map_err(build_err("linux.resources.devices"))
}

#[cfg(test)]
mod tests {
    use berth_api::runtime::v1::HugepageLimit;

    use super::*;

    #[test]
    fn cpu_memory_hugepages_unified_mapped() {
        let r = LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            hugepage_limits: vec![HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            unified: [("memory.high".to_owned(), "50000000".to_owned())].into(),
            ..Default::default()
        };
        let out = linux_resources(Some(&r), vec![deny_all_devices().unwrap()], true).unwrap();
        let cpu = out.cpu().as_ref().unwrap();
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.cpus().as_deref(), Some("0-1"));
        assert_eq!(cpu.mems().as_deref(), Some("0"));
        let mem = out.memory().as_ref().unwrap();
        assert_eq!(mem.limit(), Some(64 << 20));
        assert_eq!(mem.swap(), Some(64 << 20), "no swap: swap = limit");
        let h = &out.hugepage_limits().as_ref().unwrap()[0];
        assert_eq!((h.page_size().as_str(), h.limit()), ("2MB", 4 << 20));
        assert_eq!(out.unified().as_ref().unwrap()["memory.high"], "50000000");
        assert_eq!(out.devices().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn zeroes_mean_unset() {
        let out = linux_resources(Some(&LinuxContainerResources::default()), vec![], true).unwrap();
        assert!(out.cpu().is_none() && out.memory().is_none());
        assert!(out.hugepage_limits().is_none() && out.unified().is_none());
    }

    #[test]
    fn unified_key_with_slash_refused() {
        let r = LinuxContainerResources {
            unified: [("../cpu.max".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        };
        let e = linux_resources(Some(&r), vec![], true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("../cpu.max"), "{e}");
    }

    #[test]
    fn swap_below_limit_refused() {
        let r = LinuxContainerResources {
            memory_limit_in_bytes: 100,
            memory_swap_limit_in_bytes: 50,
            ..Default::default()
        };
        assert!(linux_resources(Some(&r), vec![], true).is_err());
    }

    #[test]
    fn no_swap_limit_without_swap_accounting() {
        let r = LinuxContainerResources {
            memory_limit_in_bytes: 100,
            ..Default::default()
        };
        let out = linux_resources(Some(&r), vec![], false).unwrap();
        let mem = out.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(100), None));
    }
}
