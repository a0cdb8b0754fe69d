//! v2 `unified`: each key is a file of the cgroup directory and gets its value as is. The key
//! must be a plain file name ("memory.high"), never a path.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Unified;

impl Controller for Unified {
    const NAME: &'static str = "";
    const FIELD: &'static str = "linux.resources.unified";

    fn needed(r: &LinuxResources) -> bool {
        r.unified().as_ref().is_some_and(|u| !u.is_empty())
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        let Some(u) = r.unified() else { return Ok(()) };
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, _) in &keys {
            if k.is_empty() || k.contains('/') || k.contains('\0') || *k == "." || *k == ".." {
                return Err(CgroupError::invalid(
                    format!("linux.resources.unified.{k}"),
                    "key must be a file name",
                ));
            }
        }
        for (k, v) in keys {
            if !fs::exists(dir, k) {
                return Err(CgroupError::unsupported(
                    format!("linux.resources.unified.{k}"),
                    "no such file (controller not enabled?)",
                ));
            }
            fs::write(dir, k, v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn writes_keys_as_is() {
        let d = dir(&["memory.high", "pids.max"]);
        let r = resources(r#"{"unified":{"memory.high":"1048576","pids.max":"max"}}"#);
        Unified::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "memory.high"), "1048576\n");
        assert_eq!(read(d.path(), "pids.max"), "max\n");
    }

    #[test]
    fn paths_and_unknown_keys_are_rejected() {
        let d = dir(&["memory.high"]);
        for k in ["../x", "a/b", ""] {
            let r = resources(&format!(r#"{{"unified":{{"{k}":"1"}}}}"#));
            let e = Unified::apply(d.path(), &r).unwrap_err();
            assert!(e.to_string().starts_with("linux.resources.unified."), "{e}");
        }
        let r = resources(r#"{"unified":{"memory.nope":"1"}}"#);
        assert!(Unified::apply(d.path(), &r).is_err());
    }
}
