//! `start`: start created containers (StartContainer); prints each id.

use berth_api::runtime::v1::StartContainerRequest;

use crate::client::Ctx;
use crate::commands::resolve_containers;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids (or unique prefixes)
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    for id in resolve_containers(ctx, &args.ids).await? {
        start_container(ctx, &id).await?;
        println!("{id}");
    }
    Ok(())
}

pub async fn start_container(ctx: &mut Ctx, id: &str) -> Result<(), Error> {
    let mut rt = ctx.runtime().await?;
    let limit = ctx.cfg.timeout.max(std::time::Duration::from_secs(30));
    ctx.call_within(
        "StartContainer",
        Some(limit),
        rt.start_container(StartContainerRequest {
            container_id: id.to_string(),
        }),
    )
    .await?;
    Ok(())
}
