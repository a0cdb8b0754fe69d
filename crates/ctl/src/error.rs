//! berthctl's errors: each names what failed (the endpoint, the file, the call).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {endpoint}: is berthd running? ({reason})")]
    Connect { endpoint: String, reason: String },
    #[error("{call}: {message} (code {code:?})")]
    Rpc {
        call: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("{call}: timed out after {secs:.1}s (raise --timeout)")]
    Timeout { call: &'static str, secs: f64 },
    #[error("config file {path}: {message}")]
    Config { path: String, message: String },
    #[error("read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parse {path}: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("{what}: not supported by this berthctl yet ({why})")]
    Unsupported {
        what: &'static str,
        why: &'static str,
    },
    /// The streaming connection of exec, attach or port-forward failed, or the remote
    /// command failed other than by exiting non-zero.
    #[error("stream {0}")]
    Stream(String),
    #[error("write output: {0}")]
    Output(#[from] std::io::Error),
    /// A command's remote process exited non-zero: berthctl exits with its code.
    #[error("exit status {0}")]
    Exit(i32),
}

impl Error {
    pub fn rpc(call: &'static str, status: tonic::Status) -> Error {
        Error::Rpc {
            call,
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}
