//! `state`: the OCI state of one container as JSON.

use super::Runtime;
use crate::error::Result;
use crate::state::Container;

pub fn state(rt: &Runtime, id: &str) -> Result<serde_json::Value> {
    let c = Container::load(&rt.root, id)?;
    Ok(c.oci_state(c.status().as_str()))
}
