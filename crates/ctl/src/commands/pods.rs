//! `pods`: list pods (ListPodSandbox), filtered and sorted newest first.

use std::time::SystemTime;

use berth_api::runtime::v1::{
    ListPodSandboxRequest, PodSandbox, PodSandboxFilter, PodSandboxStateValue,
};
use serde_json::Value;

use crate::client::Ctx;
use crate::commands::{parse_labels, parse_pod_state, pod_state_word};
use crate::error::Error;
use crate::output::{Format, Table, age, print_value, trunc_id};
use crate::protojson::to_json_list;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the pod with this id (or id prefix)
    #[arg(long)]
    id: Option<String>,
    /// Only pods whose name contains this
    #[arg(long)]
    name: Option<String>,
    /// Only pods whose namespace contains this
    #[arg(long)]
    namespace: Option<String>,
    /// Only pods with this label (key=value; repeatable)
    #[arg(long)]
    label: Vec<String>,
    /// Only pods in this state: ready or notready
    #[arg(short, long)]
    state: Option<String>,
    /// Only the newest pod
    #[arg(short, long)]
    latest: bool,
    /// Only the newest N pods
    #[arg(short = 'n', long, default_value_t = 0)]
    last: usize,
    /// Show ids in full
    #[arg(long)]
    no_trunc: bool,
    /// Only print pod ids
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let filter = PodSandboxFilter {
        id: String::new(),
        state: match &args.state {
            Some(s) => Some(PodSandboxStateValue {
                state: parse_pod_state(s)? as i32,
            }),
            None => None,
        },
        label_selector: parse_labels(&args.label)?,
    };
    let mut rt = ctx.runtime().await?;
    let res = ctx
        .call(
            "ListPodSandbox",
            rt.list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(filter),
            }),
        )
        .await?;
    let pods = select(res.items, &args);
    if args.quiet {
        for p in &pods {
            println!("{}", p.id);
        }
        return Ok(());
    }
    match args.output {
        Format::Table => table(&pods, args.no_trunc, SystemTime::now()).print(),
        f => {
            let items = to_json_list(&pods, "PodSandbox");
            print_value(
                &Value::Object([("items".to_string(), items)].into_iter().collect()),
                f,
            )
        }
    }
}

fn select(mut pods: Vec<PodSandbox>, args: &Args) -> Vec<PodSandbox> {
    pods.retain(|p| {
        let meta = p.metadata.clone().unwrap_or_default();
        args.id
            .as_ref()
            .is_none_or(|id| p.id.starts_with(id.as_str()))
            && args
                .name
                .as_ref()
                .is_none_or(|n| meta.name.contains(n.as_str()))
            && args
                .namespace
                .as_ref()
                .is_none_or(|n| meta.namespace.contains(n.as_str()))
    });
    pods.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    let keep = if args.latest { 1 } else { args.last };
    if keep > 0 {
        pods.truncate(keep);
    }
    pods
}

pub fn table(pods: &[PodSandbox], no_trunc: bool, now: SystemTime) -> Table {
    let mut t = Table::new(&[
        "POD ID",
        "CREATED",
        "STATE",
        "NAME",
        "NAMESPACE",
        "ATTEMPT",
        "RUNTIME",
    ]);
    for p in pods {
        let meta = p.metadata.clone().unwrap_or_default();
        let runtime = if p.runtime_handler.is_empty() {
            "(default)".to_string()
        } else {
            p.runtime_handler.clone()
        };
        t.row(vec![
            trunc_id(&p.id, no_trunc),
            age(p.created_at, now),
            pod_state_word(p.state).to_string(),
            meta.name,
            meta.namespace,
            meta.attempt.to_string(),
            runtime,
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::runtime::v1::PodSandboxMetadata;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn pods_table_has_crictls_columns() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let pod = PodSandbox {
            id: "0123456789abcdef".into(),
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                attempt: 1,
                uid: "u".into(),
            }),
            state: 0,
            created_at: 9_880 * 1_000_000_000,
            ..Default::default()
        };
        let out = table(&[pod], false, now).render();
        let mut lines = out.lines();
        let header = lines.next().unwrap();
        let cols: Vec<&str> = header
            .split("   ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            cols,
            [
                "POD ID",
                "CREATED",
                "STATE",
                "NAME",
                "NAMESPACE",
                "ATTEMPT",
                "RUNTIME"
            ]
        );
        let row: Vec<&str> = lines
            .next()
            .unwrap()
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            row,
            [
                "0123456789abc",
                "2 minutes ago",
                "Ready",
                "web",
                "default",
                "1",
                "(default)"
            ]
        );
    }
}
