//! `stop`: stop running containers (StopContainer); prints each id.

use std::time::Duration;

use berth_api::runtime::v1::StopContainerRequest;

use crate::client::Ctx;
use crate::commands::resolve_containers;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids (or unique prefixes)
    #[arg(required = true)]
    ids: Vec<String>,
    /// Seconds to wait after the stop signal before killing
    #[arg(short, long, default_value_t = 0)]
    timeout: i64,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    for id in resolve_containers(ctx, &args.ids).await? {
        stop_container(ctx, &id, args.timeout).await?;
        println!("{id}");
    }
    Ok(())
}

pub async fn stop_container(ctx: &mut Ctx, id: &str, timeout: i64) -> Result<(), Error> {
    let mut rt = ctx.runtime().await?;
    let limit = Duration::from_secs(timeout.max(0) as u64 + 30) + ctx.cfg.timeout;
    ctx.call_within(
        "StopContainer",
        Some(limit),
        rt.stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout,
        }),
    )
    .await?;
    Ok(())
}
