//! Restart recovery: what berthd does with its records before it serves again.
//!
//! Assumptions:
//! - A record is written before any resource of its object is made (`pending` pods,
//!   `creating` containers) and removed only after all of them are gone, so every
//!   resource berthd made belongs to a record, except in the window between creating a
//!   resource and persisting its path; those resources live at paths derived from the
//!   id (netns pin, shim dir, bundle, snapshot, pod dir), which the sweep below finds.
//! - Shims outlive berthd. A live shim answers `state` at once; an exit that happened
//!   while berthd was down is in the shim's exit.json (`berth_shim::client::find`).
//! - Teardown (stop and remove of pods and containers) is idempotent and tolerates any
//!   partial state, so rolling back a half-made object is removing it.
//!
//! So: half-made objects are rolled back; containers whose shim lives are watched again;
//! exits that happened meanwhile are recorded with their real status; a shim that died
//! without recording an exit leaves its container "exited, Unknown" after the runtime
//! has been told to delete it; objects on disk that no record names are removed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use berth_shim::async_client::Client;
use berth_shim::protocol::Status;
use tracing::{info, warn};

use crate::records::{ContainerState, PodState};
use crate::{Result, Sandboxes, files, netns};

/// What recovery found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub pods: usize,
    pub containers: usize,
    pub rolled_back: usize,
    pub exited_meanwhile: usize,
    pub orphans_removed: usize,
}

/// Recovers every pod and container; see the module docs.
pub async fn recover(sb: &Arc<Sandboxes>) -> Result<Report> {
    let mut report = Report::default();
    for c in sb.records.containers() {
        match c.state {
            ContainerState::Creating => {
                info!(container_id = %c.id, "rolling back a container whose create was cut short");
                sb.remove_container_by_id(&c.id).await?;
                report.rolled_back += 1;
            }
            ContainerState::Created | ContainerState::Running => {
                let live = live_status(&sb.shim_dir(&c.id)).await;
                match live {
                    Some(Status::Running) => sb.watch_container(&c.id),
                    Some(Status::Created) => {}
                    Some(Status::Stopped) | None => {
                        if live.is_none() {
                            // No shim: make sure nothing of the container still runs.
                            let _ = sb.delete_shim(&c.id).await;
                        }
                        let exit = sb.lost_exit(&c.id);
                        sb.mark_exited(&c.id, &exit)?;
                        report.exited_meanwhile += 1;
                    }
                }
                report.containers += 1;
            }
            ContainerState::Exited => report.containers += 1,
        }
    }
    for p in sb.records.pods() {
        match p.state {
            PodState::Pending => {
                info!(pod_id = %p.id, "rolling back a pod whose run was cut short");
                sb.remove_pod_locked(&p.id).await?;
                report.rolled_back += 1;
            }
            PodState::Ready => {
                if live_status(&sb.shim_dir(&p.id)).await == Some(Status::Running) {
                    sb.watch_infra(&p.id);
                } else {
                    sb.records
                        .update_pod(&p.id, |r| r.state = PodState::NotReady)?;
                }
                report.pods += 1;
            }
            PodState::NotReady => report.pods += 1,
        }
    }
    report.orphans_removed = sweep(sb).await;
    info!(?report, "recovered");
    Ok(report)
}

/// The status a live shim reports, or None when no shim answers.
async fn live_status(dir: &Path) -> Option<Status> {
    let mut client = Client::connect(dir).await.ok()?;
    client.state().await.ok().map(|s| s.status)
}

/// Removes what no record names: shims, bundles, snapshots, pod dirs, netns pins.
async fn sweep(sb: &Arc<Sandboxes>) -> usize {
    let pods: HashSet<String> = sb.records.pods().into_iter().map(|p| p.id).collect();
    let containers: HashSet<String> = sb.records.containers().into_iter().map(|c| c.id).collect();
    let known = |id: &str| pods.contains(id) || containers.contains(id);
    let mut removed = 0;
    for id in names(&sb.opts.state.join("shims")) {
        if !known(&id) {
            warn!(id = %id, "removing an orphaned shim");
            if sb.delete_shim(&id).await.is_ok() {
                removed += 1;
            }
        }
    }
    for id in names(&sb.netns_dir()) {
        if !pods.contains(&id) {
            warn!(pod_id = %id, "removing an orphaned network namespace");
            let _ = sb.cni_del_cached(&id).await;
            if netns::remove(&sb.netns_dir().join(&id)).is_ok() {
                removed += 1;
            }
        }
    }
    for id in names(&sb.opts.state.join("pods")) {
        if !pods.contains(&id) && files::remove(&sb.pod_dir(&id)).is_ok() {
            removed += 1;
        }
    }
    for id in names(&sb.opts.state.join("containers")) {
        if !containers.contains(&id) && crate::remove_dir(&sb.bundle_dir(&id)).is_ok() {
            removed += 1;
        }
    }
    if let Ok(snaps) = sb.snapshots.list() {
        for s in snaps {
            if !known(&s.id) {
                warn!(snapshot = %s.id, "removing an orphaned snapshot");
                if sb.snapshots.remove(&s.id).is_ok() {
                    removed += 1;
                }
            }
        }
    }
    removed
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}
