//! Snapshots: a container's root filesystem as an overlay mount of image layers.
//!
//! ```text
//! <root>/<id>/snapshot.json   versioned record: the layers (chain IDs) it stacks, read-only or not
//! <root>/<id>/rootfs          the overlay mount point
//! <root>/<id>/upper, work     writable layer and overlay's work dir (not for read-only views)
//! <root>/<id>/empty           an empty lower dir, when the stack needs one (see below)
//! ```
//!
//! Long layer lists: mount(2) takes its options in one page (4 KiB), which a few dozen
//! layers under /var/lib/berth/images/layers/<64 hex>/fs fill. The overlay is built with the
//! new mount API instead, one `fsconfig(lowerdir+)` call per layer (Linux 6.8+), which has
//! no such limit. On older kernels it falls back to mount(2) with each directory given as a
//! short `/proc/self/fd/<n>` path of an fd held open during the call (about 18 bytes per
//! layer, so about 200 layers fit in a page); no chdir, which would race other threads.
//!
//! overlayfs refuses a stack with no upper dir and a single lower dir, and any stack with
//! no lower dir: an empty directory is added at the bottom in those cases (read-only view
//! of a one-layer image, container of an image with no layers).

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, unmount,
};
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use crate::{Digest, Error, Result, Store};

/// Version of the snapshot record format.
pub const SNAPSHOT_VERSION: u32 = 1;
const RECORD: &str = "snapshot.json";
const PAGE: usize = 4096;

/// One snapshot, persisted as `<id>/snapshot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub version: u32,
    pub id: String,
    /// Chain IDs of the stacked layers, bottom first.
    pub layers: Vec<Digest>,
    pub readonly: bool,
}

/// Makes and removes snapshots under one directory (`<berth root>/snapshots`).
pub struct Snapshotter {
    root: PathBuf,
    legacy_mount: bool,
}

impl Snapshotter {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
        Ok(Self {
            root,
            legacy_mount: false,
        })
    }

    /// Always mounts with mount(2) and `/proc/self/fd` paths, as on kernels before 6.8
    /// (tests use it to cover that path on any kernel).
    pub fn with_legacy_mount(mut self) -> Self {
        self.legacy_mount = true;
        self
    }

    fn dir(&self, id: &str) -> Result<PathBuf> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !ok {
            return Err(Error::InvalidSnapshotId(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    /// Mounts the layers `chain_ids` (bottom first, all unpacked in `store`) as the root
    /// filesystem of snapshot `id`, writable (with its own upper and work dirs) or a
    /// read-only view; returns the mount point. On failure nothing of `id` is left.
    pub fn prepare(
        &self,
        store: &Store,
        id: &str,
        chain_ids: &[Digest],
        readonly: bool,
    ) -> Result<PathBuf> {
        let dir = self.dir(id)?;
        for c in chain_ids {
            if !store.has_layer(c) {
                return Err(Error::LayerNotFound(c.clone()));
            }
        }
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::SnapshotExists(id.to_string()));
            }
            Err(e) => {
                return Err(Error::Io {
                    op: "create",
                    path: dir,
                    source: e,
                });
            }
        }
        let result = self.prepare_in(store, id, &dir, chain_ids, readonly);
        if result.is_err() {
            let _ = self.remove(id);
        }
        result
    }

    fn prepare_in(
        &self,
        store: &Store,
        id: &str,
        dir: &Path,
        chain_ids: &[Digest],
        readonly: bool,
    ) -> Result<PathBuf> {
        let record = SnapshotRecord {
            version: SNAPSHOT_VERSION,
            id: id.to_string(),
            layers: chain_ids.to_vec(),
            readonly,
        };
        write_atomic(
            &dir.join(RECORD),
            &serde_json::to_vec_pretty(&record).expect("snapshot record serializes"),
        )?;
        let rootfs = dir.join("rootfs");
        mkdir(&rootfs)?;
        // Top layer first, as overlayfs wants them.
        let mut lowers: Vec<PathBuf> = chain_ids
            .iter()
            .rev()
            .map(|c| store.layer_path(c))
            .collect();
        if lowers.len() < if readonly { 2 } else { 1 } {
            let empty = dir.join("empty");
            mkdir(&empty)?;
            lowers.push(empty);
        }
        let upper = if readonly {
            None
        } else {
            let (u, w) = (dir.join("upper"), dir.join("work"));
            mkdir(&u)?;
            mkdir(&w)?;
            Some((u, w))
        };
        mount_overlay(
            &lowers,
            upper.as_ref().map(|(u, w)| (u.as_path(), w.as_path())),
            &rootfs,
            readonly,
        )?;
        info!(
            snapshot = id,
            layers = chain_ids.len(),
            readonly,
            "snapshot mounted"
        );
        Ok(rootfs)
    }

    /// The mount point of snapshot `id` (whether or not it exists).
    pub fn rootfs(&self, id: &str) -> Result<PathBuf> {
        Ok(self.dir(id)?.join("rootfs"))
    }

    /// Unmounts and deletes snapshot `id`; a missing one is not an error.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        if !dir.exists() {
            return Ok(());
        }
        let rootfs = dir.join("rootfs");
        match unmount(&rootfs, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
            Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(Error::Io {
                    op: "unmount",
                    path: rootfs,
                    source: e.into(),
                });
            }
        }
        // Never delete through a mount that is still there.
        if let (Ok(a), Ok(b)) = (fs::symlink_metadata(&rootfs), fs::symlink_metadata(&dir)) {
            if a.dev() != b.dev() {
                return Err(Error::Io {
                    op: "remove",
                    path: rootfs,
                    source: io::Error::other("still a mount point after unmount"),
                });
            }
        }
        fs::remove_dir_all(&dir).map_err(Error::io("remove", &dir))?;
        debug!(snapshot = id, "snapshot removed");
        Ok(())
    }

    /// All snapshot records.
    pub fn list(&self) -> Result<Vec<SnapshotRecord>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).map_err(Error::io("read directory", &self.root))? {
            let p = e
                .map_err(Error::io("read directory", &self.root))?
                .path()
                .join(RECORD);
            let bytes = match fs::read(&p) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Io {
                        op: "read",
                        path: p,
                        source: e,
                    });
                }
            };
            let rec: SnapshotRecord =
                serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                    path: p.clone(),
                    reason: e.to_string(),
                })?;
            out.push(rec);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Chain IDs of every layer some snapshot stacks: what image GC must keep.
    pub fn layers_in_use(&self) -> Result<HashSet<Digest>> {
        Ok(self.list()?.into_iter().flat_map(|r| r.layers).collect())
    }
}

