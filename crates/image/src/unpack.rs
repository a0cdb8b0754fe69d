//! Safe layer unpack: one layer tar stream (gzip, zstd or uncompressed, told apart by their
//! magic bytes) into one directory, in overlayfs form.
//!
//! The rules (docs/images.md has the long form):
//!
//! - Nothing is ever written through a host path. The temp directory is opened once; every
//!   entry's parent is reached from that fd one component at a time with
//!   `openat(O_DIRECTORY | O_NOFOLLOW)`, and the entry is made with the `*at` calls relative to
//!   the parent's fd. A symlink met on the way is never followed: the entry is refused.
//! - Entry names are cleaned: a leading `/` and `.` components are dropped, a `..` component
//!   refuses the layer. So absolute names land inside the layer, and nothing climbs out.
//! - A hard link's target is looked up inside the layer the same way, and `linkat` is called
//!   without `AT_SYMLINK_FOLLOW`; a link to anything not in the layer fails.
//! - Symlinks are written as they are (an absolute target is normal in images: it is resolved
//!   inside the container's root at run time) and are never followed here.
//! - An existing name is unlinked before a new non-directory is created, and files are
//!   created with `O_CREAT | O_EXCL | O_NOFOLLOW`: a symlink left by an earlier entry can never
//!   redirect a write.
//! - `xattrs` named `trusted.overlay.*` / `user.overlay.*` in the tar are dropped: a layer must
//!   not forge overlayfs metadata (redirects, metacopy, opaque markers of its own).
//! - Whiteouts become overlayfs whiteouts: `.wh.NAME` a 0/0 character device `NAME`,
//!   `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory.
//! - The layer is unpacked into a temp directory beside the target, and renamed onto the
//!   target only once both digests (compressed blob and uncompressed diffID) have been
//!   checked; on any error the temp directory is removed.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps, XattrFlags};
use rustix::io::Errno;
use tar::EntryType;
use tracing::debug;

use crate::digest::HashingReader;
use crate::{Digest, Error, Result};

/// Prefix of the temp directories a layer is unpacked into; left-overs from a crash carry it.
pub const TEMP_PREFIX: &str = ".tmp-";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an unpack saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// sha256 of the stream as read (the blob digest).
    pub digest: Digest,
    /// sha256 of the uncompressed tar (the diffID).
    pub diff_id: Digest,
    /// Bytes read (compressed size).
    pub size: u64,
    /// Bytes of uncompressed tar.
    pub uncompressed_size: u64,
}

/// Compression of a layer stream, as found by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            _ => Self::None,
        }
    }
}

/// Unpacks the layer read from `blob` into the directory `target` (which must not exist; its
/// parent must). `digest` is the blob's expected digest; `diff_id`, if given, the expected
/// digest of the uncompressed tar. On success `target` holds the whole layer; on failure
/// nothing is left beside it.
pub fn unpack_layer(
    blob: impl Read,
    target: &Path,
    digest: &Digest,
    diff_id: Option<&Digest>,
) -> Result<Unpacked> {
    unpack_layer_limited(blob, target, digest, diff_id, DEFAULT_MAX_LAYER_BYTES)
}

/// The default cap on what one layer may unpack to: 64 GiB.
pub const DEFAULT_MAX_LAYER_BYTES: u64 = 64 << 30;

