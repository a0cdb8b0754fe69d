//! Pod network namespaces, pinned by a bind mount under berth's state dir.
//!
//! A pod's network namespace must outlive every process in it (the infra process may be
//! restarted, CNI plugins enter it after it is made), so it is pinned: the namespace file
//! `/proc/<tid>/ns/net` of the thread that made it is bind-mounted onto an empty file
//! `<dir>/<name>`. The mount is made in berthd's mount namespace (the host's), so CNI
//! plugins and `nsenter --net=<pin>` see it.
//!
//! berthd is a tokio process and `unshare(CLONE_NEWNET)` moves only the calling thread, so
//! the namespace is made on a fresh `std::thread` that pins it and then exits: no pooled
//! thread is ever left in a pod's network namespace.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use tracing::{debug, warn};

/// What can go wrong with a pinned namespace; each variant names the pin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid netns name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("netns pin {} already exists", path.display())]
    AlreadyExists { path: PathBuf },

    #[error("{} is not a pinned network namespace", path.display())]
    NotNetNs { path: PathBuf },

    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error("{op} {}: {source}", path.display())]
    Sys {
        op: &'static str,
        path: PathBuf,
        source: Errno,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A pinned network namespace. Dropping it does not remove it: call [`NetNs::remove`] (or
/// [`remove`] with the path) when the pod goes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    path: PathBuf,
}

impl NetNs {
    /// Makes a new network namespace and pins it at `dir/name` (`dir` is created if
    /// missing). Fails if the pin already exists.
    pub fn create(dir: &Path, name: &str) -> Result<NetNs> {
        validate_name(name)?;
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            op: "create netns dir",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(name);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists => Error::AlreadyExists { path: path.clone() },
                _ => Error::Io {
                    op: "create netns pin",
                    path: path.clone(),
                    source,
                },
            })?;

        let pin = path.clone();
        let made = std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn(move || unshare_and_pin(&pin))
            .map_err(|source| Error::Io {
                op: "spawn netns thread for",
                path: path.clone(),
                source,
            })?
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Io {
                    op: "netns thread panicked for",
                    path: path.clone(),
                    source: io::Error::other("panic"),
                })
            });
        if let Err(e) = made {
            if let Err(rm) = std::fs::remove_file(&path) {
                warn!(path = %path.display(), error = %rm, "remove netns pin after failure");
            }
            return Err(e);
        }
        debug!(path = %path.display(), "network namespace pinned");
        Ok(NetNs { path })
    }

    /// An existing pin: `path` must be a mounted network namespace file.
    pub fn open(path: &Path) -> Result<NetNs> {
        let st = nix::sys::statfs::statfs(path).map_err(|source| match source {
            Errno::ENOENT => Error::NotNetNs {
                path: path.to_path_buf(),
            },
            source => Error::Sys {
                op: "statfs",
                path: path.to_path_buf(),
                source,
            },
        })?;
        if st.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
            return Err(Error::NotNetNs {
                path: path.to_path_buf(),
            });
        }
        Ok(NetNs {
            path: path.to_path_buf(),
        })
    }

    /// The pin's path: what CNI_NETNS and the OCI spec's network namespace path get.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unpins the namespace (see [`remove`]).
    pub fn remove(self) -> Result<()> {
        remove(&self.path)
    }
}

/// Unmounts (lazily, so a process still inside keeps it alive) and unlinks a pin.
/// Idempotent: a missing or already unmounted pin is fine.
pub fn remove(path: &Path) -> Result<()> {
    // A pin mounted twice (a retried create racing) needs one unmount per mount.
    for _ in 0..16 {
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => break,
            Err(source) => {
                return Err(Error::Sys {
                    op: "unmount netns pin",
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => {
            debug!(path = %path.display(), "network namespace unpinned");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            op: "remove netns pin",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Runs on a thread of its own, which exits right after.
fn unshare_and_pin(pin: &Path) -> Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|source| Error::Sys {
        op: "unshare network namespace for",
        path: pin.to_path_buf(),
        source,
    })?;
    let tid = nix::unistd::gettid();
    let ns = PathBuf::from(format!("/proc/self/task/{tid}/ns/net"));
    nix::mount::mount(Some(&ns), pin, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(
        |source| Error::Sys {
            op: "bind mount network namespace onto",
            path: pin.to_path_buf(),
            source,
        },
    )
}

fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.contains('/') {
        "contains '/'"
    } else if name.starts_with('.') {
        "starts with '.'"
    } else if name.contains('\0') {
        "contains NUL"
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        name: name.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_rejected_before_anything_is_made() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", "a/b", ".", "..", ".hidden", "x\0y"] {
            let err = NetNs::create(dir.path(), name).unwrap_err();
            assert!(matches!(err, Error::InvalidName { .. }), "{name:?}: {err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_of_a_missing_pin_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        remove(&dir.path().join("gone")).unwrap();
    }

    #[test]
    fn open_of_a_plain_file_is_not_a_netns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain");
        std::fs::write(&path, "").unwrap();
        let err = NetNs::open(&path).unwrap_err();
        assert!(err.to_string().contains("plain"), "{err}");
        let err = NetNs::open(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, Error::NotNetNs { .. }), "{err}");
    }
}
