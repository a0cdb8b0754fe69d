//! `spec`: a starting config.json.

use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Writes the default config to `<bundle>/config.json`, refusing to overwrite one.
pub fn write_default(bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::Usage(format!(
            "{} already exists; remove it first",
            path.display()
        )));
    }
    let spec = oci_spec::runtime::Spec::default();
    let data =
        serde_json::to_vec_pretty(&spec).map_err(|e| Error::io("encode", &path, e.into()))?;
    std::fs::write(&path, data).ctx("write", &path)
}
