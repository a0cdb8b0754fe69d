//! `runtime.v1.RuntimeService`: one file per RPC, named after it.

use std::sync::Arc;

use berth_api::runtime::v1::*;

use berth_sandbox::Sandboxes;

use crate::config::Config;
use crate::image::ImageService;
use crate::metrics::Metrics;
use crate::streaming::Streaming;

mod attach;
mod checkpoint_container;
mod container_stats;
mod container_status;
mod convert;
mod create_container;
mod exec;
mod exec_sync;
mod get_container_events;
mod list_container_stats;
mod list_containers;
mod list_metric_descriptors;
mod list_pod_sandbox;
mod list_pod_sandbox_metrics;
mod list_pod_sandbox_stats;
mod pod_sandbox_stats;
mod pod_sandbox_status;
mod port_forward;
mod remove_container;
mod remove_pod_sandbox;
mod reopen_container_log;
mod run_pod_sandbox;
mod runtime_config;
mod start_container;
mod status;
mod stop_container;
mod stop_pod_sandbox;
mod stream_container_stats;
mod stream_containers;
mod stream_pod_sandbox_metrics;
mod stream_pod_sandbox_stats;
mod stream_pod_sandboxes;
mod update_container_resources;
mod update_pod_sandbox_resources;
mod update_runtime_config;
mod version;

pub use berth_api::runtime::v1::runtime_service_server::RuntimeServiceServer;

/// The runtime service. Holds handles, not the state itself: pods and containers
/// belong to [`Sandboxes`].
pub struct RuntimeService {
    config: Arc<Config>,
    sandboxes: Arc<Sandboxes>,
    /// For pulling a configured pause image on first use.
    images: Arc<ImageService>,
    metrics: Arc<Metrics>,
    /// Where Exec, Attach and PortForward send their clients.
    streaming: Arc<Streaming>,
}

impl RuntimeService {
    pub fn new(
        config: Arc<Config>,
        sandboxes: Arc<Sandboxes>,
        images: Arc<ImageService>,
        metrics: Arc<Metrics>,
        streaming: Arc<Streaming>,
    ) -> Self {
        RuntimeService {
            config,
            sandboxes,
            images,
            metrics,
            streaming,
        }
    }

    /// The pod CIDR last sent by the kubelet, if any.
    pub fn pod_cidr(&self) -> String {
        self.sandboxes.pod_cidr()
    }
}

cri_service! {
    impl runtime_service_server::RuntimeService => RuntimeService;
    prefix "runtime.v1.RuntimeService";
    unary {
        "Version" => version(VersionRequest) -> VersionResponse;
        "RunPodSandbox" => run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse;
        "StopPodSandbox" => stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
        "RemovePodSandbox" => remove_pod_sandbox(RemovePodSandboxRequest)
            -> RemovePodSandboxResponse;
        "PodSandboxStatus" => pod_sandbox_status(PodSandboxStatusRequest)
            -> PodSandboxStatusResponse;
        "ListPodSandbox" => list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
        "CreateContainer" => create_container(CreateContainerRequest) -> CreateContainerResponse;
        "StartContainer" => start_container(StartContainerRequest) -> StartContainerResponse;
        "StopContainer" => stop_container(StopContainerRequest) -> StopContainerResponse;
        "RemoveContainer" => remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
        "ListContainers" => list_containers(ListContainersRequest) -> ListContainersResponse;
        "ContainerStatus" => container_status(ContainerStatusRequest) -> ContainerStatusResponse;
        "UpdateContainerResources" => update_container_resources(UpdateContainerResourcesRequest)
            -> UpdateContainerResourcesResponse;
        "ReopenContainerLog" => reopen_container_log(ReopenContainerLogRequest)
            -> ReopenContainerLogResponse;
        "ExecSync" => exec_sync(ExecSyncRequest) -> ExecSyncResponse;
        "Exec" => exec(ExecRequest) -> ExecResponse;
        "Attach" => attach(AttachRequest) -> AttachResponse;
        "PortForward" => port_forward(PortForwardRequest) -> PortForwardResponse;
        "ContainerStats" => container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
        "ListContainerStats" => list_container_stats(ListContainerStatsRequest)
            -> ListContainerStatsResponse;
        "PodSandboxStats" => pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse;
        "ListPodSandboxStats" => list_pod_sandbox_stats(ListPodSandboxStatsRequest)
            -> ListPodSandboxStatsResponse;
        "UpdateRuntimeConfig" => update_runtime_config(UpdateRuntimeConfigRequest)
            -> UpdateRuntimeConfigResponse;
        "Status" => status(StatusRequest) -> StatusResponse;
        "CheckpointContainer" => checkpoint_container(CheckpointContainerRequest)
            -> CheckpointContainerResponse;
        "ListMetricDescriptors" => list_metric_descriptors(ListMetricDescriptorsRequest)
            -> ListMetricDescriptorsResponse;
        "ListPodSandboxMetrics" => list_pod_sandbox_metrics(ListPodSandboxMetricsRequest)
            -> ListPodSandboxMetricsResponse;
        "RuntimeConfig" => runtime_config(RuntimeConfigRequest) -> RuntimeConfigResponse;
        "UpdatePodSandboxResources" => update_pod_sandbox_resources(
            UpdatePodSandboxResourcesRequest) -> UpdatePodSandboxResourcesResponse;
    }
    streaming {
        "StreamPodSandboxes" => stream_pod_sandboxes(StreamPodSandboxesRequest)
            -> StreamPodSandboxesStream<StreamPodSandboxesResponse>;
        "StreamContainers" => stream_containers(StreamContainersRequest)
            -> StreamContainersStream<StreamContainersResponse>;
        "StreamContainerStats" => stream_container_stats(StreamContainerStatsRequest)
            -> StreamContainerStatsStream<StreamContainerStatsResponse>;
        "StreamPodSandboxStats" => stream_pod_sandbox_stats(StreamPodSandboxStatsRequest)
            -> StreamPodSandboxStatsStream<StreamPodSandboxStatsResponse>;
        "GetContainerEvents" => get_container_events(GetEventsRequest)
            -> GetContainerEventsStream<ContainerEventResponse>;
        "StreamPodSandboxMetrics" => stream_pod_sandbox_metrics(StreamPodSandboxMetricsRequest)
            -> StreamPodSandboxMetricsStream<StreamPodSandboxMetricsResponse>;
    }
}
