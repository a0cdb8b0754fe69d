//! `stopp`: stop pods (StopPodSandbox).

use std::time::Duration;

use berth_api::runtime::v1::StopPodSandboxRequest;

use crate::client::Ctx;
use crate::commands::resolve_pods;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod ids (or unique prefixes)
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    for id in resolve_pods(ctx, &args.ids).await? {
        stop_pod(ctx, &id).await?;
        println!("Stopped sandbox {id}");
    }
    Ok(())
}

pub async fn stop_pod(ctx: &mut Ctx, id: &str) -> Result<(), Error> {
    let mut rt = ctx.runtime().await?;
    let limit = ctx.cfg.timeout.max(Duration::from_secs(60));
    ctx.call_within(
        "StopPodSandbox",
        Some(limit),
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        }),
    )
    .await?;
    Ok(())
}