/// [`unpack_layer`], refusing the layer (`LayerTooLarge`, nothing left behind) once its
/// uncompressed tar stream, or the file data it writes (sparse entries expand), passes
/// `max_bytes`: a decompression bomb stops at the cap instead of filling the disk.
pub fn unpack_layer_limited(
    blob: impl Read,
    target: &Path,
    digest: &Digest,
    diff_id: Option<&Digest>,
    max_bytes: u64,
) -> Result<Unpacked> {
    let (parent, name) = match (target.parent(), target.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => {
            return Err(Error::Corrupt {
                path: target.to_path_buf(),
                reason: "layer target needs a parent directory and a name".into(),
            });
        }
    };
    let temp = TempDir::create(parent, name)?;
    let root = rfs::open(
        &temp.path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open", &temp.path)(e.into()))?;
    // 0755 whatever the umask; a "./" entry in the tar may change it.
    rfs::fchmod(&root, Mode::from_raw_mode(0o755))
        .map_err(|e| Error::io("chmod", &temp.path)(e.into()))?;

    let mut compressed = HashingReader::new(blob);
    let mut head = Vec::with_capacity(4);
    (&mut compressed)
        .take(4)
        .read_to_end(&mut head)
        .map_err(Error::Layer)?;
    let stream = io::Cursor::new(head.clone()).chain(&mut compressed);
    let decoder: Box<dyn Read + '_> = match Compression::detect(&head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(stream)
                .map_err(|e| Error::Layer(io::Error::new(io::ErrorKind::InvalidData, e)))?,
        ),
        Compression::None => Box::new(stream),
    };
    let exceeded = Cell::new(false);
    let mut plain = HashingReader::new(Capped {
        inner: decoder,
        left: max_bytes,
        exceeded: &exceeded,
    });
    let too_large = || Error::LayerTooLarge {
        digest: digest.clone(),
        limit: max_bytes,
    };
    let mut writer = Writer {
        root: root.as_fd(),
        target,
        privileged: rustix::process::geteuid().is_root(),
        dirs: Vec::new(),
        data_left: max_bytes,
        too_large: &too_large,
    };
    let entries = (|| {
        let mut archive = tar::Archive::new(&mut plain);
        for entry in archive.entries().map_err(Error::Layer)? {
            let mut entry = entry.map_err(Error::Layer)?;
            writer.entry(&mut entry)?;
        }
        Ok(())
    })();
    match entries {
        Err(_) if exceeded.get() => return Err(too_large()),
        other => other?,
    }
    writer.finish_dirs()?;
    let (got_diff_id, uncompressed_size) = plain.finish().map_err(Error::Layer)?;
    let (got_digest, size) = compressed.finish().map_err(Error::Layer)?;
    if &got_digest != digest {
        return Err(Error::DigestMismatch {
            what: "layer blob",
            expected: digest.clone(),
            actual: got_digest,
        });
    }
    if let Some(want) = diff_id {
        if *want != got_diff_id {
            return Err(Error::DigestMismatch {
                what: "layer diffID",
                expected: want.clone(),
                actual: got_diff_id,
            });
        }
    }
    drop(root);
    temp.commit(target)?;
    debug!(target = %target.display(), %digest, diff_id = %got_diff_id, "layer unpacked");
    Ok(Unpacked {
        digest: got_digest,
        diff_id: got_diff_id,
        size,
        uncompressed_size,
    })
}

/// A reader that fails once more than `left` bytes have come through, and says so in
/// `exceeded` (the error itself reaches the caller wrapped by the tar reader).
struct Capped<'a, R> {
    inner: R,
    left: u64,
    exceeded: &'a Cell<bool>,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.exceeded.set(true);
            return Err(io::Error::other("layer larger than the configured maximum"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A temp directory that is removed unless committed.
struct TempDir {
    path: PathBuf,
    committed: bool,
}

impl TempDir {
    fn create(parent: &Path, name: &OsStr) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut n = OsString::from(TEMP_PREFIX);
        n.push(name);
        n.push(format!(
            "-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let path = parent.join(n);
        rfs::mkdir(&path, Mode::from_raw_mode(0o755))
            .map_err(|e| Error::io("create", &path)(e.into()))?;
        Ok(Self {
            path,
            committed: false,
        })
    }

    fn commit(mut self, target: &Path) -> Result<()> {
        std::fs::rename(&self.path, target).map_err(Error::io("rename into place", target))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.committed {
            // std's remove_dir_all does not follow symlinks (it walks with openat/O_NOFOLLOW).
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "remove unfinished layer");
            }
        }
    }
}

/// Metadata of one entry, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

struct Writer<'a> {
    root: BorrowedFd<'a>,
    target: &'a Path,
    privileged: bool,
    /// File data that may still be written before the layer is too large.
    data_left: u64,
    too_large: &'a dyn Fn() -> Error,
    /// Directories whose mode and mtime are set last (children change a directory's mtime,
    /// and a read-only mode would stop an unprivileged unpack from filling it).
    dirs: Vec<(Vec<OsString>, Meta)>,
}

