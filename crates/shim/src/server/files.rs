//! The files in a shim's state directory.
//!
//! ```text
//! <state-dir>/shim.sock      the API socket
//! <state-dir>/shim.pid       the shim's pid
//! <state-dir>/init.pid       the container's pid (written by the runtime)
//! <state-dir>/exit.json      how the container ended (ExitStatus), written atomically at exit
//! <state-dir>/shim.log       the shim's own log (stderr of the daemon)
//! <state-dir>/console.sock   transient: console socket for create
//! <state-dir>/exec-<id>.json, exec-<id>.pid, exec-console.sock: transient, for one exec
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

pub fn socket(state_dir: &Path) -> PathBuf {
    state_dir.join("shim.sock")
}
pub fn shim_pid(state_dir: &Path) -> PathBuf {
    state_dir.join("shim.pid")
}
pub fn init_pid(state_dir: &Path) -> PathBuf {
    state_dir.join("init.pid")
}
pub fn exit_status(state_dir: &Path) -> PathBuf {
    state_dir.join("exit.json")
}
pub fn shim_log(state_dir: &Path) -> PathBuf {
    state_dir.join("shim.log")
}

/// Writes `data` to `path` through a temporary file, fsync and rename: a reader sees the old
/// content or the new, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(Error::io("create", &tmp))?;
    f.write_all(data).map_err(Error::io("write", &tmp))?;
    f.sync_all().map_err(Error::io("fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("rename to", path))
}
