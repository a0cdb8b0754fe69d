//! GetContainerEvents: a stream of container lifecycle events (created, started,
//! stopped, deleted) from the moment of the call, each with the pod's status and the
//! container's.

use berth_api::runtime::v1::{ContainerEventResponse, ContainerEventType, GetEventsRequest};
use berth_sandbox::EventKind;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use super::RuntimeService;
use super::convert;
use crate::error::Result;
use crate::instrument::ResponseStream;

impl RuntimeService {
    pub async fn get_container_events(
        &self,
        _request: GetEventsRequest,
    ) -> Result<ResponseStream<ContainerEventResponse>> {
        let mut rx = self.sandboxes.subscribe();
        let sandboxes = self.sandboxes.clone();
        let stream = async_stream(move |tx| async move {
            loop {
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        warn!(missed = n, "container events subscriber lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let records = sandboxes.records();
                let kind = match event.kind {
                    EventKind::Created => ContainerEventType::ContainerCreatedEvent,
                    EventKind::Started => ContainerEventType::ContainerStartedEvent,
                    EventKind::Stopped => ContainerEventType::ContainerStoppedEvent,
                    EventKind::Deleted => ContainerEventType::ContainerDeletedEvent,
                };
                let response = ContainerEventResponse {
                    container_id: event.container_id.clone(),
                    container_event_type: kind as i32,
                    created_at: event.at,
                    pod_sandbox_status: records.pod(&event.pod_id).map(|p| convert::pod_status(&p)),
                    containers_statuses: records
                        .containers_of(&event.pod_id)
                        .iter()
                        .filter(|c| c.state.is_visible())
                        .map(convert::container_status)
                        .collect(),
                };
                if tx.send(Ok(response)).await.is_err() {
                    return;
                }
            }
        });
        Ok(stream)
    }
}

/// A response stream fed by a task through a channel; the task ends when the client goes.
fn async_stream<T, F, Fut>(f: F) -> ResponseStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, tonic::Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
