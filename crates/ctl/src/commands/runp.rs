//! `runp`: run a pod from a PodSandboxConfig file (RunPodSandbox); prints the pod id.

use berth_api::runtime::v1::{PodSandboxConfig, RunPodSandboxRequest};

use crate::client::Ctx;
use crate::commands::load_config;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod config (JSON or YAML)
    pod_config: String,
    /// Runtime handler to use
    #[arg(long)]
    runtime: Option<String>,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let config: PodSandboxConfig = load_config(&args.pod_config)?;
    let id = run_pod(ctx, config, args.runtime.unwrap_or_default()).await?;
    println!("{id}");
    Ok(())
}

/// Runs the pod; network setup can take longer than a plain call, so the limit is raised.
pub async fn run_pod(
    ctx: &mut Ctx,
    config: PodSandboxConfig,
    runtime_handler: String,
) -> Result<String, Error> {
    let mut rt = ctx.runtime().await?;
    let limit = ctx.cfg.timeout.max(std::time::Duration::from_secs(60));
    let res = ctx
        .call_within(
            "RunPodSandbox",
            Some(limit),
            rt.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler,
            }),
        )
        .await?;
    Ok(res.pod_sandbox_id)
}
