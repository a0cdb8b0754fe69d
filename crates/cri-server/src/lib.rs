//! berthd: the CRI v1 server.
//!
//! [`server::serve`] binds the unix socket and serves [`runtime::RuntimeService`] and
//! [`image::ImageService`]. Each RPC lives in its own file under `runtime/` or `image/`;
//! what every RPC needs (a span, request/response logging, the error to status mapping)
//! is written once in [`instrument`] and [`error`]. Exec, Attach and PortForward hand out
//! URLs of the [`streaming`] server, which berthd runs beside the gRPC one.

#[macro_use]
mod instrument;

pub mod config;
pub mod error;
pub mod image;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod streaming;

pub use error::{Error, Result};
