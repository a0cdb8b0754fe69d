//! v1 hugetlb: hugetlb.<size>.limit_in_bytes per page size ("2MB", "1GB").

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Hugetlb;

/// Checks an OCI page size: digits followed by KB, MB or GB, as the kernel names its files.
pub(crate) fn check_page_size(size: &str) -> Result<()> {
    let digits = size
        .strip_suffix("KB")
        .or_else(|| size.strip_suffix("MB"))
        .or_else(|| size.strip_suffix("GB"));
    match digits {
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(CgroupError::invalid(
            "linux.resources.hugepageLimits.pageSize",
            format!("{size:?} is not of the form <n>KB, <n>MB or <n>GB"),
        )),
    }
}

impl Controller for Hugetlb {
    const NAME: &'static str = "hugetlb";
    const FIELD: &'static str = "linux.resources.hugepageLimits";

    fn needed(r: &LinuxResources) -> bool {
        r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        for h in r.hugepage_limits().iter().flatten() {
            check_page_size(h.page_size())?;
            let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
            if !fs::exists(dir, &file) {
                return Err(CgroupError::unsupported(
                    "linux.resources.hugepageLimits.pageSize",
                    format!("the host has no {} huge pages", h.page_size()),
                ));
            }
            fs::write(dir, &file, &h.limit().to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn writes_each_page_size() {
        let d = dir(&["hugetlb.2MB.limit_in_bytes", "hugetlb.1GB.limit_in_bytes"]);
        let r = resources(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304},{"pageSize":"1GB","limit":0}]}"#,
        );
        Hugetlb::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "hugetlb.2MB.limit_in_bytes"), "4194304\n");
        assert_eq!(read(d.path(), "hugetlb.1GB.limit_in_bytes"), "0\n");
    }

    #[test]
    fn bad_or_unknown_page_sizes() {
        let d = dir(&["hugetlb.2MB.limit_in_bytes"]);
        for bad in ["2M", "../x", "MB", "2 MB"] {
            let r = resources(&format!(
                r#"{{"hugepageLimits":[{{"pageSize":"{bad}","limit":1}}]}}"#
            ));
            let e = Hugetlb::apply(d.path(), &r).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("linux.resources.hugepageLimits.pageSize: "),
                "{e}"
            );
        }
        let r = resources(r#"{"hugepageLimits":[{"pageSize":"1GB","limit":1}]}"#);
        assert!(Hugetlb::apply(d.path(), &r).is_err());
    }
}
