//! v2 freezer: cgroup.freeze, with cgroup.events "frozen 1" telling when it took effect.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::cgroups::{CgroupError, Result, fs};

pub(crate) fn set(dir: &Path, frozen: bool, timeout: Duration) -> Result<()> {
    fs::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        if is_frozen(dir)? == frozen {
            return Ok(());
        }
        if start.elapsed() > timeout {
            if frozen {
                let _ = fs::write(dir, "cgroup.freeze", "0");
            }
            return Err(CgroupError::Timeout {
                path: dir.join("cgroup.events"),
                what: if frozen { "frozen 1" } else { "frozen 0" },
            });
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fs::read_key(dir, "cgroup.events", "frozen")? == Some(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::{dir_with, read};

    #[test]
    fn waits_for_events() {
        let d = dir_with(&[
            ("cgroup.freeze", ""),
            ("cgroup.events", "populated 1\nfrozen 1\n"),
        ]);
        set(d.path(), true, Duration::from_millis(5)).unwrap();
        assert_eq!(read(d.path(), "cgroup.freeze"), "1\n");
        let e = set(d.path(), false, Duration::from_millis(5)).unwrap_err();
        assert!(e.to_string().contains("frozen 0"), "{e}");
    }
}
