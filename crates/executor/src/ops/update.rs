//! `update`: change a container's resource limits.

use oci_spec::runtime::LinuxResources;

use super::Runtime;
use crate::error::Result;
use crate::state::Container;

pub fn update(rt: &Runtime, id: &str, resources: &LinuxResources) -> Result<()> {
    let mut c = Container::load(&rt.root, id)?;
    c.cgroup()?.apply(resources)?;
    if let Some(linux) = c.record.spec.linux_mut() {
        linux.set_resources(Some(resources.clone()));
    }
    c.save()
}
