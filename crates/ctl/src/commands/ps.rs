//! `ps`: list containers (ListContainers), running ones unless `-a` or `--state`.

use std::collections::HashMap;
use std::time::SystemTime;

use berth_api::runtime::v1::{
    Container, ContainerFilter, ContainerState, ContainerStateValue, ListContainersRequest,
    ListPodSandboxRequest, PodSandboxMetadata,
};
use serde_json::Value;

use crate::client::Ctx;
use crate::commands::{container_state_word, parse_container_state, parse_labels, resolve_pods};
use crate::error::Error;
use crate::output::{Format, Table, age, print_value, trunc_id};
use crate::protojson::to_json_list;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all containers, not only running ones
    #[arg(short, long)]
    all: bool,
    /// Only the container with this id (or id prefix)
    #[arg(long)]
    id: Option<String>,
    /// Only containers of this pod (id or id prefix)
    #[arg(short, long)]
    pod: Option<String>,
    /// Only containers whose name contains this
    #[arg(long)]
    name: Option<String>,
    /// Only containers in this state: created, running, exited or unknown
    #[arg(short, long)]
    state: Option<String>,
    /// Only containers with this label (key=value; repeatable)
    #[arg(long)]
    label: Vec<String>,
    /// Only containers whose pod namespace contains this
    #[arg(long)]
    namespace: Option<String>,
    /// Only containers whose image contains this
    #[arg(long)]
    image: Option<String>,
    /// Only the newest container (of any state)
    #[arg(short, long)]
    latest: bool,
    /// Only the newest N containers (of any state)
    #[arg(short = 'n', long, default_value_t = 0)]
    last: usize,
    /// Show ids in full
    #[arg(long)]
    no_trunc: bool,
    /// Only print container ids
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let pod_sandbox_id = match &args.pod {
        Some(p) => resolve_pods(ctx, std::slice::from_ref(p)).await?.remove(0),
        None => String::new(),
    };
    let state = match &args.state {
        Some(s) => Some(parse_container_state(s)?),
        None if args.all || args.latest || args.last > 0 => None,
        None => Some(ContainerState::ContainerRunning),
    };
    let filter = ContainerFilter {
        id: String::new(),
        state: state.map(|s| ContainerStateValue { state: s as i32 }),
        pod_sandbox_id,
        label_selector: parse_labels(&args.label)?,
    };
    let mut rt = ctx.runtime().await?;
    let res = ctx
        .call(
            "ListContainers",
            rt.list_containers(ListContainersRequest {
                filter: Some(filter),
            }),
        )
        .await?;
    let mut containers = select(res.containers, &args);
    if let Some(ns) = &args.namespace {
        let pods = ctx
            .call(
                "ListPodSandbox",
                rt.list_pod_sandbox(ListPodSandboxRequest::default()),
            )
            .await?;
        let pods: HashMap<String, PodSandboxMetadata> = pods
            .items
            .into_iter()
            .map(|p| (p.id, p.metadata.unwrap_or_default()))
            .collect();
        containers.retain(|c| pod_namespace(c, &pods).contains(ns.as_str()));
    }
    if args.quiet {
        for c in &containers {
            println!("{}", c.id);
        }
        return Ok(());
    }
    match args.output {
        Format::Table => {
            let pods = ctx
                .call(
                    "ListPodSandbox",
                    rt.list_pod_sandbox(ListPodSandboxRequest::default()),
                )
                .await?;
            let names: HashMap<String, PodSandboxMetadata> = pods
                .items
                .into_iter()
                .map(|p| (p.id, p.metadata.unwrap_or_default()))
                .collect();
            table(&containers, &names, args.no_trunc, SystemTime::now()).print()
        }
        f => {
            let items = to_json_list(&containers, "Container");
            print_value(
                &Value::Object([("containers".to_string(), items)].into_iter().collect()),
                f,
            )
        }
    }
}

fn select(mut cs: Vec<Container>, args: &Args) -> Vec<Container> {
    cs.retain(|c| {
        let name = c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
        let image = c.image.as_ref().map(|i| i.image.as_str()).unwrap_or("");
        args.id
            .as_ref()
            .is_none_or(|id| c.id.starts_with(id.as_str()))
            && args.name.as_ref().is_none_or(|n| name.contains(n.as_str()))
            && args
                .image
                .as_ref()
                .is_none_or(|i| image.contains(i.as_str()) || c.image_ref.contains(i.as_str()))
    });
    cs.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    let keep = if args.latest { 1 } else { args.last };
    if keep > 0 {
        cs.truncate(keep);
    }
    cs
}

