//! `inspectp`: pod status with the runtime's verbose info (PodSandboxStatus).

use berth_api::runtime::v1::PodSandboxStatusRequest;
use serde_json::{Value, json};

use crate::client::Ctx;
use crate::commands::{container_state_name, info_value, name_enum, pod_state_name, resolve_pods};
use crate::error::Error;
use crate::output::{Format, print_value, to_value};

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
        let mut status = to_value(&res.status);
        name_enum(&mut status, "state", pod_state_name);
        let mut out: Value = json!({ "status": status });
        if !args.quiet {
            out["info"] = info_value(&res.info);
        }
        if !res.containers_statuses.is_empty() {
            let mut cs = to_value(&res.containers_statuses);
            for c in cs.as_array_mut().into_iter().flatten() {
                name_enum(c, "state", container_state_name);
            }
            out["containersStatuses"] = cs;
        }
        print_value(&out, args.output)?;
    }
    Ok(())
}
