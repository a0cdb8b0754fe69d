//! `statsp`: pod resource usage (ListPodSandboxStats) as POD, POD ID, CPU %, MEM.

use berth_api::runtime::v1::{ListPodSandboxStatsRequest, PodSandboxStats, PodSandboxStatsFilter};
use serde_json::Value;

use crate::client::Ctx;
use crate::commands::{parse_labels, resolve_pods, stats::cpu_percent};
use crate::error::Error;
use crate::output::{Format, Table, human_size, print_value, trunc_id};
use crate::protojson::to_json_list;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this pod (id or unique prefix)
    #[arg(long)]
    id: Option<String>,
    /// Only pods with this label (key=value; repeatable)
    #[arg(long)]
    label: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
    /// Show ids in full
    #[arg(long)]
    no_trunc: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let id = match &args.id {
        Some(i) => resolve_pods(ctx, std::slice::from_ref(i)).await?.remove(0),
        None => String::new(),
    };
    let mut rt = ctx.runtime().await?;
    let res = ctx
        .call(
            "ListPodSandboxStats",
            rt.list_pod_sandbox_stats(ListPodSandboxStatsRequest {
                filter: Some(PodSandboxStatsFilter {
                    id,
                    label_selector: parse_labels(&args.label)?,
                }),
            }),
        )
        .await?;
    match args.output {
        Format::Table => table(&res.stats, args.no_trunc).print(),
        f => print_value(
            &Value::Object(
                [(
                    "stats".to_string(),
                    to_json_list(&res.stats, "PodSandboxStats"),
                )]
                .into_iter()
                .collect(),
            ),
            f,
        ),
    }
}

pub fn table(stats: &[PodSandboxStats], no_trunc: bool) -> Table {
    let mut t = Table::new(&["POD", "POD ID", "CPU %", "MEM"]);
    for s in stats {
        let attrs = s.attributes.clone().unwrap_or_default();
        let linux = s.linux.clone().unwrap_or_default();
        let nano = linux
            .cpu
            .and_then(|c| c.usage_nano_cores)
            .map(|v| v.value)
            .unwrap_or(0);
        let mem = linux
            .memory
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value)
            .unwrap_or(0);
        t.row(vec![
            attrs.metadata.map(|m| m.name).unwrap_or_default(),
            trunc_id(&attrs.id, no_trunc),
            cpu_percent(nano),
            human_size(mem as f64, 4),
        ]);
    }
    t
}
