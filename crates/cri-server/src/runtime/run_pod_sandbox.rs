//! RunPodSandbox: creates the pod: infra process, namespaces, CNI network. Ready on success.

use berth_api::runtime::v1::{
    ImageSpec, PullImageRequest, RunPodSandboxRequest, RunPodSandboxResponse,
};

use super::RuntimeService;
use crate::error::{Error, Result};

impl RuntimeService {
    pub async fn run_pod_sandbox(
        &self,
        request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse> {
        let config = request
            .config
            .ok_or_else(|| Error::InvalidArgument("RunPodSandbox without a config".into()))?;
        self.ensure_pause_image().await?;
        let pod_sandbox_id = self
            .sandboxes
            .run_pod(config, request.runtime_handler)
            .await?;
        Ok(RunPodSandboxResponse { pod_sandbox_id })
    }

    /// Pulls the configured pause image if the store lacks it (containerd does the same:
    /// the kubelet no longer pulls the sandbox image), and pins it.
    async fn ensure_pause_image(&self) -> Result<()> {
        let name = &self.config.pause_image;
        if name.is_empty() || self.sandboxes.images().status(name)?.is_some() {
            return Ok(());
        }
        self.images
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?;
        // The infra image is in use by every pod: never removed (CRI `pinned`).
        self.sandboxes.images().set_pinned(name, true)?;
        Ok(())
    }
}
