//! `create`: create a container in a pod (CreateContainer); prints the container id.

use berth_api::runtime::v1::{
    ContainerConfig, CreateContainerRequest, ImageSpec, ImageStatusRequest, PodSandboxConfig,
    PullImageRequest,
};

use crate::client::Ctx;
use crate::commands::{load_config, resolve_pods};
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod to create the container in
    pod_id: String,
    /// The container config (JSON or YAML)
    container_config: String,
    /// The pod's config (JSON or YAML), as given to runp
    pod_config: String,
    /// Pull the image first if the runtime does not have it
    #[arg(long)]
    with_pull: bool,
    /// Do not pull the image even with --with-pull (accepted for crictl compatibility)
    #[arg(long)]
    no_pull: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let pod_id = resolve_pods(ctx, std::slice::from_ref(&args.pod_id))
        .await?
        .remove(0);
    let container: ContainerConfig = load_config(&args.container_config)?;
    let pod: PodSandboxConfig = load_config(&args.pod_config)?;
    let id = create_container(
        ctx,
        &pod_id,
        container,
        pod,
        args.with_pull && !args.no_pull,
    )
    .await?;
    println!("{id}");
    Ok(())
}

pub async fn create_container(
    ctx: &mut Ctx,
    pod_id: &str,
    container: ContainerConfig,
    pod: PodSandboxConfig,
    pull: bool,
) -> Result<String, Error> {
    if pull {
        let image = container.image.clone().unwrap_or_default();
        let mut img = ctx.image().await?;
        let have = ctx
            .call(
                "ImageStatus",
                img.image_status(ImageStatusRequest {
                    image: Some(image.clone()),
                    verbose: false,
                }),
            )
            .await?;
        if have.image.is_none() {
            ctx.call_within(
                "PullImage",
                None,
                img.pull_image(PullImageRequest {
                    image: Some(ImageSpec {
                        image: image.image.clone(),
                        ..Default::default()
                    }),
                    auth: None,
                    sandbox_config: Some(pod.clone()),
                }),
            )
            .await?;
        }
    }
    let mut rt = ctx.runtime().await?;
    let limit = ctx.cfg.timeout.max(std::time::Duration::from_secs(30));
    let res = ctx
        .call_within(
            "CreateContainer",
            Some(limit),
            rt.create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.to_string(),
                config: Some(container),
                sandbox_config: Some(pod),
            }),
        )
        .await?;
    Ok(res.container_id)
}
