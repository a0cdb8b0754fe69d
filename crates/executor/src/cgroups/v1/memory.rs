//! v1 memory: memory.limit_in_bytes, memory.memsw.limit_in_bytes (OCI `swap` is the
//! memory+swap total, which is exactly memsw), memory.soft_limit_in_bytes, memory.swappiness,
//! memory.oom_control. -1 means unlimited and is written as -1; 0 means "not set".

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use crate::cgroups::controller::Controller;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Memory;

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

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

        if m.check_before_update() == Some(true) {
            if let Some(l) = limit.filter(|l| *l > 0) {
                let usage = fs::read_u64(dir, "memory.usage_in_bytes")?;
                if usage > l as u64 {
                    return Err(CgroupError::invalid(
                        "linux.resources.memory.limit",
                        format!("{l} is below the current usage {usage} (checkBeforeUpdate)"),
                    ));
                }
            }
        }

        match (limit, swap) {
            (Some(l), Some(s)) => {
                if !fs::exists(dir, MEMSW) {
                    return Err(CgroupError::unsupported(
                        "linux.resources.memory.swap",
                        "swap accounting is off (no memory.memsw.limit_in_bytes)",
                    ));
                }
                // memsw must stay >= limit at every step: raise memsw first when it grows
                let current_memsw = fs::read_u64(dir, MEMSW)?;
                if s == -1 || s as u64 >= current_memsw {
                    fs::write(dir, MEMSW, &s.to_string())?;
                    fs::write(dir, LIMIT, &l.to_string())?;
                } else {
                    fs::write(dir, LIMIT, &l.to_string())?;
                    fs::write(dir, MEMSW, &s.to_string())?;
                }
            }
            (Some(l), None) => {
                // unlimited memory with swap unset means both unlimited (as runc does)
                if l == -1 && fs::exists(dir, MEMSW) {
                    fs::write(dir, MEMSW, "-1")?;
                }
                fs::write(dir, LIMIT, &l.to_string())?;
            }
            (None, Some(s)) => fs::write(dir, MEMSW, &s.to_string())?,
            (None, None) => {}
        }

        if let Some(res) = m.reservation().filter(|v| *v != 0) {
            if res < -1 {
                return Err(CgroupError::invalid(
                    "linux.resources.memory.reservation",
                    format!("{res} is neither -1 nor positive"),
                ));
            }
            fs::write(dir, "memory.soft_limit_in_bytes", &res.to_string())?;
        }
        if let Some(sw) = m.swappiness() {
            if sw > 100 {
                return Err(CgroupError::invalid(
                    "linux.resources.memory.swappiness",
                    format!("{sw} is above 100"),
                ));
            }
            fs::write(dir, "memory.swappiness", &sw.to_string())?;
        }
        if m.disable_oom_killer() == Some(true) {
            fs::write(dir, "memory.oom_control", "1")?;
        }
        Ok(())
    }
}

/// Checks limit and swap and returns them, 0 read as unset.
pub(crate) fn validate(m: &LinuxMemory) -> Result<(Option<i64>, Option<i64>)> {
    let limit = m.limit().filter(|v| *v != 0);
    let swap = m.swap().filter(|v| *v != 0);
    if let Some(l) = limit.filter(|l| *l < -1) {
        return Err(CgroupError::invalid(
            "linux.resources.memory.limit",
            format!("{l} is neither -1 nor positive"),
        ));
    }
    if let Some(s) = swap.filter(|s| *s < -1) {
        return Err(CgroupError::invalid(
            "linux.resources.memory.swap",
            format!("{s} is neither -1 nor positive"),
        ));
    }
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s > 0 && s < l {
            return Err(CgroupError::invalid(
                "linux.resources.memory.swap",
                format!("{s} (memory+swap) is below linux.resources.memory.limit {l}"),
            ));
        }
    }
    Ok((limit, swap))
}

/// kernel and kernelTCP are deprecated (the kernel ignores or lacks kmem limits): ignored.
pub(crate) fn ignore_kernel_fields(m: &LinuxMemory) {
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::debug!(
            kernel = ?m.kernel(),
            kernel_tcp = ?m.kernel_tcp(),
            "linux.resources.memory.kernel and kernelTCP are deprecated and ignored"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir_with, read, resources};

    fn fixture(memsw: &str) -> tempfile::TempDir {
        dir_with(&[
            (LIMIT, ""),
            (MEMSW, memsw),
            ("memory.soft_limit_in_bytes", ""),
            ("memory.swappiness", ""),
            ("memory.oom_control", ""),
            ("memory.usage_in_bytes", "1048576\n"),
        ])
    }

    #[test]
    fn writes_every_field() {
        // the write order (memsw before or after the limit) shows only on a real kernel:
        // tests/cgroups_v1.rs lowers and raises both
        let d = fixture("9223372036854771712\n");
        let r = resources(
            r#"{"memory":{"limit":33554432,"swap":67108864,"reservation":16777216,
                "swappiness":10,"disableOOMKiller":true,"kernel":1000}}"#,
        );
        Memory::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), LIMIT), "33554432\n");
        assert_eq!(read(d.path(), MEMSW), "9223372036854771712\n67108864\n");
        assert_eq!(read(d.path(), "memory.soft_limit_in_bytes"), "16777216\n");
        assert_eq!(read(d.path(), "memory.swappiness"), "10\n");
        assert_eq!(read(d.path(), "memory.oom_control"), "1\n");
    }

    #[test]
    fn unlimited_is_minus_one_in_both() {
        let d = fixture("100\n");
        Memory::apply(d.path(), &resources(r#"{"memory":{"limit":-1}}"#)).unwrap();
        assert_eq!(read(d.path(), LIMIT), "-1\n");
        assert_eq!(read(d.path(), MEMSW), "100\n-1\n");
    }

    #[test]
    fn swap_below_limit_is_rejected_naming_the_field() {
        let d = fixture("");
        let e = Memory::apply(
            d.path(),
            &resources(r#"{"memory":{"limit":2000000,"swap":1000000}}"#),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.memory.swap: "),
            "{e}"
        );
        assert_eq!(read(d.path(), LIMIT), "");
    }

    #[test]
    fn swappiness_over_100_is_rejected() {
        let d = fixture("");
        let e =
            Memory::apply(d.path(), &resources(r#"{"memory":{"swappiness":101}}"#)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.memory.swappiness: "),
            "{e}"
        );
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let d = fixture("");
        let e = Memory::apply(
            d.path(),
            &resources(r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.memory.limit: "),
            "{e}"
        );
        Memory::apply(
            d.path(),
            &resources(r#"{"memory":{"limit":4194304,"checkBeforeUpdate":true}}"#),
        )
        .unwrap();
        assert_eq!(read(d.path(), LIMIT), "4194304\n");
    }

    #[test]
    fn swap_without_memsw_file_is_unsupported() {
        let d = dir_with(&[(LIMIT, "")]);
        let e = Memory::apply(
            d.path(),
            &resources(r#"{"memory":{"limit":1000000,"swap":2000000}}"#),
        )
        .unwrap_err();
        assert!(e.to_string().contains("linux.resources.memory.swap"), "{e}");
    }
}
