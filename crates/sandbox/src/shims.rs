//! berthd's side of berth-shim: starting one per container (and per pod infra process),
//! asking it to start, signal, wait and delete, and coping when it is gone.

use std::path::Path;
use std::time::Duration;

use berth_shim::async_client::Client;
use berth_shim::client::{ShimOptions, Started};
use berth_shim::protocol::ExitStatus;
use tracing::{debug, warn};

use crate::{Error, Result, Sandboxes};

/// What starting a shim needs beyond the ids.
pub struct Launch<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub log_path: Option<&'a Path>,
    pub stdin: bool,
}

impl Sandboxes {
    /// Starts the shim of `id`, which creates the container (not started yet).
    pub(crate) async fn start_shim(&self, l: Launch<'_>) -> Result<Started> {
        let o = ShimOptions {
            binary: self.opts.shim_binary.clone(),
            id: l.id.to_string(),
            bundle: l.bundle.to_path_buf(),
            state_dir: self.shim_dir(l.id),
            log_path: l.log_path.map(Path::to_path_buf),
            runtime: Some(self.opts.runtime_binary.clone()),
            runtime_root: Some(self.runtime_root()),
            stdin: l.stdin,
            extra_args: Vec::new(),
        };
        tokio::task::spawn_blocking(move || berth_shim::client::start_shim(&o))
            .await
            .map_err(|e| Error::Internal(format!("shim start task: {e}")))?
            .map_err(Error::from)
    }

    pub(crate) async fn shim(&self, id: &str) -> Result<Client> {
        Ok(Client::connect(&self.shim_dir(id)).await?)
    }

    /// Sends `signal` to the container's init; a shim that is gone is not an error (the
    /// container is gone with it, or never ran).
    pub(crate) async fn signal(&self, id: &str, signal: i32) -> Result<()> {
        match self.shim(id).await {
            Ok(mut c) => match c.kill(signal, false).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    debug!(id, signal, error = %e, "signal not delivered");
                    Ok(())
                }
            },
            Err(_) => Ok(()),
        }
    }

    /// Waits up to `timeout` for the container to exit; None when it is still running.
    /// A shim that is gone answers with its recorded exit, or an unknown one.
    pub(crate) async fn wait_exit(&self, id: &str, timeout: Duration) -> Option<ExitStatus> {
        let wait = async {
            match self.shim(id).await {
                Ok(mut c) => match c.wait(None).await {
                    Ok(exit) => exit,
                    Err(_) => self.lost_exit(id),
                },
                Err(_) => self.lost_exit(id),
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }

    /// The exit the shim recorded, or "unknown" (255) when there is none.
    pub(crate) fn lost_exit(&self, id: &str) -> ExitStatus {
        match berth_shim::client::recorded_exit(&self.shim_dir(id)) {
            Ok(Some(exit)) => exit,
            _ => ExitStatus {
                version: 1,
                pid: 0,
                exit_code: 255,
                signal: None,
                oom_killed: false,
                finished_at: String::new(),
            },
        }
    }

    /// Deletes the container (runtime delete --force) and ends its shim, then removes the
    /// shim's directory. Works when the shim is already gone: the runtime is then run
    /// directly. Idempotent.
    pub(crate) async fn delete_shim(&self, id: &str) -> Result<()> {
        let dir = self.shim_dir(id);
        let via_shim = match self.shim(id).await {
            Ok(mut c) => c.delete(true).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = via_shim {
            debug!(id, error = %e, "no shim to delete through; running the runtime directly");
            let out = tokio::process::Command::new(&self.opts.runtime_binary)
                .arg("--root")
                .arg(self.runtime_root())
                .args(["delete", "--force", id])
                .output()
                .await
                .map_err(Error::io("run", &self.opts.runtime_binary))?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success()
                && !stderr.contains("does not exist")
                && !stderr.contains("not found")
            {
                warn!(id, stderr = %stderr.trim(), "runtime delete failed");
            }
        }
        // The shim answers before it has finished: it may still be recording the
        // container's exit in its directory while this removes it. A file appearing
        // mid-removal makes it fail (not empty): try again. Once the directory is gone a
        // late write fails in the shim, harmlessly.
        let mut tries = 0;
        loop {
            match crate::remove_dir(&dir) {
                Ok(()) => return Ok(()),
                Err(_) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether `e` is [`Sandboxes::lost_exit`]'s stand-in for an exit nobody recorded (a
/// real exit always has the pid and the time).
pub(crate) fn is_lost(e: &ExitStatus) -> bool {
    e.pid == 0 && e.finished_at.is_empty()
}
