//! v1 freezer: freezer.state. No OCI resource field writes it; the executor's pause and resume
//! (and kill_all) use `set`.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::cgroups::{CgroupError, Result, fs};

const STATE: &str = "freezer.state";

/// Writes FROZEN or THAWED and waits until the state reads back so (FREEZING is transient).
pub(crate) fn set(dir: &Path, frozen: bool, timeout: Duration) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        fs::write(dir, STATE, want)?;
        if fs::read(dir, STATE)?.trim() == want {
            return Ok(());
        }
        if start.elapsed() > timeout {
            // leave it thawed rather than half frozen
            if frozen {
                let _ = fs::write(dir, STATE, "THAWED");
            }
            return Err(CgroupError::Timeout {
                path: dir.join(STATE),
                what: if frozen { "FROZEN" } else { "THAWED" },
            });
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fs::read(dir, STATE)?.trim() == "FROZEN")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir_with, read};

    #[test]
    fn fixture_freeze_reads_back() {
        // a plain file keeps what was appended, so the read-back is "THAWED\nFROZEN\n":
        // not FROZEN -> must time out, and thaw again
        let d = dir_with(&[(STATE, "THAWED\n")]);
        let e = set(d.path(), true, Duration::from_millis(5)).unwrap_err();
        assert!(
            e.to_string().contains("timed out waiting for FROZEN"),
            "{e}"
        );
        assert!(read(d.path(), STATE).ends_with("THAWED\n"));
        let d = dir_with(&[(STATE, "")]);
        set(d.path(), true, Duration::from_millis(5)).unwrap();
        assert!(is_frozen(d.path()).unwrap());
    }
}
