//! v2 pids: pids.max, same values as v1.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{Result, v1};

pub(crate) struct Pids;

impl Controller for Pids {
    const NAME: &'static str = "pids";
    const FIELD: &'static str = "linux.resources.pids";

    fn needed(r: &LinuxResources) -> bool {
        v1::pids::Pids::needed(r)
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        v1::pids::Pids::apply(dir, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn limit() {
        let d = dir(&["pids.max"]);
        Pids::apply(d.path(), &resources(r#"{"pids":{"limit":7}}"#)).unwrap();
        assert_eq!(read(d.path(), "pids.max"), "7\n");
    }
}
