//! Records (berth-sandbox) to CRI messages, and the CRI's list filters.

use std::collections::HashMap;

use berth_api::runtime::v1::{
    Container, ContainerFilter, ContainerResources, ContainerState, ContainerStatus, ContainerUser,
    ImageSpec, LinuxContainerUser, LinuxPodSandboxStatus, Namespace, PodIp, PodSandbox,
    PodSandboxFilter, PodSandboxNetworkStatus, PodSandboxState, PodSandboxStatus,
};
use berth_sandbox::records::{self, ContainerRecord, PodRecord};

pub fn pod_state(s: records::PodState) -> PodSandboxState {
    match s {
        records::PodState::Ready => PodSandboxState::SandboxReady,
        records::PodState::Pending | records::PodState::NotReady => {
            PodSandboxState::SandboxNotready
        }
    }
}

pub fn container_state(s: records::ContainerState) -> ContainerState {
    match s {
        records::ContainerState::Creating | records::ContainerState::Created => {
            ContainerState::ContainerCreated
        }
        records::ContainerState::Running => ContainerState::ContainerRunning,
        records::ContainerState::Exited => ContainerState::ContainerExited,
    }
}

pub fn pod_summary(p: &PodRecord) -> PodSandbox {
    PodSandbox {
        id: p.id.clone(),
        metadata: p.config.metadata.clone(),
        state: pod_state(p.state) as i32,
        created_at: p.created_at,
        labels: p.config.labels.clone(),
        annotations: p.config.annotations.clone(),
        runtime_handler: p.runtime_handler.clone(),
    }
}

pub fn pod_status(p: &PodRecord) -> PodSandboxStatus {
    let mut ips = p.ips.iter();
    let network = ips.next().map(|first| PodSandboxNetworkStatus {
        ip: first.clone(),
        additional_ips: ips.map(|ip| PodIp { ip: ip.clone() }).collect(),
    });
    let options = p
        .config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone());
    PodSandboxStatus {
        id: p.id.clone(),
        metadata: p.config.metadata.clone(),
        state: pod_state(p.state) as i32,
        created_at: p.created_at,
        network: Some(network.unwrap_or_default()),
        linux: Some(LinuxPodSandboxStatus {
            namespaces: Some(Namespace { options }),
        }),
        labels: p.config.labels.clone(),
        annotations: p.config.annotations.clone(),
        runtime_handler: p.runtime_handler.clone(),
    }
}

fn image_spec(c: &ContainerRecord) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: c.image_name.clone(),
        ..c.config.image.clone().unwrap_or_default()
    })
}

pub fn container_summary(c: &ContainerRecord) -> Container {
    Container {
        id: c.id.clone(),
        pod_sandbox_id: c.pod_id.clone(),
        metadata: c.config.metadata.clone(),
        image: image_spec(c),
        image_ref: c.image_ref.clone(),
        state: container_state(c.state) as i32,
        created_at: c.created_at,
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
        image_id: c.image_id.clone(),
    }
}

pub fn container_status(c: &ContainerRecord) -> ContainerStatus {
    let exit = c.exit.clone().unwrap_or(records::Exit {
        code: 0,
        finished_at: 0,
        reason: String::new(),
        message: String::new(),
    });
    ContainerStatus {
        id: c.id.clone(),
        metadata: c.config.metadata.clone(),
        state: container_state(c.state) as i32,
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: exit.finished_at,
        exit_code: exit.code,
        image: image_spec(c),
        image_ref: c.image_ref.clone(),
        reason: exit.reason,
        message: exit.message,
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
        mounts: c.config.mounts.clone(),
        log_path: c.log_path.clone(),
        resources: c
            .config
            .linux
            .as_ref()
            .and_then(|l| l.resources.clone())
            .map(|linux| ContainerResources {
                linux: Some(linux),
                windows: None,
            }),
        image_id: c.image_id.clone(),
        user: c.user.as_ref().map(|u| ContainerUser {
            linux: Some(LinuxContainerUser {
                uid: i64::from(u.uid),
                gid: i64::from(u.gid),
                supplemental_groups: u.groups.iter().map(|&g| i64::from(g)).collect(),
            }),
        }),
        stop_signal: c.config.stop_signal,
    }
}

fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn id_matches(id: &str, wanted: &str) -> bool {
    wanted.is_empty() || id.starts_with(wanted)
}

pub fn pod_matches(p: &PodRecord, f: &PodSandboxFilter) -> bool {
    p.state.is_visible()
        && id_matches(&p.id, &f.id)
        && f.state
            .as_ref()
            .is_none_or(|s| s.state == pod_state(p.state) as i32)
        && labels_match(&p.config.labels, &f.label_selector)
}

pub fn container_matches(c: &ContainerRecord, f: &ContainerFilter) -> bool {
    c.state.is_visible()
        && id_matches(&c.id, &f.id)
        && id_matches(&c.pod_id, &f.pod_sandbox_id)
        && f.state
            .as_ref()
            .is_none_or(|s| s.state == container_state(c.state) as i32)
        && labels_match(&c.config.labels, &f.label_selector)
}
