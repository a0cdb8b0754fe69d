//! `inspectp`: pod status with the runtime's verbose info (PodSandboxStatus).

use berth_api::runtime::v1::PodSandboxStatusRequest;
use serde_json::{Value, json};

use crate::client::Ctx;
use crate::commands::{resolve_pods, verbose_info};
use crate::error::Error;
use crate::output::{Format, print_value};
use crate::protojson::{rfc3339_times, to_json, to_json_list};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod ids (or unique prefixes)
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
    for id in resolve_pods(ctx, &args.ids).await? {
        let mut rt = ctx.runtime().await?;
        let res = ctx
            .call(
                "PodSandboxStatus",
                rt.pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id,
                    verbose: !args.quiet,
                }),
            )
            .await?;
        let mut status = to_json(&res.status, "PodSandboxStatus");
        rfc3339_times(&mut status, &["createdAt"]);
        let mut out: Value = json!({ "status": status });
        if !args.quiet {
            out["info"] = verbose_info(&res.info);
        }
        if !res.containers_statuses.is_empty() {
            out["containersStatuses"] = to_json_list(&res.containers_statuses, "ContainerStatus");
        }
        print_value(&out, args.output)?;
    }
    Ok(())
}