/// Mounts an overlay of `lowers` (top first) with an optional (upper, work) at `target`.
fn mount_overlay(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
    readonly: bool,
) -> Result<()> {
    let err = |op: &'static str| {
        move |e: Errno| Error::Io {
            op,
            path: target.to_path_buf(),
            source: e.into(),
        }
    };
    let fsfd = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(err("fsopen overlay for"))?;
    match fsconfig_set_string(&fsfd, "lowerdir+", lowers[0].as_path()) {
        Ok(()) => {}
        Err(Errno::INVAL) => {
            debug!("overlay has no lowerdir+ (kernel before 6.8): mount(2) with fd paths");
            return mount_overlay_legacy(lowers, upper, target, readonly);
        }
        Err(e) => {
            return Err(Error::Io {
                op: "add overlay lower dir",
                path: lowers[0].clone(),
                source: e.into(),
            });
        }
    }
    for l in &lowers[1..] {
        fsconfig_set_string(&fsfd, "lowerdir+", l.as_path()).map_err(|e| Error::Io {
            op: "add overlay lower dir",
            path: l.clone(),
            source: e.into(),
        })?;
    }
    if let Some((u, w)) = upper {
        fsconfig_set_string(&fsfd, "upperdir", u).map_err(|e| Error::Io {
            op: "set overlay upper dir",
            path: u.into(),
            source: e.into(),
        })?;
        fsconfig_set_string(&fsfd, "workdir", w).map_err(|e| Error::Io {
            op: "set overlay work dir",
            path: w.into(),
            source: e.into(),
        })?;
    }
    fsconfig_create(&fsfd).map_err(err("create overlay for"))?;
    let attrs = if readonly {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt =
        fsmount(&fsfd, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(err("fsmount overlay for"))?;
    move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(err("move overlay mount to"))
}

/// mount(2) with every directory named `/proc/self/fd/<n>` to keep the options in a page.
fn mount_overlay_legacy(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
    readonly: bool,
) -> Result<()> {
    let open = |p: &Path| -> Result<OwnedFd> {
        rustix::fs::open(
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Io {
            op: "open",
            path: p.to_path_buf(),
            source: e.into(),
        })
    };
    let fd_path = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let lower_fds = lowers.iter().map(|l| open(l)).collect::<Result<Vec<_>>>()?;
    let mut data = format!(
        "lowerdir={}",
        lower_fds.iter().map(fd_path).collect::<Vec<_>>().join(":")
    );
    let upper_fds = match upper {
        Some((u, w)) => {
            let (u, w) = (open(u)?, open(w)?);
            data.push_str(&format!(
                ",upperdir={},workdir={}",
                fd_path(&u),
                fd_path(&w)
            ));
            Some((u, w))
        }
        None => None,
    };
    if data.len() >= PAGE {
        return Err(Error::Io {
            op: "mount overlay on",
            path: target.to_path_buf(),
            source: io::Error::other(format!(
                "{} layers do not fit in mount options on this kernel",
                lowers.len()
            )),
        });
    }
    let data = CString::new(data).expect("no NUL in fd paths");
    let flags = if readonly {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    };
    rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str()).map_err(|e| {
        Error::Io {
            op: "mount overlay on",
            path: target.to_path_buf(),
            source: e.into(),
        }
    })?;
    drop((lower_fds, upper_fds));
    Ok(())
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir(p).map_err(Error::io("create", p))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension("tmp");
    let mut f = File::create(&temp).map_err(Error::io("create", &temp))?;
    f.write_all(bytes).map_err(Error::io("write", &temp))?;
    f.sync_all().map_err(Error::io("sync", &temp))?;
    fs::rename(&temp, path).map_err(Error::io("rename into place", path))
}
