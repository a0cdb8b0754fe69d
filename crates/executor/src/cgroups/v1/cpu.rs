//! v1 cpu: cpu.shares, cpu.cfs_{period,quota,burst}_us, cpu.rt_{period,runtime}_us, cpu.idle.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Cpu;

impl Controller for Cpu {
    const NAME: &'static str = "cpu";
    const FIELD: &'static str = "linux.resources.cpu";

    fn needed(r: &LinuxResources) -> bool {
        r.cpu().as_ref().is_some_and(|c| {
            c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.burst().is_some()
                || c.idle().is_some()
                || c.realtime_runtime().is_some()
                || c.realtime_period().is_some()
        })
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(cpu) = r.cpu() else { return Ok(()) };
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            fs::write(dir, "cpu.shares", &shares.to_string())?;
        }
        let period = cpu.period().filter(|p| *p != 0);
        let quota = cpu.quota().filter(|q| *q != 0);
        if let Some(q) = quota {
            if q < -1 {
                return Err(CgroupError::invalid(
                    "linux.resources.cpu.quota",
                    format!("{q} is neither -1 nor positive"),
                ));
            }
        }
        match (period, quota) {
            (Some(p), Some(q)) => {
                // a new period can conflict with the old quota and the other way round (the
                // kernel checks the parent's bandwidth): if the first order fails, try the other
                if fs::write(dir, "cpu.cfs_period_us", &p.to_string()).is_err() {
                    fs::write(dir, "cpu.cfs_quota_us", &q.to_string())?;
                    fs::write(dir, "cpu.cfs_period_us", &p.to_string())?;
                } else {
                    fs::write(dir, "cpu.cfs_quota_us", &q.to_string())?;
                }
            }
            (Some(p), None) => fs::write(dir, "cpu.cfs_period_us", &p.to_string())?,
            (None, Some(q)) => fs::write(dir, "cpu.cfs_quota_us", &q.to_string())?,
            (None, None) => {}
        }
        if let Some(burst) = cpu.burst() {
            fs::write(dir, "cpu.cfs_burst_us", &burst.to_string())?;
        }
        if let Some(p) = cpu.realtime_period().filter(|p| *p != 0) {
            fs::write(dir, "cpu.rt_period_us", &p.to_string())?;
        }
        if let Some(rt) = cpu.realtime_runtime().filter(|r| *r != 0) {
            fs::write(dir, "cpu.rt_runtime_us", &rt.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            if !fs::exists(dir, "cpu.idle") {
                return Err(CgroupError::unsupported(
                    "linux.resources.cpu.idle",
                    "this kernel has no cpu.idle",
                ));
            }
            fs::write(dir, "cpu.idle", &idle.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    const FILES: &[&str] = &[
        "cpu.shares",
        "cpu.cfs_period_us",
        "cpu.cfs_quota_us",
        "cpu.cfs_burst_us",
        "cpu.rt_period_us",
        "cpu.rt_runtime_us",
        "cpu.idle",
    ];

    #[test]
    fn writes_every_field() {
        let d = dir(FILES);
        let r = resources(
            r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"burst":1000,
                "realtimePeriod":1000000,"realtimeRuntime":950000,"idle":1}}"#,
        );
        assert!(Cpu::needed(&r));
        Cpu::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "cpu.shares"), "512\n");
        assert_eq!(read(d.path(), "cpu.cfs_period_us"), "100000\n");
        assert_eq!(read(d.path(), "cpu.cfs_quota_us"), "50000\n");
        assert_eq!(read(d.path(), "cpu.cfs_burst_us"), "1000\n");
        assert_eq!(read(d.path(), "cpu.rt_period_us"), "1000000\n");
        assert_eq!(read(d.path(), "cpu.rt_runtime_us"), "950000\n");
        assert_eq!(read(d.path(), "cpu.idle"), "1\n");
    }

    #[test]
    fn unlimited_quota_and_untouched_fields() {
        let d = dir(FILES);
        Cpu::apply(d.path(), &resources(r#"{"cpu":{"quota":-1}}"#)).unwrap();
        assert_eq!(read(d.path(), "cpu.cfs_quota_us"), "-1\n");
        for f in FILES.iter().filter(|f| **f != "cpu.cfs_quota_us") {
            assert_eq!(read(d.path(), f), "", "{f}");
        }
        assert!(!Cpu::needed(&resources(r#"{"cpu":{"cpus":"0"}}"#)));
    }

    #[test]
    fn bad_quota_names_the_field() {
        let d = dir(FILES);
        let e = Cpu::apply(d.path(), &resources(r#"{"cpu":{"quota":-5}}"#)).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.cpu.quota: "),
            "{e}"
        );
    }

    #[test]
    fn idle_without_kernel_support_is_an_error() {
        let d = dir(&["cpu.shares"]);
        let e = Cpu::apply(d.path(), &resources(r#"{"cpu":{"idle":1}}"#)).unwrap_err();
        assert!(e.to_string().contains("linux.resources.cpu.idle"), "{e}");
    }
}
