//! berth-sandbox: pods and containers.
//!
//! See docs/cri.md for how a pod is put together.

pub mod cni;
mod error;
pub mod netns;
pub mod spec;

pub use error::{Error, Result};
