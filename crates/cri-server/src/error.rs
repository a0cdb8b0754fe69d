//! berthd's error type and its one mapping to gRPC status codes.

use std::path::PathBuf;

/// Everything a CRI call can fail with. Variants name the object or path at fault.
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

    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),

    #[error("{method} is not implemented yet")]
    Unimplemented { method: &'static str },

    /// The cause is part of the message (not a `source`), so it is printed once.
    #[error("{context} {}: {err}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },

    #[error("config: {0}")]
    Config(String),

    #[error("internal error: {0}")]
    Internal(String),

    /// A failure outside berthd, e.g. a registry refusing or failing a pull (containerd
    /// reports these as Unknown too). The message names the reference and the endpoints.
    #[error("{0}")]
    Unknown(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            err,
        }
    }

    /// The gRPC code this error is reported with.
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::NotFound { .. } => tonic::Code::NotFound,
            Error::InvalidArgument(_) => tonic::Code::InvalidArgument,
            Error::AlreadyExists { .. } => tonic::Code::AlreadyExists,
            Error::FailedPrecondition(_) => tonic::Code::FailedPrecondition,
            Error::Unimplemented { .. } => tonic::Code::Unimplemented,
            Error::DeadlineExceeded(_) => tonic::Code::DeadlineExceeded,
            Error::Io { err, .. } if err.kind() == std::io::ErrorKind::NotFound => {
                tonic::Code::NotFound
            }
            Error::Io { .. } | Error::Config(_) | Error::Internal(_) => tonic::Code::Internal,
            Error::Unknown(_) => tonic::Code::Unknown,
        }
    }
}

impl From<berth_image::Error> for Error {
    fn from(e: berth_image::Error) -> Self {
        use berth_image::Error as E;
        match e {
            E::InvalidReference { .. } | E::InvalidDigest { .. } | E::InvalidSnapshotId(_) => {
                Error::InvalidArgument(e.to_string())
            }
            E::ImageNotFound(name) => Error::NotFound {
                kind: "image",
                id: name,
            },
            E::Pinned(_) | E::SnapshotExists(_) => Error::FailedPrecondition(e.to_string()),
            // What the registry served or refused: not berthd's own failure.
            E::Registry { .. } | E::DigestMismatch { .. } | E::LayerTooLarge { .. } => {
                Error::Unknown(e.to_string())
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<berth_sandbox::Error> for Error {
    fn from(e: berth_sandbox::Error) -> Self {
        use berth_sandbox::Error as E;
        match e {
            E::NotFound { kind, id } => Error::NotFound { kind, id },
            E::AlreadyExists { kind, id } => Error::AlreadyExists { kind, id },
            E::InvalidArgument(m) => Error::InvalidArgument(m),
            E::FailedPrecondition(m) => Error::FailedPrecondition(m),
            E::Spec(berth_sandbox::spec::Error::InvalidArgument(m)) => Error::InvalidArgument(m),
            E::Image(e) => e.into(),
            E::DeadlineExceeded(m) => Error::DeadlineExceeded(m),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// The one place a berthd error becomes a gRPC status.
pub fn to_status(err: &Error) -> tonic::Status {
    tonic::Status::new(err.code(), err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_variant() {
        let cases = [
            (
                Error::NotFound {
                    kind: "container",
                    id: "abc".into(),
                },
                tonic::Code::NotFound,
            ),
            (
                Error::InvalidArgument("x".into()),
                tonic::Code::InvalidArgument,
            ),
            (
                Error::AlreadyExists {
                    kind: "pod sandbox",
                    id: "p".into(),
                },
                tonic::Code::AlreadyExists,
            ),
            (
                Error::FailedPrecondition("x".into()),
                tonic::Code::FailedPrecondition,
            ),
            (
                Error::Unimplemented { method: "m" },
                tonic::Code::Unimplemented,
            ),
            (Error::Internal("x".into()), tonic::Code::Internal),
            (Error::Unknown("x".into()), tonic::Code::Unknown),
            (
                Error::io(
                    "read",
                    "/nope",
                    std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                ),
                tonic::Code::Internal,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(to_status(&err).code(), code, "{err}");
        }
    }

    #[test]
    fn unimplemented_message_names_the_rpc() {
        let status = to_status(&Error::Unimplemented {
            method: "runtime.v1.RuntimeService/RunPodSandbox",
        });
        assert_eq!(
            status.message(),
            "runtime.v1.RuntimeService/RunPodSandbox is not implemented yet"
        );
    }
}
