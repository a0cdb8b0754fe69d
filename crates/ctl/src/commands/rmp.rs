//! `rmp`: remove pods (RemovePodSandbox); `-f` stops ready ones first.

use std::time::Duration;

use berth_api::runtime::v1::{
    ListPodSandboxRequest, PodSandboxState, PodSandboxStatusRequest, RemovePodSandboxRequest,
};

use crate::client::Ctx;
use crate::commands::{resolve_pods, stopp::stop_pod};
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod ids (or unique prefixes)
    ids: Vec<String>,
    /// Stop ready pods first
    #[arg(short, long)]
    force: bool,
    /// Remove all pods
    #[arg(short, long)]
    all: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let ids = if args.all {
        let mut rt = ctx.runtime().await?;
        ctx.call(
            "ListPodSandbox",
            rt.list_pod_sandbox(ListPodSandboxRequest::default()),
        )
        .await?
        .items
        .into_iter()
        .map(|p| p.id)
        .collect()
    } else if args.ids.is_empty() {
        return Err(Error::Usage("rmp: give pod ids or --all".into()));
    } else {
        resolve_pods(ctx, &args.ids).await?
    };
    for id in ids {
        let mut rt = ctx.runtime().await?;
        let st = ctx
            .call(
                "PodSandboxStatus",
                rt.pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id.clone(),
                    verbose: false,
                }),
            )
            .await?;
        let ready = st
            .status
            .is_some_and(|s| s.state == PodSandboxState::SandboxReady as i32);
        if ready {
            if !args.force {
                return Err(Error::Usage(format!(
                    "pod {id} is ready: stop it first or use rmp -f"
                )));
            }
            stop_pod(ctx, &id).await?;
        }
        let limit = ctx.cfg.timeout.max(Duration::from_secs(60));
        ctx.call_within(
            "RemovePodSandbox",
            Some(limit),
            rt.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            }),
        )
        .await?;
        println!("Removed sandbox {id}");
    }
    Ok(())
}
