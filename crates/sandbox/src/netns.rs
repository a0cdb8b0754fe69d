//! Pod network namespaces, pinned by a bind mount under berth's state dir.
//!
//! PLACEHOLDER API (being written on another branch).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("netns: {0}")]
pub struct Error(pub String);

pub struct NetNs {
    path: PathBuf,
}

impl NetNs {
    pub fn create(dir: &Path, name: &str) -> Result<NetNs, Error> {
        Err(Error(format!(
            "not written yet: {}",
            dir.join(name).display()
        )))
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn remove(_path: &Path) -> Result<(), Error> {
    Ok(())
}
