//! berth-image: image references, digests, safe layer unpack and the content store.
//!
//! See docs/images.md for the on-disk layout and the unpack safety rules.

pub mod auth;
pub mod digest;
mod error;
pub mod hosts;
pub mod pull;
pub mod reference;
pub mod snapshot;
pub mod store;
pub mod unpack;
pub mod usage;

pub use auth::DockerConfig;
pub use digest::{Digest, chain_ids};
pub use error::{Error, Result};
pub use hosts::Endpoint;
pub use pull::{PullConfig, Puller, RegistryAuth};
pub use reference::Reference;
pub use snapshot::Snapshotter;
pub use store::{ImageConfig, ImageRecord, LayerRecord, Store};