/// An image shown in a table: ids truncated like container ids, names as they are.
pub fn image_column(image: &str, no_trunc: bool) -> String {
    let hex = image.strip_prefix("sha256:").unwrap_or(image);
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        trunc_id(image, no_trunc)
    } else {
        image.to_string()
    }
}

/// The kubelet's pod labels on a container name its pod; else the pod's own metadata.
const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

fn pod_label(
    c: &Container,
    label: &str,
    pods: &HashMap<String, PodSandboxMetadata>,
    field: fn(&PodSandboxMetadata) -> &str,
) -> String {
    c.labels
        .get(label)
        .cloned()
        .or_else(|| pods.get(&c.pod_sandbox_id).map(|m| field(m).to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

pub fn pod_name(c: &Container, pods: &HashMap<String, PodSandboxMetadata>) -> String {
    pod_label(c, POD_NAME_LABEL, pods, |m| &m.name)
}

pub fn pod_namespace(c: &Container, pods: &HashMap<String, PodSandboxMetadata>) -> String {
    pod_label(c, POD_NAMESPACE_LABEL, pods, |m| &m.namespace)
}

pub fn table(
    cs: &[Container],
    pods: &HashMap<String, PodSandboxMetadata>,
    no_trunc: bool,
    now: SystemTime,
) -> Table {
    let mut t = Table::new(&[
        "CONTAINER",
        "IMAGE",
        "CREATED",
        "STATE",
        "NAME",
        "ATTEMPT",
        "POD ID",
        "POD",
        "NAMESPACE",
    ]);
    for c in cs {
        let meta = c.metadata.clone().unwrap_or_default();
        let image = c.image.as_ref().map(|i| i.image.as_str()).unwrap_or("");
        t.row(vec![
            trunc_id(&c.id, no_trunc),
            image_column(image, no_trunc),
            age(c.created_at, now),
            container_state_word(c.state).to_string(),
            meta.name,
            meta.attempt.to_string(),
            trunc_id(&c.pod_sandbox_id, no_trunc),
            pod_name(c, pods),
            pod_namespace(c, pods),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::runtime::v1::{ContainerMetadata, ImageSpec};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn ps_table_truncates_ids_and_names_the_pod() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let c = Container {
            id: "c0123456789abcdef".into(),
            pod_sandbox_id: "p0123456789abcdef".into(),
            metadata: Some(ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: format!("sha256:{}", "ab".repeat(32)),
                ..Default::default()
            }),
            state: ContainerState::ContainerRunning as i32,
            created_at: 95 * 1_000_000_000,
            ..Default::default()
        };
        let names = [(
            "p0123456789abcdef".to_string(),
            PodSandboxMetadata {
                name: "web".into(),
                namespace: "default".into(),
                ..Default::default()
            },
        )]
        .into();
        let out = table(&[c], &names, false, now).render();
        let row: Vec<&str> = out
            .lines()
            .nth(1)
            .unwrap()
            .split("   ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            row,
            [
                "c0123456789ab",
                "ababababababa",
                "5 seconds ago",
                "Running",
                "app",
                "0",
                "p0123456789ab",
                "web",
                "default"
            ]
        );
        assert!(out.starts_with("CONTAINER           IMAGE"));
    }
}

#[cfg(test)]
mod image_tests {
    use super::*;

    #[test]
    fn image_ids_are_truncated_and_names_are_not() {
        let id = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(image_column(&id, false), "0f0f0f0f0f0f0");
        assert_eq!(image_column(&id, true), id);
        assert_eq!(image_column("busybox:latest", false), "busybox:latest");
    }

    #[test]
    fn pod_columns_prefer_kubelet_labels_then_metadata_then_unknown() {
        let pods: HashMap<String, PodSandboxMetadata> = [(
            "p".to_string(),
            PodSandboxMetadata {
                name: "meta".into(),
                namespace: "ns".into(),
                ..Default::default()
            },
        )]
        .into();
        let mut c = Container {
            pod_sandbox_id: "p".into(),
            ..Default::default()
        };
        assert_eq!(
            (pod_name(&c, &pods), pod_namespace(&c, &pods)),
            ("meta".into(), "ns".into())
        );
        c.labels.insert(POD_NAME_LABEL.into(), "label".into());
        assert_eq!(pod_name(&c, &pods), "label");
        c.pod_sandbox_id = "gone".into();
        assert_eq!(pod_namespace(&c, &pods), "unknown");
    }
}
