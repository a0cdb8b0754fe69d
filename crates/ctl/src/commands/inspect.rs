//! `inspect`: container status with the runtime's verbose info (ContainerStatus).

use berth_api::runtime::v1::ContainerStatusRequest;
use serde_json::{Value, json};

use crate::client::Ctx;
use crate::commands::{resolve_containers, verbose_info};
use crate::error::Error;
use crate::output::{Format, print_value};
use crate::protojson::{rfc3339_times, to_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container ids (or unique prefixes)
    #[arg(required = true)]
    ids: Vec<String>,
    /// Output format: json or yaml
    #[arg(short, long, value_enum, default_value = "json")]
    output: Format,
    /// Only the status, without the runtime's info
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    for id in resolve_containers(ctx, &args.ids).await? {
        let mut rt = ctx.runtime().await?;
        let res = ctx
            .call(
                "ContainerStatus",
                rt.container_status(ContainerStatusRequest {
                    container_id: id,
                    verbose: !args.quiet,
                }),
            )
            .await?;
        let mut status = to_json(&res.status, "ContainerStatus");
        rfc3339_times(&mut status, &["createdAt", "startedAt", "finishedAt"]);
        let out: Value = if args.quiet {
            json!({ "status": status })
        } else {
            json!({ "status": status, "info": verbose_info(&res.info) })
        };
        print_value(&out, args.output)?;
    }
    Ok(())
}
