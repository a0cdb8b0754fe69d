//! Containers: CreateContainer, StartContainer, StopContainer, RemoveContainer, ExecSync.
//!
//! Create: reserve the name and write a `creating` record; the rootfs snapshot; the spec
//! and bundle; the shim, which runs `berth-oci create`; the record becomes `created`.
//! Start asks the shim to start it and watches for its exit, which the shim reports with
//! its status (and whether the cgroup saw an OOM kill).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_api::runtime::v1::{ContainerConfig, NamespaceMode};
use berth_shim::async_client::Client;
use berth_shim::client::Event as ShimEvent;
use berth_shim::protocol::ExitStatus;
use tracing::{info, warn};

use crate::cleanup::Cleanup;
use crate::pod::{cgroup_path, modes, write_bundle};
use crate::records::{ContainerRecord, ContainerState, Exit, PodRecord, RECORD_VERSION};
use crate::shims::Launch;
use crate::spec::{self, ContainerSpecInput, Namespace, Namespaces};
use crate::{Error, EventKind, Result, Sandboxes, files, now_ns};

/// How long a container gets to die after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// ExecSync output kept per call (stdout and stderr together), below the kubelet's
/// 16 MiB message limit; the rest is dropped.
pub const EXEC_OUTPUT_CAP: usize = 15 << 20;

