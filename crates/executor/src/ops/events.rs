//! `events`: resource statistics and OOM notifications.

use std::time::Duration;

use super::Runtime;
use crate::error::Result;
use crate::state::{Container, Status};

pub fn stats(rt: &Runtime, id: &str) -> Result<serde_json::Value> {
    let c = Container::load(&rt.root, id)?;
    let stats = c.cgroup()?.stats()?;
    Ok(serde_json::json!({ "type": "stats", "id": id, "data": stats }))
}

/// Prints stats every `interval`, and an "oom" event whenever the OOM-kill count rises, until
/// the container stops.
pub fn watch(
    rt: &Runtime,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(serde_json::Value),
) -> Result<()> {
    let c = Container::load(&rt.root, id)?;
    let cg = c.cgroup()?;
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    loop {
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            emit(serde_json::json!({ "type": "oom", "id": id }));
            ooms = now;
        }
        if c.status() == Status::Stopped {
            return Ok(());
        }
        emit(stats(rt, id)?);
        std::thread::sleep(interval);
    }
}
