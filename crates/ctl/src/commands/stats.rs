//! `stats`: container resource usage (ListContainerStats) as CONTAINER, NAME, CPU %,
//! MEM, DISK, INODES.

use std::collections::HashMap;
use std::time::Duration;

use berth_api::runtime::v1::{ContainerStats, ContainerStatsFilter, ListContainerStatsRequest};
use serde_json::Value;

use crate::client::Ctx;
use crate::commands::{parse_labels, resolve_containers, resolve_pods};
use crate::error::Error;
use crate::output::{Format, Table, human_size, print_value, trunc_id};
use crate::protojson::to_json_list;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this container (id or unique prefix)
    id_arg: Option<String>,
    /// Only this container (id or unique prefix)
    #[arg(long)]
    id: Option<String>,
    /// Only containers of this pod
    #[arg(short, long)]
    pod: Option<String>,
    /// Only containers with this label (key=value; repeatable)
    #[arg(long)]
    label: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
    /// Seconds between the two samples CPU % is computed from, when the runtime gives
    /// no instantaneous figure
    #[arg(short, long, default_value_t = 1)]
    seconds: u64,
    /// Show ids in full
    #[arg(long)]
    no_trunc: bool,
    /// Accepted for crictl compatibility (stats are listed for running containers)
    #[arg(short, long)]
    all: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let id = match args.id_arg.as_ref().or(args.id.as_ref()) {
        Some(i) => resolve_containers(ctx, std::slice::from_ref(i))
            .await?
            .remove(0),
        None => String::new(),
    };
    let pod_sandbox_id = match &args.pod {
        Some(p) => resolve_pods(ctx, std::slice::from_ref(p)).await?.remove(0),
        None => String::new(),
    };
    let filter = ContainerStatsFilter {
        id,
        pod_sandbox_id,
        label_selector: parse_labels(&args.label)?,
    };
    let first = list(ctx, &filter).await?;
    if args.output != Format::Table {
        return print_value(
            &Value::Object(
                [("stats".to_string(), to_json_list(&first, "ContainerStats"))]
                    .into_iter()
                    .collect(),
            ),
            args.output,
        );
    }
    // Runtimes without usage_nano_cores: derive it from two cumulative samples.
    let needs_second = first
        .iter()
        .any(|s| s.cpu.as_ref().is_none_or(|c| c.usage_nano_cores.is_none()));
    let cpu = if needs_second && !first.is_empty() {
        tokio::time::sleep(Duration::from_secs(args.seconds.max(1))).await;
        let second = list(ctx, &filter).await?;
        rates(&first, &second)
    } else {
        HashMap::new()
    };
    table(&first, &cpu, args.no_trunc).print()
}

async fn list(ctx: &mut Ctx, filter: &ContainerStatsFilter) -> Result<Vec<ContainerStats>, Error> {
    let mut rt = ctx.runtime().await?;
    Ok(ctx
        .call(
            "ListContainerStats",
            rt.list_container_stats(ListContainerStatsRequest {
                filter: Some(filter.clone()),
            }),
        )
        .await?
        .stats)
}

fn id_of(s: &ContainerStats) -> &str {
    s.attributes.as_ref().map(|a| a.id.as_str()).unwrap_or("")
}

/// Nano-cores per container from two cumulative CPU samples.
pub fn rates(first: &[ContainerStats], second: &[ContainerStats]) -> HashMap<String, u64> {
    let sample = |s: &ContainerStats| {
        s.cpu
            .as_ref()
            .and_then(|c| Some((c.timestamp, c.usage_core_nano_seconds?.value)))
    };
    let mut out = HashMap::new();
    for a in first {
        let Some(b) = second.iter().find(|b| id_of(b) == id_of(a)) else {
            continue;
        };
        if let (Some((t0, u0)), Some((t1, u1))) = (sample(a), sample(b))
            && t1 > t0
        {
            let rate = (u1.saturating_sub(u0) as f64) / ((t1 - t0) as f64) * 1e9;
            out.insert(id_of(a).to_string(), rate as u64);
        }
    }
    out
}

/// CPU % as crictl prints it: nano-cores over 10^7, two decimals.
pub fn cpu_percent(nano_cores: u64) -> String {
    format!("{:.2}", nano_cores as f64 / 1e7)
}

pub fn table(stats: &[ContainerStats], rates: &HashMap<String, u64>, no_trunc: bool) -> Table {
    let mut t = Table::new(&[
        "CONTAINER",
        "NAME",
        "CPU %",
        "MEM",
        "DISK",
        "INODES",
        "SWAP",
    ]);
    for s in stats {
        let attrs = s.attributes.clone().unwrap_or_default();
        let nano = s
            .cpu
            .as_ref()
            .and_then(|c| c.usage_nano_cores)
            .map(|v| v.value)
            .or_else(|| rates.get(&attrs.id).copied())
            .unwrap_or(0);
        let mem = s
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value)
            .unwrap_or(0);
        let fs = s.writable_layer.clone().unwrap_or_default();
        t.row(vec![
            trunc_id(&attrs.id, no_trunc),
            attrs.metadata.map(|m| m.name).unwrap_or_default(),
            cpu_percent(nano),
            human_size(mem as f64, 4),
            human_size(fs.used_bytes.map(|v| v.value).unwrap_or(0) as f64, 4),
            fs.inodes_used.map(|v| v.value).unwrap_or(0).to_string(),
            human_size(
                s.swap
                    .as_ref()
                    .and_then(|w| w.swap_usage_bytes)
                    .map(|v| v.value)
                    .unwrap_or(0) as f64,
                4,
            ),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::runtime::v1::{
        ContainerAttributes, ContainerMetadata, CpuUsage, FilesystemUsage, MemoryUsage, UInt64Value,
    };

    fn stats(ts: i64, cumulative: u64) -> ContainerStats {
        ContainerStats {
            attributes: Some(ContainerAttributes {
                id: "0123456789abcdef".into(),
                metadata: Some(ContainerMetadata {
                    name: "app".into(),
                    attempt: 0,
                }),
                ..Default::default()
            }),
            cpu: Some(CpuUsage {
                timestamp: ts,
                usage_core_nano_seconds: Some(UInt64Value { value: cumulative }),
                ..Default::default()
            }),
            memory: Some(MemoryUsage {
                working_set_bytes: Some(UInt64Value { value: 12_345_678 }),
                ..Default::default()
            }),
            writable_layer: Some(FilesystemUsage {
                used_bytes: Some(UInt64Value { value: 4096 }),
                inodes_used: Some(UInt64Value { value: 7 }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn stats_table_derives_cpu_from_two_samples() {
        let a = [stats(1_000_000_000, 0)];
        let b = [stats(2_000_000_000, 250_000_000)];
        let r = rates(&a, &b);
        let out = table(&a, &r, false).render();
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| {
                l.split("   ")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(
            lines[0],
            [
                "CONTAINER",
                "NAME",
                "CPU %",
                "MEM",
                "DISK",
                "INODES",
                "SWAP"
            ]
        );
        assert_eq!(
            lines[1],
            [
                "0123456789abc",
                "app",
                "25.00",
                "12.35MB",
                "4.096kB",
                "7",
                "0B"
            ]
        );
    }
}
