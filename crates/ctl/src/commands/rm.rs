//! `rm`: remove containers (RemoveContainer); `-f` stops running ones first.

use berth_api::runtime::v1::{
    ContainerState, ContainerStatusRequest, ListContainersRequest, RemoveContainerRequest,
};

use crate::client::Ctx;
use crate::commands::{resolve_containers, stop::stop_container};
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids (or unique prefixes)
    ids: Vec<String>,
    /// Stop running containers first
    #[arg(short, long)]
    force: bool,
    /// Remove all containers
    #[arg(short, long)]
    all: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let ids = if args.all {
        let mut rt = ctx.runtime().await?;
        ctx.call(
            "ListContainers",
            rt.list_containers(ListContainersRequest::default()),
        )
        .await?
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect()
    } else if args.ids.is_empty() {
        return Err(Error::Usage("rm: give container ids or --all".into()));
    } else {
        resolve_containers(ctx, &args.ids).await?
    };
    for id in ids {
        let mut rt = ctx.runtime().await?;
        let st = ctx
            .call(
                "ContainerStatus",
                rt.container_status(ContainerStatusRequest {
                    container_id: id.clone(),
                    verbose: false,
                }),
            )
            .await?;
        let running = st
            .status
            .is_some_and(|s| s.state == ContainerState::ContainerRunning as i32);
        if running {
            if !args.force {
                return Err(Error::Usage(format!(
                    "container {id} is running: stop it first or use rm -f"
                )));
            }
            stop_container(ctx, &id, 0).await?;
        }
        let limit = ctx.cfg.timeout.max(std::time::Duration::from_secs(30));
        ctx.call_within(
            "RemoveContainer",
            Some(limit),
            rt.remove_container(RemoveContainerRequest {
                container_id: id.clone(),
            }),
        )
        .await?;
        println!("{id}");
    }
    Ok(())
}
