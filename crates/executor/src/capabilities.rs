//! The five capability sets of the container process.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

fn to_caps(set: Option<&Capabilities>) -> CapsHashSet {
    let mut out = HashSet::new();
    for c in set.into_iter().flatten() {
        // oci-spec serializes capabilities with their kernel names ("CAP_SYS_ADMIN").
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        match name.as_deref().map(Capability::from_str) {
            Some(Ok(cap)) => {
                out.insert(cap);
            }
            // Unknown to this kernel or to the caps crate: nothing to grant.
            _ => tracing::debug!(capability = ?c, "capability not known here; skipped"),
        }
    }
    out
}

/// Drops every capability not in the bounding set. Needs CAP_SETPCAP, so it runs before the
/// user changes.
pub fn apply_bounding(c: Option<&LinuxCapabilities>) -> Result<()> {
    let Some(c) = c else { return Ok(()) };
    let keep = to_caps(c.bounding().as_ref());
    for cap in caps::all() {
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                Error::sys(
                    format!("drop bounding {cap}"),
                    std::io::Error::other(e.to_string()),
                )
            })?;
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable exactly as asked (nothing inheritable unless the
/// spec asks: CVE-2022-29162), then raises the ambient ones.
pub fn apply(c: Option<&LinuxCapabilities>) -> Result<()> {
    let empty = LinuxCapabilities::default();
    let c = c.unwrap_or(&empty);
    let err = |what: &str, e: caps::errors::CapsError| {
        Error::sys(
            format!("set {what} capabilities"),
            std::io::Error::other(e.to_string()),
        )
    };
    let permitted = to_caps(c.permitted().as_ref());
    let effective = to_caps(c.effective().as_ref());
    let inheritable = to_caps(c.inheritable().as_ref());
    // Effective must be a subset of permitted; set permitted first when widening is impossible
    // anyway (we only ever narrow from full root).
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| err("inheritable", e))?;
    caps::set(
        None,
        CapSet::Effective,
        &effective.intersection(&permitted).copied().collect(),
    )
    .map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| err("permitted", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    // The kernel raises an ambient capability only if it is permitted and inheritable; like
    // runc, one that cannot be raised is skipped, not fatal.
    for cap in to_caps(c.ambient().as_ref()) {
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            tracing::debug!(capability = %cap, error = %e, "ambient capability not raised");
        }
    }
    Ok(())
}
