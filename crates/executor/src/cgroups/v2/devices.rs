//! v2 devices: an eBPF device filter (see bpf.rs) attached to the cgroup directory with
//! BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI). On update the new program is
//! attached first and the ones attached before are detached after, so there is never a moment
//! without a filter.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::{bpf, bpf_sys};
use crate::cgroups::controller::Controller;
use crate::cgroups::v1::devices::rule;
use crate::cgroups::{CgroupError, Result};

pub(crate) struct Devices;

impl Controller for Devices {
    const NAME: &'static str = "";
    const FIELD: &'static str = "linux.resources.devices";

    fn needed(r: &LinuxResources) -> bool {
        r.devices().is_some()
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(list) = r.devices() else {
            return Ok(());
        };
        let mut rules = Vec::new();
        for d in list {
            if let Some(r) = rule(d)? {
                rules.push(r);
            }
        }
        let program = bpf::device_program(&rules);
        let cg = File::open(dir).map_err(|e| CgroupError::Read {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
        let bpf_err = |op, source| CgroupError::Bpf {
            op,
            path: dir.to_path_buf(),
            source,
        };
        let old = bpf_sys::query_device_programs(cg.as_fd()).map_err(|e| bpf_err("query", e))?;
        let prog = bpf_sys::load_device_program(&program).map_err(|(source, log)| {
            CgroupError::BpfLoad {
                path: dir.to_path_buf(),
                source,
                log,
            }
        })?;
        bpf_sys::attach_device_program(cg.as_fd(), prog.as_fd(), bpf_sys::BPF_F_ALLOW_MULTI)
            .map_err(|e| bpf_err("attach", e))?;
        for id in old {
            match bpf_sys::prog_fd_by_id(id) {
                Ok(fd) => bpf_sys::detach_device_program(cg.as_fd(), fd.as_fd())
                    .map_err(|e| bpf_err("detach", e))?,
                // detached meanwhile
                Err(e) if e.errno() == Some(libc::ENOENT) => {}
                Err(e) => return Err(bpf_err("get fd by id", e)),
            }
        }
        tracing::debug!(dir = %dir.display(), rules = rules.len(), insns = program.len(), "device filter attached");
        Ok(())
    }
}