impl Writer<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let unsafe_entry = |reason: &str| Error::UnsafeEntry {
            entry: shown.clone(),
            reason: reason.to_string(),
        };
        let comps = clean(&raw_path).map_err(&unsafe_entry)?;
        let kind = entry.header().entry_type();
        let meta = meta(entry).map_err(Error::Layer)?;
        let io_err = |op: &'static str| {
            let path = self.target.join(&shown);
            move |e: Errno| Error::Io {
                op,
                path,
                source: e.into(),
            }
        };

        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself ("./").
            if kind.is_dir() {
                let fd = rfs::openat(self.root, ".", dir_flags(), Mode::empty())
                    .map_err(io_err("open"))?;
                self.apply_fd(&fd, &meta, &shown)?;
                self.dirs.push((Vec::new(), meta));
            }
            return Ok(());
        };
        let name_bytes = name.as_bytes();

        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        if parents
            .iter()
            .any(|c| c.as_bytes().starts_with(WHITEOUT_META_PREFIX))
        {
            debug!(entry = %shown, "skipping aufs metadata entry");
            return Ok(());
        }
        let parent = open_dir(self.root, parents, true).map_err(|r| unsafe_entry(&r))?;

        if name_bytes == OPAQUE_MARKER {
            rfs::fsetxattr(&parent, OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(io_err("set opaque xattr on parent of"))?;
            return Ok(());
        }
        if name_bytes.starts_with(WHITEOUT_META_PREFIX) {
            debug!(entry = %shown, "skipping aufs metadata entry");
            return Ok(());
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(unsafe_entry("whiteout of an invalid name"));
            }
            let hidden = OsStr::from_bytes(hidden);
            remove_existing(&parent, hidden, false).map_err(io_err("remove before whiteout"))?;
            rfs::mknodat(
                &parent,
                hidden,
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(io_err("create whiteout for"))?;
            return Ok(());
        }

        match kind {
            EntryType::Directory => {
                remove_existing(&parent, name, true).map_err(io_err("replace"))?;
                match rfs::mkdirat(&parent, name.as_os_str(), Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io_err("mkdir")(e)),
                }
                let fd = rfs::openat(&parent, name.as_os_str(), dir_flags(), Mode::empty())
                    .map_err(io_err("open"))?;
                self.apply_fd(&fd, &meta, &shown)?;
                self.dirs.push((comps.clone(), meta));
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&parent, name, false).map_err(io_err("replace"))?;
                let fd = rfs::openat(
                    &parent,
                    name.as_os_str(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(io_err("create"))?;
                let mut file = File::from(fd);
                let n = io::copy(&mut (&mut *entry).take(self.data_left + 1), &mut file)
                    .map_err(Error::Layer)?;
                if n > self.data_left {
                    return Err((self.too_large)());
                }
                self.data_left -= n;
                self.apply_fd(&file, &meta, &shown)?;
                rfs::futimens(&file, &times(meta.mtime)).map_err(io_err("set times of"))?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("symlink without a target"))?;
                remove_existing(&parent, name, false).map_err(io_err("replace"))?;
                rfs::symlinkat(OsStr::from_bytes(&link), &parent, name.as_os_str())
                    .map_err(io_err("symlink"))?;
                if self.privileged {
                    rfs::chownat(
                        &parent,
                        name.as_os_str(),
                        Some(uid(meta.uid)),
                        Some(gid(meta.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(io_err("chown"))?;
                }
                rfs::utimensat(
                    &parent,
                    name.as_os_str(),
                    &times(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io_err("set times of"))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("hard link without a target"))?;
                let target =
                    clean(&link).map_err(|r| unsafe_entry(&format!("hard link target: {r}")))?;
                let Some((tname, tparents)) = target.split_last() else {
                    return Err(unsafe_entry("hard link to the layer root"));
                };
                let tdir = open_dir(self.root, tparents, false)
                    .map_err(|r| unsafe_entry(&format!("hard link target: {r}")))?;
                if tparents == parents && tname == name {
                    return Ok(());
                }
                remove_existing(&parent, name, false).map_err(io_err("replace"))?;
                rfs::linkat(
                    &tdir,
                    tname.as_os_str(),
                    &parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| {
                    unsafe_entry(&format!(
                        "hard link to {:?} not in the layer: {}",
                        String::from_utf8_lossy(&link),
                        io::Error::from(e)
                    ))
                })?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                if kind != EntryType::Fifo && !self.privileged {
                    debug!(entry = %shown, "not root: device node skipped");
                    return Ok(());
                }
                let (ft, dev) = match kind {
                    EntryType::Char => (FileType::CharacterDevice, device(entry)?),
                    EntryType::Block => (FileType::BlockDevice, device(entry)?),
                    _ => (FileType::Fifo, 0),
                };
                remove_existing(&parent, name, false).map_err(io_err("replace"))?;
                rfs::mknodat(
                    &parent,
                    name.as_os_str(),
                    ft,
                    Mode::from_raw_mode(0o600),
                    dev,
                )
                .map_err(io_err("mknod"))?;
                if self.privileged {
                    rfs::chownat(
                        &parent,
                        name.as_os_str(),
                        Some(uid(meta.uid)),
                        Some(gid(meta.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(io_err("chown"))?;
                }
                // Just made by us in our private directory, so it is not a symlink.
                rfs::chmodat(
                    &parent,
                    name.as_os_str(),
                    Mode::from_raw_mode(meta.mode & 0o7777),
                    AtFlags::empty(),
                )
                .map_err(io_err("chmod"))?;
                rfs::utimensat(
                    &parent,
                    name.as_os_str(),
                    &times(meta.mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io_err("set times of"))?;
            }
            other => {
                return Err(unsafe_entry(&format!(
                    "unsupported tar entry type {other:?}"
                )));
            }
        }
        Ok(())
    }

    /// Owner, then mode (chown clears setuid bits, so mode comes after), then xattrs.
    /// Directory modes are set at the end, in `finish_dirs`.
    fn apply_fd(&self, fd: impl AsFd, meta: &Meta, shown: &str) -> Result<()> {
        let fd = fd.as_fd();
        let err = |op: &'static str| {
            let path = self.target.join(shown);
            move |e: Errno| Error::Io {
                op,
                path,
                source: e.into(),
            }
        };
        let is_dir = rfs::fstat(fd).map_err(err("stat"))?.st_mode & 0o170000 == 0o040000;
        if self.privileged {
            rfs::fchown(fd, Some(uid(meta.uid)), Some(gid(meta.gid))).map_err(err("chown"))?;
        }
        if !is_dir {
            rfs::fchmod(fd, Mode::from_raw_mode(meta.mode & 0o7777)).map_err(err("chmod"))?;
        }
        for (key, value) in &meta.xattrs {
            let k = key.as_bytes();
            if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
                debug!(entry = %shown, xattr = %key.to_string_lossy(), "overlay xattr from the layer dropped");
                continue;
            }
            match rfs::fsetxattr(fd, key.as_os_str(), value, XattrFlags::empty()) {
                Ok(()) => {}
                Err(e @ (Errno::OPNOTSUPP | Errno::PERM)) if !self.privileged => {
                    debug!(entry = %shown, xattr = %key.to_string_lossy(), error = %e, "xattr skipped");
                }
                Err(e) => return Err(err("set xattr on")(e)),
            }
        }
        Ok(())
    }

    /// Sets each directory's mode and mtime, deepest last-written first.
    fn finish_dirs(&mut self) -> Result<()> {
        for (comps, meta) in self.dirs.drain(..).rev() {
            let shown = comps
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            // A later entry may have replaced the directory (by a file or symlink): nothing
            // to set then. open_dir never follows a symlink, so this is safe either way.
            let fd = match open_dir(self.root, &comps, false) {
                Ok(fd) => fd,
                Err(reason) => {
                    debug!(entry = %shown, %reason, "directory gone before its metadata was set");
                    continue;
                }
            };
            let path = self.target.join(&shown);
            rfs::fchmod(&fd, Mode::from_raw_mode(meta.mode & 0o7777)).map_err(|e| Error::Io {
                op: "chmod",
                path: path.clone(),
                source: e.into(),
            })?;
            rfs::futimens(&fd, &times(meta.mtime)).map_err(|e| Error::Io {
                op: "set times of",
                path,
                source: e.into(),
            })?;
        }
        Ok(())
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Splits a tar name into components: leading `/`, empty and `.` components dropped, `..`
/// refused.
fn clean(raw: &[u8]) -> Result<Vec<OsString>, &'static str> {
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path has a \"..\" component"),
            c if c.contains(&0) => return Err("path has a NUL byte"),
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok(out)
}

/// Opens the directory `comps` under `root`, one component at a time, never following a
/// symlink; with `create`, missing directories are made (mode 0755, like docker).
fn open_dir(root: BorrowedFd<'_>, comps: &[OsString], create: bool) -> Result<OwnedFd, String> {
    let mut cur = rfs::openat(root, ".", dir_flags(), Mode::empty())
        .map_err(|e| format!("open layer root: {e}"))?;
    for (i, c) in comps.iter().enumerate() {
        let shown = || {
            comps[..=i]
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        };
        let next = match rfs::openat(&cur, c.as_os_str(), dir_flags(), Mode::empty()) {
            Err(Errno::NOENT) if create => {
                let made = match rfs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) => true,
                    Err(Errno::EXIST) => false,
                    Err(e) => return Err(format!("create parent {}: {e}", shown())),
                };
                let fd = rfs::openat(&cur, c.as_os_str(), dir_flags(), Mode::empty());
                if let (true, Ok(fd)) = (made, &fd) {
                    // 0755 whatever the umask.
                    rfs::fchmod(fd, Mode::from_raw_mode(0o755))
                        .map_err(|e| format!("chmod parent {}: {e}", shown()))?;
                }
                fd
            }
            r => r,
        };
        cur = match next {
            Ok(fd) => fd,
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(format!(
                    "parent {} is a symlink or not a directory (never followed)",
                    shown()
                ));
            }
            Err(e) => return Err(format!("open parent {}: {e}", shown())),
        };
    }
    Ok(cur)
}

