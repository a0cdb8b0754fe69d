//! SPDY/3.1, as much of it as the Kubernetes streaming protocols use: berth is always the
//! server, the client opens every stream, nothing is pushed.

pub mod frame;
pub mod session;
pub mod zlib;

pub use session::{Connection, Stream, Writer};
