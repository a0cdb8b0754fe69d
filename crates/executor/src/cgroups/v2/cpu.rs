//! v2 cpu: cpu.weight (from OCI shares), cpu.max "<quota|max> <period>", cpu.max.burst,
//! cpu.idle. Realtime fields have no v2 file: an error when set.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Cpu;

/// Maps v1 shares (2..=262144) onto v2 weight (1..=10000) linearly, as runc and crun do.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

impl Controller for Cpu {
    const NAME: &'static str = "cpu";
    const FIELD: &'static str = "linux.resources.cpu";

    fn needed(r: &LinuxResources) -> bool {
        crate::cgroups::v1::cpu::Cpu::needed(r)
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(cpu) = r.cpu() else { return Ok(()) };
        if cpu.realtime_runtime().is_some_and(|v| v != 0)
            || cpu.realtime_period().is_some_and(|v| v != 0)
        {
            return Err(CgroupError::unsupported(
                "linux.resources.cpu.realtimeRuntime",
                "cgroup v2 has no realtime group scheduling",
            ));
        }
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            fs::write(dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
        }
        let quota = cpu.quota().filter(|q| *q != 0);
        let period = cpu.period().filter(|p| *p != 0);
        if let Some(q) = quota.filter(|q| *q < -1) {
            return Err(CgroupError::invalid(
                "linux.resources.cpu.quota",
                format!("{q} is neither -1 nor positive"),
            ));
        }
        if quota.is_some() || period.is_some() {
            let mut v = match quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            if let Some(p) = period {
                v.push_str(&format!(" {p}"));
            }
            fs::write(dir, "cpu.max", &v)?;
        }
        if let Some(b) = cpu.burst() {
            fs::write(dir, "cpu.max.burst", &b.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            fs::write(dir, "cpu.idle", &idle.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn writes_weight_max_burst_idle() {
        let d = dir(&["cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle"]);
        let r = resources(
            r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":10,"idle":0}}"#,
        );
        Cpu::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "cpu.weight"), "39\n");
        assert_eq!(read(d.path(), "cpu.max"), "50000 100000\n");
        assert_eq!(read(d.path(), "cpu.max.burst"), "10\n");
        assert_eq!(read(d.path(), "cpu.idle"), "0\n");
    }

    #[test]
    fn unlimited_quota_is_max() {
        let d = dir(&["cpu.max"]);
        Cpu::apply(
            d.path(),
            &resources(r#"{"cpu":{"quota":-1,"period":100000}}"#),
        )
        .unwrap();
        Cpu::apply(d.path(), &resources(r#"{"cpu":{"quota":20000}}"#)).unwrap();
        assert_eq!(read(d.path(), "cpu.max"), "max 100000\n20000\n");
    }

    #[test]
    fn realtime_is_unsupported() {
        let d = dir(&["cpu.max"]);
        let e = Cpu::apply(d.path(), &resources(r#"{"cpu":{"realtimeRuntime":100}}"#)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.cpu.realtimeRuntime: not supported"),
            "{e}"
        );
    }
}
