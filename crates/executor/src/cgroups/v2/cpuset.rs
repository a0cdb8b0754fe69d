//! v2 cpuset: cpuset.cpus and cpuset.mems (same files and values as v1; a new v2 cgroup
//! inherits its parent's effective sets, so nothing needs copying at create).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{Result, v1};

pub(crate) struct Cpuset;

impl Controller for Cpuset {
    const NAME: &'static str = "cpuset";
    const FIELD: &'static str = "linux.resources.cpu.cpus";

    fn needed(r: &LinuxResources) -> bool {
        v1::cpuset::Cpuset::needed(r)
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        v1::cpuset::Cpuset::apply(dir, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn writes_cpus_and_mems() {
        let d = dir(&["cpuset.cpus", "cpuset.mems"]);
        Cpuset::apply(d.path(), &resources(r#"{"cpu":{"cpus":"1","mems":"0"}}"#)).unwrap();
        assert_eq!(read(d.path(), "cpuset.cpus"), "1\n");
        assert_eq!(read(d.path(), "cpuset.mems"), "0\n");
    }
}
