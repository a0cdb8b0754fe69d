//! The sandbox crate's error: variants name the pod, container or path at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },

    #[error("failed precondition: {0}")]
    FailedPrecondition(String),

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(transparent)]
    Spec(#[from] crate::spec::Error),

    #[error(transparent)]
    Cni(#[from] crate::cni::Error),

    #[error(transparent)]
    NetNs(#[from] crate::netns::Error),

    #[error(transparent)]
    Image(#[from] berth_image::Error),

    #[error("shim: {0}")]
    Shim(#[from] berth_shim::Error),

    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),

    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// For `map_err`: an I/O error with the operation and the path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
