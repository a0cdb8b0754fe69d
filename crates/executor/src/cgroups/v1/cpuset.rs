//! v1 cpuset: cpuset.cpus and cpuset.mems.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{Result, fs};

pub(crate) struct Cpuset;

impl Controller for Cpuset {
    const NAME: &'static str = "cpuset";
    const FIELD: &'static str = "linux.resources.cpu.cpus";

    fn needed(r: &LinuxResources) -> bool {
        r.cpu().as_ref().is_some_and(|c| {
            c.cpus().as_deref().is_some_and(|s| !s.is_empty())
                || c.mems().as_deref().is_some_and(|s| !s.is_empty())
        })
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(cpu) = r.cpu() else { return Ok(()) };
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            fs::write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            fs::write(dir, "cpuset.mems", mems)?;
        }
        Ok(())
    }
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and no task can join it until both
/// are set: copy them from the parent when empty. `dirs` run from the hierarchy root down.
pub(crate) fn fill_from_parent(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if fs::read(dir, file)?.trim().is_empty() {
            let v = fs::read(parent, file)?;
            fs::write(dir, file, v.trim())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, dir_with, read, resources};

    #[test]
    fn writes_cpus_and_mems() {
        let d = dir(&["cpuset.cpus", "cpuset.mems"]);
        let r = resources(r#"{"cpu":{"cpus":"0-1","mems":"0"}}"#);
        assert!(Cpuset::needed(&r));
        Cpuset::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "cpuset.cpus"), "0-1\n");
        assert_eq!(read(d.path(), "cpuset.mems"), "0\n");
    }

    #[test]
    fn empty_strings_are_not_written() {
        let r = resources(r#"{"cpu":{"cpus":"","shares":2}}"#);
        assert!(!Cpuset::needed(&r));
    }

    #[test]
    fn empty_child_copies_parent() {
        let p = dir_with(&[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")]);
        let c = dir_with(&[("cpuset.cpus", "\n"), ("cpuset.mems", "1")]);
        fill_from_parent(p.path(), c.path()).unwrap();
        assert_eq!(read(c.path(), "cpuset.cpus"), "\n0-3\n");
        assert_eq!(read(c.path(), "cpuset.mems"), "1");
    }
}