/// Makes way for a new entry `name` in `dir`: a directory is kept when a directory comes
/// (tar entries for one directory merge), anything else is removed.
fn remove_existing(dir: &OwnedFd, name: &OsStr, new_is_dir: bool) -> Result<(), Errno> {
    let st = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & 0o170000 == 0o040000 {
        if new_is_dir {
            return Ok(());
        }
        return remove_tree_at(dir, name);
    }
    rfs::unlinkat(dir, name, AtFlags::empty())
}

/// Removes the directory `name` in `dir` and all it holds, never following a symlink.
fn remove_tree_at(dir: &OwnedFd, name: &OsStr) -> Result<(), Errno> {
    let sub = rfs::openat(dir, name, dir_flags(), Mode::empty())?;
    let mut children = Vec::new();
    for e in rfs::Dir::read_from(&sub)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            children.push((
                OsString::from_vec(n.to_vec()),
                e.file_type() == FileType::Directory,
            ));
        }
    }
    for (n, is_dir) in children {
        if is_dir {
            remove_tree_at(&sub, &n)?
        } else {
            rfs::unlinkat(&sub, n.as_os_str(), AtFlags::empty())?
        }
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

fn meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let mut m = Meta {
        mode: h.mode()?,
        uid: h
            .uid()?
            .try_into()
            .map_err(|_| bad_data("uid out of range"))?,
        gid: h
            .gid()?
            .try_into()
            .map_err(|_| bad_data("gid out of range"))?,
        mtime: h.mtime()?.try_into().unwrap_or(i64::MAX),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let key = ext.key_bytes();
            let num = |v: &[u8]| -> io::Result<i64> {
                let s = std::str::from_utf8(v).map_err(|_| bad_data("bad PAX number"))?;
                let whole = s.split('.').next().unwrap_or(s);
                whole.parse().map_err(|_| bad_data("bad PAX number"))
            };
            match key {
                b"uid" => {
                    m.uid = num(ext.value_bytes())?
                        .try_into()
                        .map_err(|_| bad_data("uid out of range"))?
                }
                b"gid" => {
                    m.gid = num(ext.value_bytes())?
                        .try_into()
                        .map_err(|_| bad_data("gid out of range"))?
                }
                b"mtime" => m.mtime = num(ext.value_bytes())?,
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        m.xattrs.push((
                            OsString::from_vec(name.to_vec()),
                            ext.value_bytes().to_vec(),
                        ));
                    }
                }
            }
        }
    }
    Ok(m)
}

