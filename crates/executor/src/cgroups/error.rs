//! The error type of the cgroup layer.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// An operating-system error shown the way berth's messages want it: lowercase, no errno
/// number ("invalid argument", not "Invalid argument (os error 22)").
#[derive(Debug)]
pub struct OsError(pub io::Error);

impl OsError {
    /// The raw errno, when the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.0.raw_os_error()
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0.raw_os_error() {
            Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
            None => self.0.to_string(),
        };
        let mut chars = text.chars();
        match chars.next() {
            Some(c) => write!(f, "{}{}", c.to_lowercase(), chars.as_str()),
            None => Ok(()),
        }
    }
}

impl std::error::Error for OsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<io::Error> for OsError {
    fn from(e: io::Error) -> Self {
        OsError(e)
    }
}

impl From<nix::errno::Errno> for OsError {
    fn from(e: nix::errno::Errno) -> Self {
        OsError(io::Error::from_raw_os_error(e as i32))
    }
}

/// Everything that can go wrong in the cgroup layer. Each variant names the path, field or value
/// that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: OsError },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: OsError,
    },
    #[error("mkdir {path}: {source}")]
    Mkdir { path: PathBuf, source: OsError },
    #[error("rmdir {path}: {source}")]
    Rmdir { path: PathBuf, source: OsError },
    #[error("parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
    /// An OCI field holds a value that cannot be applied; `field` is its JSON path, e.g.
    /// "linux.resources.memory.swap".
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// An OCI field asks for something the host's cgroup layout cannot do.
    #[error("{field}: not supported: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("invalid cgroups path {value:?}: {reason}")]
    Path { value: String, reason: String },
    #[error("cgroup layout: {reason}")]
    Layout { reason: String },
    #[error("{path}: timed out waiting for {what}")]
    Timeout { path: PathBuf, what: &'static str },
    #[error("kill pid {pid}: {source}")]
    Kill { pid: i32, source: OsError },
    #[error("bpf {op} on {path}: {source}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        source: OsError,
    },
    #[error("bpf program load for {path}: {source}; verifier log: {log}")]
    BpfLoad {
        path: PathBuf,
        source: OsError,
        log: String,
    },
}

impl CgroupError {
    /// The errno behind an I/O failure, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Mkdir { source, .. }
            | CgroupError::Rmdir { source, .. }
            | CgroupError::Kill { source, .. }
            | CgroupError::Bpf { source, .. }
            | CgroupError::BpfLoad { source, .. } => source.errno(),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CgroupError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CgroupError::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
