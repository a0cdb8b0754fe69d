//! v2 hugetlb: hugetlb.<size>.max per page size.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroups::controller::Controller;
use crate::cgroups::v1::hugetlb::check_page_size;
use crate::cgroups::{CgroupError, Result, fs};

pub(crate) struct Hugetlb;

impl Controller for Hugetlb {
    const NAME: &'static str = "hugetlb";
    const FIELD: &'static str = "linux.resources.hugepageLimits";

    fn needed(r: &LinuxResources) -> bool {
        r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty())
    }

    fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
        for h in r.hugepage_limits().iter().flatten() {
            check_page_size(h.page_size())?;
            let file = format!("hugetlb.{}.max", h.page_size());
            if !fs::exists(dir, &file) {
                return Err(CgroupError::unsupported(
                    "linux.resources.hugepageLimits.pageSize",
                    format!(
                        "no {file} (hugetlb not enabled, or no {} pages)",
                        h.page_size()
                    ),
                ));
            }
            let v = if h.limit() < 0 {
                "max".to_string()
            } else {
                h.limit().to_string()
            };
            fs::write(dir, &file, &v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir, read, resources};

    #[test]
    fn writes_max_per_size() {
        let d = dir(&["hugetlb.2MB.max"]);
        let r = resources(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#);
        Hugetlb::apply(d.path(), &r).unwrap();
        assert_eq!(read(d.path(), "hugetlb.2MB.max"), "2097152\n");
    }
}
