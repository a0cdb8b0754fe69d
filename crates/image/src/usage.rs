//! Disk usage of a directory tree, as `du` counts it: allocated blocks, each inode once
//! (hard links are not counted twice), without crossing into other filesystems (a
//! snapshot's overlay mount is not counted on top of the layers it stacks).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::{Error, Result};

/// Bytes and inodes under one directory.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Allocated bytes (`st_blocks * 512`).
    pub bytes: u64,
    /// Inodes, the root directory included.
    pub inodes: u64,
}

/// Walks `root` (which need not exist: zero usage). Entries vanishing during the walk are
/// skipped.
pub fn disk_usage(root: &Path) -> Result<Usage> {
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Usage::default()),
        Err(e) => return Err(Error::io("stat", root)(e)),
    };
    let dev = meta.dev();
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    let mut stack = vec![(root.to_path_buf(), meta)];
    while let Some((path, meta)) = stack.pop() {
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        usage.bytes += meta.blocks() * 512;
        usage.inodes += 1;
        if !meta.is_dir() || meta.dev() != dev {
            continue;
        }
        let entries = match std::fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read directory", &path)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io("read directory", &path))?;
            let child = entry.path();
            match std::fs::symlink_metadata(&child) {
                // A mount point is counted as one inode of its parent filesystem, not walked.
                Ok(m) if m.dev() != dev => usage.inodes += 1,
                Ok(m) => stack.push((child, m)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("stat", &child)(e)),
            }
        }
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once_and_missing_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            disk_usage(&dir.path().join("absent")).unwrap(),
            Usage::default()
        );
        let root = dir.path().join("r");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a"), vec![7u8; 100_000]).unwrap();
        let one = disk_usage(&root).unwrap();
        assert_eq!(one.inodes, 3);
        assert!(one.bytes >= 100_000, "{one:?}");
        std::fs::hard_link(root.join("sub/a"), root.join("b")).unwrap();
        let two = disk_usage(&root).unwrap();
        assert_eq!(two.inodes, 3);
        assert_eq!(two.bytes, one.bytes);
    }
}
