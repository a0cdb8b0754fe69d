//! The built-in infra process: a static executable built from pause/pause.rs by build.rs
//! and embedded here, installed at start into a read-only rootfs every pod shares.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The pause executable.
pub const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-pause"));

/// Path of the binary inside the infra rootfs; the infra process's argv[0].
pub const PATH_IN_ROOTFS: &str = "/pause";

/// Fingerprint of [`BINARY`] (FNV-1a 64 and length), computed at build time.
const FINGERPRINT: &str = env!("BERTH_PAUSE_FINGERPRINT");

/// Writes the infra rootfs at `dir` (a directory with only `/pause` in it) unless it
/// already holds this very binary; returns the rootfs path. The check reads a
/// fingerprint file beside the rootfs, not the binary: comparing bytes would page the
/// embedded 1.2 MB into berthd's memory for good.
pub fn install(dir: &Path) -> Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    let target = rootfs.join("pause");
    let stamp = dir.join("pause.fingerprint");
    let same = fs::read_to_string(&stamp).is_ok_and(|f| f == FINGERPRINT)
        && fs::metadata(&target).is_ok_and(|m| m.len() == BINARY.len() as u64);
    if same {
        return Ok(rootfs);
    }
    fs::create_dir_all(&rootfs).map_err(Error::io("create", &rootfs))?;
    let tmp = rootfs.join(".pause.tmp");
    let mut f = fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(BINARY)
        .and_then(|()| f.set_permissions(fs::Permissions::from_mode(0o755)))
        .and_then(|()| f.sync_all())
        .map_err(Error::io("write", &tmp))?;
    fs::rename(&tmp, &target).map_err(Error::io("rename", &target))?;
    fs::write(&stamp, FINGERPRINT).map_err(Error::io("write", &stamp))?;
    Ok(rootfs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn installs_once_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = super::install(dir.path()).unwrap();
        let bin = rootfs.join("pause");
        let before = std::fs::metadata(&bin).unwrap().modified().unwrap();
        super::install(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&bin).unwrap().modified().unwrap(), before);
        let out = std::process::Command::new(&bin)
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("berth-pause "));
    }
}
