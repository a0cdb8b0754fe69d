//! UpdateContainerResources: new cgroup limits for a created or running container.
//!
//! The CRI resources become OCI `LinuxResources` through the spec builder (the same
//! conversion CreateContainer uses), which `<runtime> update --resources -` writes into the
//! container's cgroup. Device rules are left out of the update (they did not change, and
//! rewriting them on v1 denies every device for a moment). Then the record keeps the new
//! resources (ContainerStatus reports them) and the bundle's config.json gets them too.
//!
//! UpdatePodSandboxResources comes after the kubelet has resized the pod's cgroup itself (the
//! CRI's contract): berth writes no cgroup then, it records the pod's new overhead and
//! resources in the pod's config, as containerd does.

use std::process::Stdio;
use std::sync::Arc;

use berth_api::runtime::v1::LinuxContainerResources;
use oci_spec::runtime::{LinuxResources, Spec};
use tokio::io::AsyncWriteExt;
use tracing::info;

use crate::records::ContainerState;
use crate::spec::resources::{linux_resources, swap_accounting};
use crate::{Error, Result, Sandboxes};

impl Sandboxes {
    /// UpdateContainerResources (full id or unique prefix).
    pub async fn update_container_resources(
        self: &Arc<Self>,
        id: &str,
        resources: LinuxContainerResources,
    ) -> Result<()> {
        let (_guard, c) = self.lock_container(id).await?;
        if !matches!(c.state, ContainerState::Created | ContainerState::Running) {
            return Err(Error::FailedPrecondition(format!(
                "container {} is {:?}: only a created or running container can be updated",
                c.id, c.state
            )));
        }
        let mut oci = linux_resources(Some(&resources), Vec::new(), swap_accounting())?;
        oci.set_devices(None);
        self.runtime_update(&c.id, &oci).await?;
        self.records.update_container(&c.id, |r| {
            r.config.linux.get_or_insert_default().resources = Some(resources.clone());
        })?;
        self.update_bundle_resources(&c.id, &oci)?;
        info!(
            container_id = %c.id,
            memory_limit = resources.memory_limit_in_bytes,
            cpu_quota = resources.cpu_quota,
            cpu_shares = resources.cpu_shares,
            "container resources updated"
        );
        Ok(())
    }

    /// UpdatePodSandboxResources (full id or unique prefix): validates the resources and
    /// records them; absent fields keep their value.
    pub async fn update_pod_resources(
        self: &Arc<Self>,
        id: &str,
        overhead: Option<LinuxContainerResources>,
        resources: Option<LinuxContainerResources>,
    ) -> Result<()> {
        let p = self.pod_record(id)?;
        for r in [&overhead, &resources].into_iter().flatten() {
            linux_resources(Some(r), Vec::new(), false)?;
        }
        let _guard = self.locks.lock(&p.id).await;
        let updated = self.records.update_pod(&p.id, |r| {
            let linux = r.config.linux.get_or_insert_default();
            if overhead.is_some() {
                linux.overhead = overhead.clone();
            }
            if resources.is_some() {
                linux.resources = resources.clone();
            }
        })?;
        if updated.is_none() {
            return Err(Error::NotFound {
                kind: "pod sandbox",
                id: id.to_string(),
            });
        }
        info!(pod_id = %p.id, "pod resources recorded");
        Ok(())
    }

    /// `<runtime> --root <state>/runtime update --resources - <id>`, the JSON on stdin.
    async fn runtime_update(&self, id: &str, r: &LinuxResources) -> Result<()> {
        let json = serde_json::to_vec(r)
            .map_err(|e| Error::Internal(format!("encode resources of container {id}: {e}")))?;
        let runtime = &self.opts.runtime_binary;
        let mut child = tokio::process::Command::new(runtime)
            .arg("--root")
            .arg(self.runtime_root())
            .args(["update", "--resources", "-", id])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(Error::io("run", runtime))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&json)
                .await
                .map_err(Error::io("write resources to", runtime))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(Error::io("run", runtime))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "update resources of container {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Writes `r` into the bundle's config.json, keeping the device rules it has.
    fn update_bundle_resources(&self, id: &str, r: &LinuxResources) -> Result<()> {
        let path = self.bundle_dir(id).join("config.json");
        let bytes = std::fs::read(&path).map_err(Error::io("read", &path))?;
        let mut spec: Spec = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        if let Some(linux) = spec.linux_mut() {
            let devices = linux.resources().as_ref().and_then(|o| o.devices().clone());
            let mut new = r.clone();
            new.set_devices(devices);
            linux.set_resources(Some(new));
        }
        crate::pod::write_bundle(&self.bundle_dir(id), &spec)
    }
}
