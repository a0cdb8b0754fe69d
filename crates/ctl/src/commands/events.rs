//! `events`: stream container events (GetContainerEvents) until interrupted.

use std::time::{Duration, UNIX_EPOCH};

use berth_api::runtime::v1::{ContainerEventResponse, ContainerEventType, GetEventsRequest};
use futures_util::StreamExt;

use crate::client::Ctx;
use crate::error::Error;
use crate::output::{Format, print_value};
use crate::protojson::to_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json (default, as crictl), yaml, or table (one line per event)
    #[arg(short, long, value_enum, default_value = "json")]
    output: Format,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let mut rt = ctx.runtime().await?;
    let mut stream = rt
        .get_container_events(GetEventsRequest::default())
        .await
        .map_err(|s| Error::rpc("GetContainerEvents", s))?
        .into_inner();
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(|s| Error::rpc("GetContainerEvents", s))?;
        match args.output {
            Format::Table => println!("{}", line(&ev)),
            f => {
                let v = to_json(&ev, "ContainerEventResponse");
                print_value(&v, f)?;
            }
        }
    }
    Ok(())
}

/// `<time> <EVENT TYPE> <container id> <pod name>`.
pub fn line(ev: &ContainerEventResponse) -> String {
    let time = UNIX_EPOCH + Duration::from_nanos(ev.created_at.max(0) as u64);
    let kind = ContainerEventType::try_from(ev.container_event_type)
        .map(|t| t.as_str_name())
        .unwrap_or("UNKNOWN");
    let pod = ev
        .pod_sandbox_status
        .as_ref()
        .and_then(|p| p.metadata.as_ref())
        .map(|m| m.name.as_str())
        .unwrap_or("");
    format!(
        "{} {kind} {} {pod}",
        humantime::format_rfc3339_nanos(time),
        ev.container_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::runtime::v1::{PodSandboxMetadata, PodSandboxStatus};

    #[test]
    fn event_lines_name_time_type_container_and_pod() {
        let ev = ContainerEventResponse {
            container_id: "abc".into(),
            container_event_type: ContainerEventType::ContainerStartedEvent as i32,
            created_at: 1_000_000_000,
            pod_sandbox_status: Some(PodSandboxStatus {
                metadata: Some(PodSandboxMetadata {
                    name: "web".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            containers_statuses: vec![],
        };
        assert_eq!(
            line(&ev),
            "1970-01-01T00:00:01.000000000Z CONTAINER_STARTED_EVENT abc web"
        );
    }
}
