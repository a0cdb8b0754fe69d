use std::path::PathBuf;

use crate::Digest;

/// Errors of berth-image. Each names what failed (the reference, digest, path or entry).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest { digest: String, reason: String },

    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: &'static str,
        expected: Digest,
        actual: Digest,
    },

    #[error("layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },

    #[error("layer {digest} unpacks to more than {limit} bytes (the configured maximum)")]
    LayerTooLarge { digest: Digest, limit: u64 },

    #[error("read layer: {0}")]
    Layer(#[source] std::io::Error),

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },

    #[error("image {0:?} not found")]
    ImageNotFound(String),

    #[error("blob {0} not found")]
    BlobNotFound(Digest),

    #[error("layer {0} not found")]
    LayerNotFound(Digest),

    #[error(
        "invalid snapshot id {0:?}: letters, digits, '_', '.' and '-' only, 1 to 128, not starting with '.'"
    )]
    InvalidSnapshotId(String),

    #[error("snapshot {0:?} already exists")]
    SnapshotExists(String),

    #[error("pull {reference}: {reason}")]
    Registry { reference: String, reason: String },

    #[error("image {0} is pinned")]
    Pinned(String),
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
