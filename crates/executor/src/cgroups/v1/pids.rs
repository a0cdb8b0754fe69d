//! v1 pids: pids.max. A limit of 0 means "not set", a negative one "max".

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{Result, fs};

pub(crate) struct Pids;

/// The value to write to pids.max (v1 and v2 alike), `None` when unset.
pub(crate) fn pids_max(r: &LinuxResources) -> Option<String> {
    let limit = r.pids().as_ref()?.limit();
    match limit {
        0 => None,
        l if l < 0 => Some("max".into()),
        l => Some(l.to_string()),
    }
}

impl Controller for Pids {
    const NAME: &'static str = "pids";
    const FIELD: &'static str = "linux.resources.pids";

    fn needed(r: &LinuxResources) -> bool {
        pids_max(r).is_some()
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        match pids_max(r) {
            Some(v) => fs::write(dir, "pids.max", &v),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn limit_and_unlimited() {
        let d = dir(&["pids.max"]);
        Pids::apply(d.path(), &resources(r#"{"pids":{"limit":32}}"#)).unwrap();
        Pids::apply(d.path(), &resources(r#"{"pids":{"limit":-1}}"#)).unwrap();
        assert_eq!(read(d.path(), "pids.max"), "32\nmax\n");
        assert!(!Pids::needed(&resources(r#"{"pids":{"limit":0}}"#)));
    }
}
