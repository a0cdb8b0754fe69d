//! `update`: change a container's resource limits.

use oci_spec::runtime::LinuxResources;

use super::Runtime;
use crate::error::Result;
use crate::state::Container;

/// Applies `resources` to the container's cgroup and records them. Device rules absent from
/// `resources` are left as they were (berthd's UpdateContainerResources sends none).
pub fn update(rt: &Runtime, id: &str, resources: &LinuxResources) -> Result<()> {
    let mut c = Container::load(&rt.root, id)?;
    c.cgroup()?.apply(resources)?;
    if let Some(linux) = c.record.spec.linux_mut() {
        let mut kept = resources.clone();
        if kept.devices().is_none() {
            kept.set_devices(linux.resources().as_ref().and_then(|r| r.devices().clone()));
        }
        linux.set_resources(Some(kept));
    }
    c.save()
}
