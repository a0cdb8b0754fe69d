//! OCI runtime specs built from CRI configs: the pod's infra process and its containers.
//!
//! Pure functions of their inputs (plus reading the image's /etc/passwd and /etc/group
//! inside the container rootfs): nothing here mounts, forks or writes.

mod base;
mod container;
pub mod mounts;
mod pod;
pub mod resources;
pub mod seccomp;
pub mod security;
pub mod sysctl;
pub mod user;

use std::path::{Path, PathBuf};

use berth_api::runtime::v1::{ContainerConfig, PodSandboxConfig};
use berth_image::ImageConfig;

pub use container::{container_spec, exec_process};
pub use pod::pod_spec;
pub use seccomp::{SeccompChoice, default_profile as default_seccomp_profile};
pub use security::{DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};
pub use sysctl::{normalized_sysctls, validate_sysctls};
pub use user::{UserRequest, resolve_user};

/// What a spec-building step can reject: always a caller's mistake, named.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("build spec: {0}")]
    Build(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// For `map_err` on an oci-spec builder: which part of the spec failed to build.
fn build_err<E: std::fmt::Display>(field: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Build(format!("{field}: {e}"))
}

/// How a process gets one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// The host's (no namespace entry in the spec).
    Host,
    /// A new one.
    New,
    /// Joins the namespace at this path (`/proc/<pid>/ns/ipc`, a pinned netns).
    Join(PathBuf),
}

/// The namespaces of one process, as the pod decided them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    pub network: Namespace,
    pub ipc: Namespace,
    pub uts: Namespace,
    pub pid: Namespace,
}

/// Files the pod prepared once and every container of it bind-mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFiles {
    /// Mounted at /etc/hostname.
    pub hostname: Option<PathBuf>,
    /// Mounted at /etc/hosts.
    pub hosts: Option<PathBuf>,
    /// Mounted at /etc/resolv.conf.
    pub resolv_conf: Option<PathBuf>,
    /// A tmpfs mounted at /dev/shm (shared by the pod's containers); None: each
    /// container gets its own /dev/shm (host IPC).
    pub shm: Option<PathBuf>,
}

/// The infra (pause) process of a pod.
#[derive(Debug, Clone)]
pub struct PodSpecInput<'a> {
    /// The pod's id (annotation io.kubernetes.cri.sandbox-id).
    pub sandbox_id: &'a str,
    pub config: &'a PodSandboxConfig,
    /// A read-only directory holding the infra binary.
    pub rootfs: &'a Path,
    pub args: Vec<String>,
    pub namespaces: Namespaces,
    pub cgroups_path: String,
}

/// One container of a pod.
#[derive(Debug, Clone)]
pub struct ContainerSpecInput<'a> {
    /// The pod's id (annotation io.kubernetes.cri.sandbox-id).
    pub sandbox_id: &'a str,
    pub pod: &'a PodSandboxConfig,
    pub config: &'a ContainerConfig,
    pub image: &'a ImageConfig,
    /// The mounted snapshot.
    pub rootfs: &'a Path,
    pub namespaces: Namespaces,
    pub cgroups_path: String,
    pub pod_files: &'a PodFiles,
}
