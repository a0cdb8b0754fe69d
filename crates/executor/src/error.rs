//! The executor's error type. Every variant names the container, field or path that failed.

use std::io;
use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container {0} does not exist")]
    NotExist(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {id} is {status}: cannot {action}")]
    BadState {
        id: String,
        status: &'static str,
        action: &'static str,
    },
    #[error("{path}: {source}")]
    Config {
        path: PathBuf,
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    #[error("{field}: {reason}")]
    InvalidSpec { field: String, reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{op}: {source}")]
    Sys { op: String, source: io::Error },
    #[error("hook {path}: {reason}")]
    Hook { path: PathBuf, reason: String },
    #[error("container init: {0}")]
    Init(String),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn sys(op: impl Into<String>, source: impl Into<io::Error>) -> Error {
        Error::Sys {
            op: op.into(),
            source: source.into(),
        }
    }

    pub fn spec(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// `Result` helpers that attach the operation and path to an io error.
pub trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e.into()))
    }
}
