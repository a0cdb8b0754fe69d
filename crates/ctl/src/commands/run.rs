//! `run`: a pod and a container in it, started (runp + create + start); prints the
//! container id.

use berth_api::runtime::v1::{ContainerConfig, PodSandboxConfig};

use crate::client::Ctx;
use crate::commands::{create::create_container, load_config, runp::run_pod, start};
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container config (JSON or YAML)
    container_config: String,
    /// The pod config (JSON or YAML)
    pod_config: String,
    /// Runtime handler for the pod
    #[arg(long)]
    runtime: Option<String>,
    /// Pull the image first if the runtime does not have it
    #[arg(long)]
    with_pull: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let container: ContainerConfig = load_config(&args.container_config)?;
    let pod: PodSandboxConfig = load_config(&args.pod_config)?;
    let pod_id = run_pod(ctx, pod.clone(), args.runtime.unwrap_or_default()).await?;
    let id = create_container(ctx, &pod_id, container, pod, args.with_pull).await?;
    start::start_container(ctx, &id).await?;
    println!("{id}");
    Ok(())
}
