//! `list`: every container under the state root.

use super::Runtime;
use crate::error::{Error, Result};
use crate::state::Container;

pub fn list(rt: &Runtime) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&rt.root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("read", &rt.root, e)),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    for id in ids {
        // A directory being created or deleted right now has no readable record: skip it.
        if let Ok(c) = Container::load(&rt.root, &id) {
            out.push(c.oci_state(c.status().as_str()));
        }
    }
    Ok(out)
}
