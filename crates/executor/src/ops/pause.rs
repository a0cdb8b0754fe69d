//! `pause` and `resume`: freeze and thaw every process of a container.

use super::Runtime;
use crate::error::Result;
use crate::state::Container;

pub fn pause(rt: &Runtime, id: &str) -> Result<()> {
    let c = Container::load(&rt.root, id)?;
    let status = c.status();
    if !status.can_pause() {
        return Err(c.bad_state(status, "pause"));
    }
    Ok(c.cgroup()?.freeze()?)
}

pub fn resume(rt: &Runtime, id: &str) -> Result<()> {
    let c = Container::load(&rt.root, id)?;
    let status = c.status();
    if !status.can_resume() {
        return Err(c.bad_state(status, "resume"));
    }
    Ok(c.cgroup()?.thaw()?)
}