/// An ExecSync request.
#[derive(Debug, Clone)]
pub struct ExecSync {
    pub container_id: String,
    pub cmd: Vec<String>,
    /// None: no timeout.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl Sandboxes {
    /// CreateContainer in pod `pod_id`. Returns the new container's id.
    pub async fn create_container(
        self: &Arc<Self>,
        pod_id: &str,
        config: ContainerConfig,
    ) -> Result<String> {
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| Error::InvalidArgument("container config has no metadata".into()))?;
        if meta.name.is_empty() {
            return Err(Error::InvalidArgument(
                "container metadata.name is empty".into(),
            ));
        }
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        if image_name.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "container {:?} names no image",
                meta.name
            )));
        }
        validate_log_path(&config.log_path)?;
        let (_pod_guard, pod) = self.lock_pod(pod_id).await?;
        if !pod.state.can_create_container() {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let image = self
            .images
            .status(&image_name)?
            .ok_or_else(|| Error::NotFound {
                kind: "image",
                id: image_name.clone(),
            })?;

        let id = crate::new_id()?;
        let mut record = ContainerRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            pod_id: pod.id.clone(),
            pod_name_key: pod.name_key(),
            image_name,
            image_id: image.id.to_string(),
            image_ref: image
                .repo_digests
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.to_string()),
            state: ContainerState::Creating,
            created_at: now_ns(),
            started_at: 0,
            pid: 0,
            exit: None,
            log_path: log_path(&pod, &config),
            stop_signal: stop_signal(&config, image.config.stop_signal.as_deref())?,
            user: None,
            config,
        };
        let key = record.name_key();
        if let Err(existing) = self.records.reserve_name(&key, &id) {
            return Err(Error::AlreadyExists {
                kind: "container",
                id: format!("{existing} (name {key})"),
            });
        }
        let _guard = self.locks.lock(&id).await;
        let mut cleanup = Cleanup::new();
        match self
            .create_steps(&pod, &image, &mut record, &mut cleanup)
            .await
        {
            Ok(()) => {
                cleanup.dismiss();
                self.emit(&id, &pod.id, EventKind::Created);
                info!(container_id = %id, pod_id = %pod.id, name = %key, "container created");
                Ok(id)
            }
            Err(e) => {
                warn!(container_id = %id, name = %key, error = %e, "create container failed; undoing");
                cleanup.run(&id).await;
                let _ = self.records.remove_container(&id);
                self.records.release_name(&key, &id);
                self.locks.forget(&id);
                Err(e)
            }
        }
    }

    async fn create_steps(
        self: &Arc<Self>,
        pod: &PodRecord,
        image: &berth_image::ImageRecord,
        record: &mut ContainerRecord,
        cleanup: &mut Cleanup,
    ) -> Result<()> {
        let id = record.id.clone();
        self.records.put_container(record)?;

        // The rootfs.
        let chain_ids: Vec<_> = image.layers.iter().map(|l| l.chain_id.clone()).collect();
        let rootfs = {
            let (store, snaps, id) = (self.images.clone(), self.snapshots.clone(), id.clone());
            tokio::task::spawn_blocking(move || snaps.prepare(&store, &id, &chain_ids, false))
                .await
                .map_err(|e| Error::Internal(format!("snapshot task: {e}")))??
        };
        {
            let (this, id) = (self.clone(), id.clone());
            cleanup.push("snapshot", async move { this.remove_snapshot(&id).await });
        }

        // The spec and bundle.
        let pod_files = files::existing(&self.pod_dir(&pod.id));
        let input = ContainerSpecInput {
            sandbox_id: &pod.id,
            pod: &pod.config,
            config: &record.config,
            image: &image.config,
            rootfs: &rootfs,
            namespaces: self.container_namespaces(pod, &record.config)?,
            cgroups_path: cgroup_path(&pod.cgroup_parent, &id),
            pod_files: &pod_files,
        };
        let spec = spec::container_spec(&input)?;
        record.user = spec.process().as_ref().map(|p| {
            let u = p.user();
            crate::records::ProcessUser {
                uid: u.uid(),
                gid: u.gid(),
                groups: u.additional_gids().clone().unwrap_or_default(),
            }
        });
        let bundle = self.bundle_dir(&id);
        {
            let bundle = bundle.clone();
            cleanup.push("bundle", async move { crate::remove_dir(&bundle) });
        }
        write_bundle(&bundle, &spec)?;

        // The shim, which creates the container.
        let log_path = (!record.log_path.is_empty()).then(|| PathBuf::from(&record.log_path));
        if let Some(dir) = log_path.as_ref().and_then(|p| p.parent()) {
            std::fs::create_dir_all(dir).map_err(Error::io("create log dir", dir))?;
        }
        {
            // Pushed first: a shim that fails to start leaves its state dir.
            let this = self.clone();
            let id = id.clone();
            cleanup.push("shim", async move { this.delete_shim(&id).await });
        }
        let started = self
            .start_shim(Launch {
                id: &id,
                bundle: &bundle,
                log_path: log_path.as_deref(),
                stdin: record.config.stdin,
            })
            .await?;
        record.pid = started.pid;
        record.state = ContainerState::Created;
        self.records.put_container(record)
    }

    /// The namespaces a container of `pod` gets: the pod's network, IPC and UTS, and
    /// the PID namespace its own security context asks for.
    fn container_namespaces(
        &self,
        pod: &PodRecord,
        config: &ContainerConfig,
    ) -> Result<Namespaces> {
        let pm = modes(&pod.config);
        let infra =
            |ns: &str| Namespace::Join(PathBuf::from(format!("/proc/{}/ns/{ns}", pod.infra_pid)));
        let opts = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        let pid = match opts.pid() {
            NamespaceMode::Pod => infra("pid"),
            NamespaceMode::Container => Namespace::New,
            NamespaceMode::Node => Namespace::Host,
            NamespaceMode::Target => {
                let target = self
                    .records
                    .find_container(&opts.target_id)
                    .filter(|c| c.pod_id == pod.id && c.state == ContainerState::Running)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "pid namespace target {:?} is not a running container of pod {}",
                            opts.target_id, pod.id
                        ))
                    })?;
                Namespace::Join(PathBuf::from(format!("/proc/{}/ns/pid", target.pid)))
            }
        };
        let host_network = pm.network == NamespaceMode::Node;
        Ok(Namespaces {
            network: match &pod.netns {
                Some(p) if !host_network => Namespace::Join(p.clone()),
                _ => Namespace::Host,
            },
            ipc: if pm.ipc == NamespaceMode::Node {
                Namespace::Host
            } else {
                infra("ipc")
            },
            uts: if host_network {
                Namespace::Host
            } else {
                infra("uts")
            },
            pid,
        })
    }

    /// StartContainer.
    pub async fn start_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let (_guard, c) = self.lock_container(id).await?;
        if !c.state.can_start() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is {:?}, not created",
                c.id, c.state
            )));
        }
        // Taken before the start: a short-lived container may exit before the shim answers.
        let started_at = now_ns();
        self.shim(&c.id).await?.start().await?;
        self.records.update_container(&c.id, |r| {
            if r.state == ContainerState::Created {
                r.state = ContainerState::Running;
            }
            r.started_at = started_at;
        })?;
        self.emit(&c.id, &c.pod_id, EventKind::Started);
        self.watch_container(&c.id);
        Ok(())
    }

    /// Records the container's exit when it happens.
    pub(crate) fn watch_container(self: &Arc<Self>, id: &str) {
        let this = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            if let Some(exit) = this.wait_exit(&id, Duration::MAX).await {
                if let Err(e) = this.mark_exited(&id, &exit) {
                    warn!(container_id = %id, error = %e, "cannot record exit");
                }
            }
        });
    }

    /// Moves a created or running container to exited with `exit`; idempotent.
    pub(crate) fn mark_exited(&self, id: &str, exit: &ExitStatus) -> Result<()> {
        let mut changed = false;
        let rec = self.records.update_container(id, |c| {
            if matches!(c.state, ContainerState::Created | ContainerState::Running) {
                c.state = ContainerState::Exited;
                c.exit = Some(to_exit(exit));
                changed = true;
            }
        })?;
        if let (true, Some(c)) = (changed, rec) {
            info!(container_id = %id, exit_code = exit.exit_code, oom = exit.oom_killed, "container exited");
            self.emit(id, &c.pod_id, EventKind::Stopped);
        }
        Ok(())
    }

    /// StopContainer: the stop signal, then SIGKILL after `timeout` seconds. A container
    /// that is not running, or unknown, is success.
    pub async fn stop_container(self: &Arc<Self>, id: &str, timeout: i64) -> Result<()> {
        let Some(c) = self.records.find_container(id) else {
            return Ok(());
        };
        self.stop_container_by_id(&c.id, timeout).await
    }

    pub(crate) async fn stop_container_by_id(
        self: &Arc<Self>,
        id: &str,
        timeout: i64,
    ) -> Result<()> {
        let _guard = self.locks.lock(id).await;
        let Some(c) = self.records.container(id) else {
            return Ok(());
        };
        if c.state != ContainerState::Running {
            return Ok(());
        }
        if timeout > 0 {
            self.signal(id, c.stop_signal).await?;
            if let Some(exit) = self
                .wait_exit(id, Duration::from_secs(timeout as u64))
                .await
            {
                return self.mark_exited(id, &exit);
            }
        }
        self.signal(id, libc::SIGKILL).await?;
        match self.wait_exit(id, KILL_WAIT).await {
            Some(exit) => self.mark_exited(id, &exit),
            None => Err(Error::Internal(format!(
                "container {id} did not die within {KILL_WAIT:?} of SIGKILL"
            ))),
        }
    }

    /// RemoveContainer: kills it if running, then removes everything it had. An unknown
    /// id is success.
    pub async fn remove_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let Some(c) = self.records.find_container(id) else {
            return Ok(());
        };
        self.remove_container_by_id(&c.id).await
    }

    pub(crate) async fn remove_container_by_id(self: &Arc<Self>, id: &str) -> Result<()> {
        self.stop_container_by_id(id, 0).await?;
        let _guard = self.locks.lock(id).await;
        let Some(c) = self.records.container(id) else {
            return Ok(());
        };
        self.delete_shim(id).await?;
        self.remove_snapshot(id).await?;
        crate::remove_dir(&self.bundle_dir(id))?;
        self.records.remove_container(id)?;
        self.locks.forget(id);
        self.stats.forget(id);
        self.emit(id, &c.pod_id, EventKind::Deleted);
        info!(container_id = %id, "container removed");
        Ok(())
    }

    /// ExecSync: runs `cmd` in the container, collects its output (capped), and kills it
    /// when the timeout passes (DeadlineExceeded, which the kubelet reads as a probe
    /// timeout).
    pub async fn exec_sync(self: &Arc<Self>, req: ExecSync) -> Result<ExecOutput> {
        let c = self.running(&req.container_id)?;
        if req.cmd.is_empty() {
            return Err(Error::InvalidArgument("exec command is empty".into()));
        }
        let process = self.exec_process(&c.id, &req.cmd, false)?;
        let exec_id = crate::new_id()?[..16].to_string();
        let client = self.shim(&c.id).await?;
        let (_pid, session) = client.exec(&exec_id, process, false, false).await?;
        let collect = collect_capped(session);
        let result = match req.timeout {
            Some(t) => tokio::time::timeout(t, collect).await,
            None => Ok(collect.await),
        };
        match result {
            Ok(out) => out,
            Err(_) => {
                if let Ok(mut c2) = self.shim(&c.id).await {
                    let _ = c2.kill_exec(&exec_id, libc::SIGKILL).await;
                }
                Err(Error::DeadlineExceeded(format!(
                    "command {:?} in container {} timed out after {:?}",
                    req.cmd.join(" "),
                    c.id,
                    req.timeout.unwrap_or_default()
                )))
            }
        }
    }

    /// A running container, or the right error.
    pub(crate) fn running(&self, id: &str) -> Result<ContainerRecord> {
        let c = self.container_record(id)?;
        if !c.state.can_exec() {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        Ok(c)
    }

    /// The container's own process (from its bundle) with `cmd` as args.
    pub fn exec_process(&self, id: &str, cmd: &[String], tty: bool) -> Result<serde_json::Value> {
        let path = self.bundle_dir(id).join("config.json");
        let bytes = std::fs::read(&path).map_err(Error::io("read", &path))?;
        let spec: oci_spec::runtime::Spec = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        let process = spec::exec_process(&spec, cmd, tty)?;
        serde_json::to_value(process).map_err(|e| Error::Internal(format!("encode process: {e}")))
    }

    /// A connection to the shim of a running container (for exec, attach, streaming).
    pub async fn shim_of(&self, id: &str) -> Result<(ContainerRecord, Client)> {
        let c = self.running(id)?;
        let client = self.shim(&c.id).await?;
        Ok((c, client))
    }

    /// ReopenContainerLog.
    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        let (_, mut client) = self.shim_of(id).await?;
        Ok(client.reopen_log().await?)
    }
}

