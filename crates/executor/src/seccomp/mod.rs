//! Seccomp for the container init process: the `linux.seccomp` section of an OCI spec turned into
//! a libseccomp filter.
//!
//! Three steps, in three places of `create`:
//!
//! 1. [`validate`] in the runtime process, before any fork, so that a bad profile fails the
//!    `create` call cleanly. It checks the profile's shape and then builds (but never loads) a
//!    libseccomp filter from it, so anything libseccomp would refuse is caught here too.
//! 2. [`compile`] in the container init process (single-threaded, after fork), which returns a
//!    [`Filter`].
//! 3. [`Filter::load`] as late as possible: right before `execve` when `noNewPrivileges` is true,
//!    or right before capabilities are dropped when it is false (loading a filter without
//!    `no_new_privs` needs `CAP_SYS_ADMIN`). `load` never sets `no_new_privs` itself: the caller
//!    does, from `process.noNewPrivileges`.
//!
//! Whatever runs between `load` and `execve` runs under the filter. The caller must make sure a
//! profile cannot kill or block its own last steps (typically `write`/`sendmsg` on the sync
//! socket to hand over the listener fd, `close`, `execve`); see docs/seccomp.md.

mod convert;
mod features;
mod filter;
mod profile;

pub use features::features;
pub use filter::{Filter, compile};
pub use profile::validate;

/// Result of the seccomp functions.
pub type Result<T> = std::result::Result<T, SeccompError>;

/// What can go wrong between a profile and a loaded filter. `field` is the path of the offending
/// field below `linux.seccomp`, for example `syscalls[3].names[0]`.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile breaks a rule of the runtime spec or of this runtime.
    #[error("linux.seccomp.{field}: {reason}")]
    Invalid { field: String, reason: String },

    /// The profile asks for something this libseccomp or kernel does not provide.
    #[error("linux.seccomp.{field}: {what} is not supported here: {source}")]
    Unsupported {
        field: String,
        what: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// libseccomp refused a rule built from the profile.
    #[error("linux.seccomp.{field}: add rule for syscall {syscall:?}: {source}")]
    AddRule {
        field: String,
        syscall: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// libseccomp could not create or configure the filter context.
    #[error("linux.seccomp: {step}: {source}")]
    Context {
        step: &'static str,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// The kernel refused the filter.
    #[error("load seccomp filter: {source}")]
    Load {
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// The filter was loaded but its listener fd could not be taken.
    #[error("take seccomp listener fd: {reason}")]
    Listener { reason: String },
}

impl SeccompError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