fn device<R: Read>(entry: &tar::Entry<'_, R>) -> Result<rfs::Dev> {
    let h = entry.header();
    let major = h.device_major().map_err(Error::Layer)?.unwrap_or(0);
    let minor = h.device_minor().map_err(Error::Layer)?.unwrap_or(0);
    Ok(rfs::makedev(major, minor))
}

fn bad_data(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn times(mtime: i64) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn uid(u: u32) -> rfs::Uid {
    rfs::Uid::from_raw(u)
}

fn gid(g: u32) -> rfs::Gid {
    rfs::Gid::from_raw(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_root_and_dots_and_refuses_dotdot() {
        let c = |s: &str| {
            clean(s.as_bytes()).map(|v| {
                v.into_iter()
                    .map(|o| o.into_string().unwrap())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(c("/etc/passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(c("./a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert!(c("./").unwrap().is_empty());
        assert!(c("a/../../b").is_err());
        assert!(c("..").is_err());
    }

    #[test]
    fn detects_compression() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }

    /// A layer of highly compressible data is refused once it passes the cap, and leaves
    /// nothing behind (no temp directory, no target).
    #[test]
    fn decompression_bomb_stops_at_the_cap() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4 << 20);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append_data(&mut h, "zeros", io::repeat(0).take(4 << 20))
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let blob = gz.finish().unwrap();
        assert!(blob.len() < 64 << 10, "{}", blob.len());

        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("layer");
        let digest = Digest::of(&blob);
        let err =
            unpack_layer_limited(blob.as_slice(), &target, &digest, None, 1 << 20).unwrap_err();
        assert!(
            matches!(&err, Error::LayerTooLarge { limit, .. } if *limit == 1 << 20),
            "{err}"
        );
        assert!(err.to_string().contains(&digest.to_string()), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Under the cap it unpacks.
        unpack_layer_limited(blob.as_slice(), &target, &digest, None, 8 << 20).unwrap();
        assert_eq!(
            std::fs::metadata(target.join("zeros")).unwrap().len(),
            4 << 20
        );
    }
}
