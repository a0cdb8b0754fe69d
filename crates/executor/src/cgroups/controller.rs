//! The small trait every controller implements, v1 and v2 alike.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::Result;

/// One cgroup controller: which part of `linux.resources` it owns, and how to write it into the
/// cgroup directory `dir` (v1: the controller's own hierarchy; v2: the unified directory).
pub(crate) trait Controller {
    /// v1: the hierarchy's controller name; v2: the name to enable in cgroup.subtree_control
    /// (empty for files the cgroup core owns, such as cgroup.freeze).
    const NAME: &'static str;
    /// The OCI field this controller serves, for error messages.
    const FIELD: &'static str;
    /// Whether `r` asks anything of this controller.
    fn needed(r: &LinuxResources) -> bool;
    /// Writes the values of `r` into `dir`.
    fn apply(dir: &Path, r: &LinuxResources) -> Result<()>;
}

/// Test helpers: a fixture directory of plain files standing in for a cgroup directory.
#[cfg(test)]
pub(crate) mod fixture {
    use std::path::Path;

    use oci_spec::runtime::LinuxResources;

    pub fn dir(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        d
    }

    pub fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (f, v) in files {
            std::fs::write(d.path().join(f), v).unwrap();
        }
        d
    }

    pub fn read(d: &Path, f: &str) -> String {
        std::fs::read_to_string(d.join(f)).unwrap()
    }

    pub fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }
}
