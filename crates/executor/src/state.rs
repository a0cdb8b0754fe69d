//! The persisted record of one container and its lifecycle.
//!
//! ```text
//!   create ──► Created ──start──► Running ◄──resume── Paused
//!                 │                  │   └──pause──────►│
//!                 │ kill/exit        │ exit/kill        │ kill
//!                 ▼                  ▼                  ▼
//!              Stopped ◄─────────────────────────────────┘ ──delete──► (gone)
//! ```
//!
//! The status is not stored: it is derived each time from the init process (alive, and the
//! same process by its start time), the exec fifo (present until `start`) and the freezer.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Bumped whenever the record's shape changes incompatibly.
pub const STATE_VERSION: u32 = 1;
pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
    pub fn can_start(self) -> bool {
        self == Status::Created
    }
    pub fn can_kill(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
    pub fn can_delete(self) -> bool {
        matches!(self, Status::Created | Status::Stopped)
    }
    pub fn can_pause(self) -> bool {
        self == Status::Running
    }
    pub fn can_resume(self) -> bool {
        self == Status::Paused
    }
    pub fn can_exec(self) -> bool {
        self == Status::Running
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub id: String,
    pub pid: i32,
    /// Start time of the init process (field 22 of /proc/<pid>/stat), to tell it from a
    /// recycled pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub cgroup_path: PathBuf,
    pub spec: Spec,
}

/// A container's directory under the state root, and its record.
#[derive(Debug)]
pub struct Container {
    pub dir: PathBuf,
    pub record: Record,
}

pub fn check_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("not a name");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        return bad("only letters, digits and _+-. are allowed");
    }
    Ok(())
}

impl Container {
    pub fn load(root: &Path, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = root.join(id);
        let path = dir.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotExist(id.to_owned()));
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let record: Record = serde_json::from_slice(&data)
            .map_err(|e| Error::io("parse", &path, std::io::Error::other(e)))?;
        if record.version != STATE_VERSION {
            return Err(Error::io(
                "parse",
                &path,
                std::io::Error::other(format!(
                    "state version {} is not {STATE_VERSION}",
                    record.version
                )),
            ));
        }
        Ok(Container { dir, record })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// Writes the record atomically.
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        let data =
            serde_json::to_vec(&self.record).map_err(|e| Error::io("encode", &path, e.into()))?;
        write_atomic(&path, &data)
    }

    /// Whether the init process is the one this record names, and not a zombie.
    pub fn init_alive(&self) -> bool {
        self.record.pid > 0
            && proc_start_time(self.record.pid).is_some_and(|t| t == self.record.pid_start)
    }

    pub fn cgroup(&self) -> Result<crate::cgroups::Cgroup> {
        let layout = crate::cgroups::Layout::cached()?;
        Ok(crate::cgroups::Cgroup::new(
            layout,
            &self.record.cgroup_path,
        ))
    }

    pub fn status(&self) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        if self
            .cgroup()
            .ok()
            .and_then(|cg| cg.is_frozen().ok())
            .unwrap_or(false)
        {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state of this container, as `state` prints it and hooks receive it.
    pub fn oci_state(&self, status: &str) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.record.spec.version(),
            "id": self.record.id,
            "pid": if status == "stopped" { 0 } else { self.record.pid },
            "status": status,
            "bundle": self.record.bundle,
            "rootfs": self.record.rootfs,
            "created": self.record.created,
            "owner": self.record.owner,
        });
        if let Some(a) = self.record.spec.annotations() {
            if !a.is_empty() {
                v["annotations"] = serde_json::to_value(a).unwrap_or_default();
            }
        }
        v
    }

    pub fn bad_state(&self, status: Status, action: &'static str) -> Error {
        Error::BadState {
            id: self.record.id.clone(),
            status: status.as_str(),
            action,
        }
    }
}

/// Writes a file atomically (temp file, rename). No fsync: the state root is volatile (/run),
/// and a container's record is worthless after a host crash anyway; fsync on a disk-backed
/// /run costs milliseconds per container.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).ctx("create", &tmp)?;
    f.write_all(data).ctx("write", &tmp)?;
    drop(f);
    fs::rename(&tmp, path).ctx("rename", path)
}

/// Start time (clock ticks since boot) of a live, non-zombie process.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3 (state); starttime is field 22.
    fields.nth(18)?.parse().ok()
}

/// Now, as RFC 3339 with nanoseconds in UTC, the way runc prints `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}
