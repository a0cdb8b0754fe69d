//! `ps`: the processes in a container.

use super::Runtime;
use crate::error::Result;
use crate::state::Container;

pub fn pids(rt: &Runtime, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(&rt.root, id)?;
    let mut pids = c.cgroup()?.procs()?;
    pids.sort_unstable();
    Ok(pids)
}
