use std::path::PathBuf;

/// Errors of the shim and its client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("run runtime {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime {op} failed ({status}): {stderr}")]
    Runtime {
        op: &'static str,
        status: String,
        stderr: String,
    },
    #[error("pid file {path} holds no pid")]
    BadPidFile { path: PathBuf },
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("console socket {path}: {message}")]
    Console { path: PathBuf, message: String },
    #[error("shim protocol: {0}")]
    Protocol(String),
    #[error("shim: {0}")]
    Remote(String),
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> Error {
        move |e| Error::Sys {
            what,
            source: e.into(),
        }
    }
}
