//! berth-shim: the per-container supervisor between berthd and the OCI runtime.
//!
//! The binary (`src/main.rs`) daemonizes, creates the container through a runc-compatible
//! runtime, owns its stdio, writes the CRI log, reaps it, records its exit, and serves the
//! API in [`protocol`] on `<state-dir>/shim.sock`. [`client`] is the blocking client berthd
//! uses, and [`async_client`] (feature `tokio`) the same for async callers. See
//! docs/shim.md.

#[cfg(feature = "tokio")]
pub mod async_client;
pub mod client;
mod error;
pub mod logging;
pub mod protocol;
pub mod server;
pub mod sys;

pub use error::Error;
