//! OCI runtime specs built from CRI configs: the pod's infra process and its containers.
//!
//! Nothing here mounts, forks or writes. Besides their inputs the functions only read: the
//! image's /etc/passwd and /etc/group inside the rootfs (openat2 RESOLVE_IN_ROOT, see
//! [`user`]), the kubelet's mount sources and device nodes (they must exist), a node-local
//! seccomp profile, and berthd's own capability bounding set (what "privileged" can grant).
//!
//! The result follows what containerd's CRI plugin generates for a cgroupfs node, since the
//! kubelet expects that behaviour:
//!
//! - [`pod_spec`]: read-only root, 65535:65535 unless the pod names a user, no capability,
//!   no_new_privs, oom_score_adj -998, the pod's namespaces, sysctls and cgroup limits.
//! - [`container_spec`]: argv merged from the CRI and the image, user and groups from the
//!   image's files, the default 14 capabilities with add/drop, berth's runtime default seccomp
//!   profile, masked and read-only /proc paths, the pod's files and the kubelet's mounts and
//!   devices, cgroup limits.
//! - [`exec_process`]: a container's process with another argv, for Exec and ExecSync.

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

pub use container::{command_line, container_spec, environment, exec_process};
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
