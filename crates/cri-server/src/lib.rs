//! berthd: the CRI v1 server.
//!
//! [`server::serve`] binds the unix socket and serves [`runtime::RuntimeService`] and
//! [`image::ImageService`]. Each RPC lives in its own file under `runtime/` or `image/`;
//! what every RPC needs (a span, request/response logging, the error to status mapping)
//! is written once in [`instrument`] and [`error`].

#[macro_use]
mod instrument;

pub mod config;
pub mod error;
pub mod image;
pub mod metrics;
pub mod runtime;
pub mod server;

pub use error::{Error, Result};