async fn collect_capped(mut session: berth_shim::async_client::Session) -> Result<ExecOutput> {
    let mut out = ExecOutput::default();
    loop {
        match session.next_event().await? {
            Some(ShimEvent::Stdout(d)) => keep(&mut out.stdout, out.stderr.len(), &d),
            Some(ShimEvent::Stderr(d)) => keep(&mut out.stderr, out.stdout.len(), &d),
            Some(ShimEvent::Exit(s)) => {
                out.exit_code = s.exit_code;
                return Ok(out);
            }
            Some(ShimEvent::Response(_)) => {}
            None => return Err(Error::Internal("shim closed the exec session".into())),
        }
    }
}

fn keep(buf: &mut Vec<u8>, other: usize, data: &[u8]) {
    let room = EXEC_OUTPUT_CAP.saturating_sub(buf.len() + other);
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

fn to_exit(e: &ExitStatus) -> Exit {
    let finished_at = humantime::parse_rfc3339_weak(&e.finished_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_else(now_ns);
    let (reason, message) = if e.oom_killed {
        (
            "OOMKilled",
            "the container's cgroup ran out of memory".to_string(),
        )
    } else if crate::shims::is_lost(e) {
        (
            "Unknown",
            "the container's exit status was lost".to_string(),
        )
    } else if e.exit_code == 0 {
        ("Completed", String::new())
    } else {
        ("Error", String::new())
    };
    Exit {
        code: e.exit_code,
        finished_at,
        reason: reason.to_string(),
        message,
    }
}

/// The container's log path must stay inside the pod's log directory: relative, with no
/// `..` component.
fn validate_log_path(path: &str) -> Result<()> {
    let p = std::path::Path::new(path);
    let escapes = p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if escapes {
        return Err(Error::InvalidArgument(format!(
            "container log_path {path:?} must be relative to the pod's log directory, without '..'"
        )));
    }
    Ok(())
}

/// The absolute CRI log path: the pod's log directory joined with the container's.
fn log_path(pod: &PodRecord, config: &ContainerConfig) -> String {
    if pod.config.log_directory.is_empty() || config.log_path.is_empty() {
        return String::new();
    }
    PathBuf::from(&pod.config.log_directory)
        .join(&config.log_path)
        .to_string_lossy()
        .into_owned()
}

/// The signal StopContainer sends first: the CRI's, else the image's, else SIGTERM.
fn stop_signal(config: &ContainerConfig, image: Option<&str>) -> Result<i32> {
    use berth_api::runtime::v1::Signal;
    let from_cri = config.stop_signal();
    let name = if from_cri != Signal::RuntimeDefault {
        from_cri.as_str_name().to_string()
    } else if let Some(s) = image {
        s.to_string()
    } else {
        return Ok(libc::SIGTERM);
    };
    parse_signal(&name)
        .ok_or_else(|| Error::InvalidArgument(format!("unknown stop signal {name:?}")))
}

/// `SIGTERM`, `TERM` or `15` (berth-oci's own parser, as `kill` reads it).
pub(crate) fn parse_signal(s: &str) -> Option<i32> {
    berth_executor::ops::kill::parse_signal(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_stay_in_the_pod_log_directory() {
        assert!(validate_log_path("web/0.log").is_ok());
        assert!(validate_log_path("").is_ok());
        assert!(validate_log_path("../../etc/cron.d/x").is_err());
        assert!(validate_log_path("/etc/passwd").is_err());
        assert!(validate_log_path("a/../../b").is_err());
    }

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("quit"), Some(3));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("SIGNOPE"), None);
    }

    #[test]
    fn exits_get_a_reason() {
        let e = |code, oom: bool| ExitStatus {
            version: 1,
            pid: 5,
            exit_code: code,
            signal: None,
            oom_killed: oom,
            finished_at: "2026-11-25T03:34:22.780893221Z".into(),
        };
        assert_eq!(to_exit(&e(0, false)).reason, "Completed");
        assert_eq!(to_exit(&e(1, false)).reason, "Error");
        assert_eq!(to_exit(&e(137, true)).reason, "OOMKilled");
        assert!(to_exit(&e(0, false)).finished_at > 1_700_000_000_000_000_000);
    }

    #[test]
    fn exec_output_is_capped_across_both_streams() {
        let mut out = vec![0u8; EXEC_OUTPUT_CAP - 10];
        let mut err = Vec::new();
        keep(&mut err, out.len(), &[1u8; 100]);
        assert_eq!(err.len(), 10);
        keep(&mut out, err.len(), &[1u8; 100]);
        assert_eq!(out.len(), EXEC_OUTPUT_CAP - 10);
    }
}
