//! v2 memory: memory.max (limit), memory.low (reservation), memory.swap.max (OCI swap is
//! memory+swap, so swap - limit). -1 is "max". swappiness and disableOOMKiller have no v2
//! file: ignored with a debug log.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::v1::memory::{ignore_kernel_fields, validate};
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Memory;

fn value(v: i64) -> String {
    if v == -1 { "max".into() } else { v.to_string() }
}

/// memory.swap.max from OCI limit and swap (memory+swap). `None`: leave it alone.
pub(crate) fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>> {
    match (limit, swap) {
        // unlimited memory, swap unset: both unlimited, as v1 does
        (Some(-1), None) => Ok(Some("max".into())),
        (_, None) => Ok(None),
        (_, Some(-1)) => Ok(Some("max".into())),
        (Some(l), Some(s)) if l > 0 => Ok(Some((s - l).to_string())),
        (_, Some(_)) => Err(CgroupError::invalid(
            "linux.resources.memory.swap",
            "a swap limit needs a memory limit on cgroup v2",
        )),
    }
}

impl Controller for Memory {
    const NAME: &'static str = "memory";
    const FIELD: &'static str = "linux.resources.memory";

    fn needed(r: &LinuxResources) -> bool {
        r.memory().is_some()
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(m) = r.memory() else { return Ok(()) };
        let (limit, swap) = validate(m)?;
        ignore_kernel_fields(m);
        let swap_max = swap_max(limit, swap)?;
        if m.check_before_update() == Some(true) {
            if let Some(l) = limit.filter(|l| *l > 0) {
                let usage = fs::read_u64(dir, "memory.current")?;
                if usage > l as u64 {
                    return Err(CgroupError::invalid(
                        "linux.resources.memory.limit",
                        format!("{l} is below the current usage {usage} (checkBeforeUpdate)"),
                    ));
                }
            }
        }
        if let Some(v) = swap_max {
            if !fs::exists(dir, "memory.swap.max") {
                if v != "max" {
                    return Err(CgroupError::unsupported(
                        "linux.resources.memory.swap",
                        "the kernel has no swap accounting (no memory.swap.max)",
                    ));
                }
            } else {
                fs::write(dir, "memory.swap.max", &v)?;
            }
        }
        if let Some(l) = limit {
            fs::write(dir, "memory.max", &value(l))?;
        }
        if let Some(res) = m.reservation().filter(|v| *v != 0) {
            fs::write(dir, "memory.low", &value(res))?;
        }
        if m.swappiness().is_some() || m.disable_oom_killer().is_some() {
            tracing::debug!(
                swappiness = ?m.swappiness(),
                disable_oom_killer = ?m.disable_oom_killer(),
                "memory swappiness and disableOOMKiller have no cgroup v2 file: ignored"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, dir_with, read, resources};

    const FILES: &[&str] = &["memory.max", "memory.low", "memory.swap.max"];

    #[test]
    fn swap_is_total_minus_limit() {
        let d = dir(FILES);
        let r = resources(
            r#"{"memory":{"limit":33554432,"swap":67108864,"reservation":1048576,"swappiness":5}}"#,
        );
        Memory::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "memory.max"), "33554432\n");
        assert_eq!(read(d.path(), "memory.swap.max"), "33554432\n");
        assert_eq!(read(d.path(), "memory.low"), "1048576\n");
    }

    #[test]
    fn minus_one_is_max() {
        let d = dir(FILES);
        Memory::apply(d.path(), &resources(r#"{"memory":{"limit":-1}}"#)).unwrap();
        assert_eq!(read(d.path(), "memory.max"), "max\n");
        assert_eq!(read(d.path(), "memory.swap.max"), "max\n");
        let d = dir(FILES);
        Memory::apply(
            d.path(),
            &resources(r#"{"memory":{"limit":1048576,"swap":-1}}"#),
        )
        .unwrap();
        assert_eq!(read(d.path(), "memory.swap.max"), "max\n");
        let d = dir(FILES);
        Memory::apply(
            d.path(),
            &resources(r#"{"memory":{"limit":1048576,"swap":1048576}}"#),
        )
        .unwrap();
        assert_eq!(read(d.path(), "memory.swap.max"), "0\n");
    }

    #[test]
    fn swap_without_limit_is_invalid() {
        let d = dir(FILES);
        let e = Memory::apply(d.path(), &resources(r#"{"memory":{"swap":1048576}}"#)).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.memory.swap: "),
            "{e}"
        );
        assert_eq!(read(d.path(), "memory.max"), "");
    }

    #[test]
    fn check_before_update() {
        let d = dir_with(&[("memory.max", ""), ("memory.current", "8192\n")]);
        let r = resources(r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#);
        assert!(Memory::apply(d.path(), &r).is_err());
    }
}
