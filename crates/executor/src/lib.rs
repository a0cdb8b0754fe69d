//! berth-oci: a runc-compatible OCI runtime, as a library and a CLI.
//!
//! The executor is synchronous and single-threaded on purpose: it forks, and a fork from a
//! multi-threaded process may deadlock in the child. All `unsafe` code lives in [`sys`].

pub mod capabilities;
pub mod cgroups;
pub mod error;
pub mod hooks;
pub mod netdev;
pub mod ops;
pub mod process;
pub mod rootfs;
pub mod sealed;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;

pub use error::{Error, Result};
