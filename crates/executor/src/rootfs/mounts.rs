//! One OCI mount entry: option parsing, safe destination creation, and the mount itself.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::Mount;

use super::{fd_path, propagation_flag, sys_mount};
use crate::error::{Error, Result};
use crate::spec::relative_in_root;
use crate::sys;

/// A mount's options split into flags to set, flags to clear, propagation changes, recursive
/// attributes (mount_setattr) and the filesystem-specific data string.
#[derive(Debug)]
pub struct MountOptions {
    pub set: MsFlags,
    pub clear: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub attr_set: u64,
    pub attr_clear: u64,
    pub data: Vec<String>,
}

impl MountOptions {
    pub fn parse(m: &Mount) -> MountOptions {
        let mut o = MountOptions {
            set: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            attr_set: 0,
            attr_clear: 0,
            data: Vec::new(),
        };
        if m.typ().as_deref() == Some("bind") {
            o.set |= MsFlags::MS_BIND;
        }
        for opt in m.options().iter().flatten() {
            let opt = opt.as_str();
            if let Some(p) = propagation_flag(opt) {
                o.propagation.push(p);
                continue;
            }
            let (set, clear) = match opt {
                "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
                "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "rro" => {
                    o.attr_set |= sys::MOUNT_ATTR_RDONLY;
                    continue;
                }
                "rrw" => {
                    o.attr_clear |= sys::MOUNT_ATTR_RDONLY;
                    continue;
                }
                "rnosuid" => {
                    o.attr_set |= sys::MOUNT_ATTR_NOSUID;
                    continue;
                }
                "rnodev" => {
                    o.attr_set |= sys::MOUNT_ATTR_NODEV;
                    continue;
                }
                "rnoexec" => {
                    o.attr_set |= sys::MOUNT_ATTR_NOEXEC;
                    continue;
                }
                "rsuid" => {
                    o.attr_clear |= sys::MOUNT_ATTR_NOSUID;
                    continue;
                }
                "rdev" => {
                    o.attr_clear |= sys::MOUNT_ATTR_NODEV;
                    continue;
                }
                "rexec" => {
                    o.attr_clear |= sys::MOUNT_ATTR_NOEXEC;
                    continue;
                }
                // Options the kernel does not know but OCI tools pass along: ignore.
                "tmpcopyup" | "idmap" | "ridmap" => continue,
                other => {
                    o.data.push(other.to_owned());
                    continue;
                }
            };
            o.set |= set;
            o.set &= !clear;
            o.clear |= clear;
        }
        o
    }

    pub fn is_bind(&self) -> bool {
        self.set.contains(MsFlags::MS_BIND)
    }

    fn data(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// Resolves `rel` inside the root the way RESOLVE_IN_ROOT would (absolute symlinks and `..`
/// stay under the root), but also through components that do not exist yet, so they can be
/// created where the symlinks lead (as runc's securejoin does). The result has no symlinks.
fn resolve_in_root(root: &OwnedFd, rel: &Path) -> Result<PathBuf> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;
    let mut out = PathBuf::new();
    let mut todo: VecDeque<OsString> = rel.components().map(|c| c.as_os_str().to_owned()).collect();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        match Path::new(&name).components().next() {
            Some(Component::ParentDir) => {
                out.pop();
                continue;
            }
            Some(Component::Normal(_)) => {}
            _ => continue,
        }
        let cand = out.join(&name);
        let fd = match sys::openat2(
            root.as_fd(),
            &cand,
            libc::O_PATH | libc::O_NOFOLLOW,
            0,
            sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                out = cand;
                continue;
            }
            Err(e) => return Err(Error::io("open", Path::new("/").join(&cand), e)),
        };
        let st = nix::sys::stat::fstat(&fd)
            .map_err(|e| Error::sys(format!("stat /{}", cand.display()), e))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            out = cand;
            continue;
        }
        links += 1;
        if links > 40 {
            return Err(Error::sys(
                format!("resolve /{}", rel.display()),
                std::io::Error::from_raw_os_error(libc::ELOOP),
            ));
        }
        let target = nix::fcntl::readlinkat(&fd, "")
            .map_err(|e| Error::sys(format!("readlink /{}", cand.display()), e))?;
        let target = PathBuf::from(target);
        if target.is_absolute() {
            out.clear();
        }
        for c in target.components().rev() {
            todo.push_front(c.as_os_str().to_owned());
        }
    }
    Ok(out)
}

/// Opens `rel` under `root`, creating missing directories on the way and the final entry as a
/// directory or an empty file. Symlinks on the way are followed inside the root; with
/// `no_symlinks` any symlink is refused instead. Nothing is ever created or opened outside `root`.
pub(super) fn create_in_root(
    root: &OwnedFd,
    rel: &Path,
    dir: bool,
    no_symlinks: bool,
) -> Result<OwnedFd> {
    let resolved;
    let rel = if no_symlinks {
        rel
    } else {
        resolved = resolve_in_root(root, rel)?;
        resolved.as_path()
    };
    // The path is symlink-free now: a symlink appearing on it is a race, and is refused.
    let resolve = sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS;
    if let Ok(fd) = sys::openat2(root.as_fd(), rel, libc::O_PATH, 0, resolve) {
        return Ok(fd);
    }
    let mut prefix = PathBuf::new();
    let mut parent = sys::openat2(
        root.as_fd(),
        Path::new("."),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        resolve,
    )
    .map_err(|e| Error::io("open", "/", e))?;
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        prefix.push(c);
        let last = i + 1 == comps.len();
        let want_dir = !last || dir;
        let open = |prefix: &Path| {
            let flags = libc::O_PATH | if want_dir { libc::O_DIRECTORY } else { 0 };
            sys::openat2(root.as_fd(), prefix, flags, 0, resolve)
        };
        let fd = match open(&prefix) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let name = c.as_os_str();
                let made = if want_dir {
                    nix::sys::stat::mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755))
                } else {
                    nix::sys::stat::mknodat(
                        parent.as_fd(),
                        name,
                        nix::sys::stat::SFlag::S_IFREG,
                        Mode::from_bits_truncate(0o644),
                        0,
                    )
                };
                match made {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(Error::sys(format!("create /{}", prefix.display()), e)),
                }
                open(&prefix).map_err(|e| Error::io("open", Path::new("/").join(&prefix), e))?
            }
            Err(e) => return Err(Error::io("open", Path::new("/").join(&prefix), e)),
        };
        parent = fd;
    }
    Ok(parent)
}

/// Re-opens a destination after something was mounted on it, so that later changes apply to
/// the new mount and not to the directory underneath.
fn reopen(root: &OwnedFd, rel: &Path) -> Result<OwnedFd> {
    sys::openat2(root.as_fd(), rel, libc::O_PATH, 0, sys::RESOLVE_IN_ROOT)
        .map_err(|e| Error::io("open", Path::new("/").join(rel), e))
}

pub(super) fn mount_entry(
    root: &OwnedFd,
    m: &Mount,
    opts: &MountOptions,
    cgroup_path: &Path,
) -> Result<()> {
    let rel = relative_in_root(m.destination());
    let typ = m.typ().as_deref().unwrap_or("none");
    let bind = opts.is_bind();
    let source = m.source().as_deref();
    // A proc or sysfs mounted through a symlink could land anywhere (CVE-2019-19921).
    let special = matches!(typ, "proc" | "sysfs");
    let src_is_dir = if bind {
        let src = source.ok_or_else(|| Error::spec("source", "a bind mount needs a source"))?;
        fs::metadata(src)
            .map_err(|e| Error::io("stat", src, e))?
            .is_dir()
    } else {
        true
    };
    let dest = create_in_root(root, &rel, src_is_dir, special)?;
    let target = fd_path(&dest);
    let flags = opts.set & !(MsFlags::MS_REMOUNT);
    if bind {
        let src = source.expect("checked above");
        sys_mount(
            Some(src),
            &target,
            None,
            flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None,
        )?;
        let extra = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            let top = reopen(root, &rel)?;
            remount(&fd_path(&top), flags | MsFlags::MS_REMOUNT)?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroup(root, &rel, &target, flags, cgroup_path)?;
    } else {
        let src = source.unwrap_or(Path::new(typ));
        let data = opts.data();
        match sys_mount(Some(src), &target, Some(typ), flags, data.as_deref()) {
            // Without its own network namespace a container may not mount sysfs: bind the
            // host's instead, as runc does.
            Err(_) if typ == "sysfs" => {
                sys_mount(
                    Some(Path::new("/sys")),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                if flags.contains(MsFlags::MS_RDONLY) {
                    let top = reopen(root, &rel)?;
                    remount(
                        &fd_path(&top),
                        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                    )?;
                }
            }
            other => other?,
        }
    }
    if !opts.propagation.is_empty() || opts.attr_set != 0 || opts.attr_clear != 0 {
        let top = reopen(root, &rel)?;
        for p in &opts.propagation {
            sys_mount(None, &fd_path(&top), None, *p, None)?;
        }
        if opts.attr_set != 0 || opts.attr_clear != 0 {
            sys::mount_setattr(
                top.as_fd(),
                Path::new(""),
                opts.attr_set,
                opts.attr_clear,
                true,
            )
            .map_err(|e| Error::sys(format!("mount_setattr /{}", rel.display()), e))?;
        }
    }
    Ok(())
}

/// A bind remount; in a user namespace the flags the source mount had are locked and must be
/// repeated, so on EPERM retry with them added.
fn remount(target: &Path, flags: MsFlags) -> Result<()> {
    match nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            let st = nix::sys::statvfs::statvfs(target)
                .map_err(|e| Error::sys(format!("statvfs {}", target.display()), e))?;
            let mut locked = MsFlags::empty();
            use nix::sys::statvfs::FsFlags;
            for (f, m) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if st.flags().contains(f) {
                    locked |= m;
                }
            }
            sys_mount(None, target, None, flags | locked, None)
        }
        Err(e) => Err(Error::sys(
            format!("remount {} ({flags:?})", target.display()),
            e,
        )),
    }
}

pub fn remount_readonly(target: &Path, recursive: bool) -> Result<()> {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    remount(target, flags)
}

/// Cgroup mounts: cgroup2 as is on a v2 host; on v1 a tmpfs holding a bind of the container's
/// own directory of each hierarchy, so the container sees its cgroup and nothing above it.
fn mount_cgroup(
    root: &OwnedFd,
    rel: &Path,
    target: &Path,
    flags: MsFlags,
    cgroup_path: &Path,
) -> Result<()> {
    let layout = crate::cgroups::Layout::cached()?;
    if layout.is_v2() {
        return sys_mount(
            Some(Path::new("cgroup2")),
            target,
            Some("cgroup2"),
            flags,
            None,
        );
    }
    let ro = flags.contains(MsFlags::MS_RDONLY);
    sys_mount(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )?;
    let rel_cg = relative_in_root(cgroup_path);
    for mountpoint in layout.v1_mountpoints() {
        let Some(name) = mountpoint.file_name() else {
            continue;
        };
        let src = mountpoint.join(&rel_cg);
        if !src.is_dir() {
            continue;
        }
        let dest = create_in_root(root, &rel.join(name), true, true)?;
        let t = fd_path(&dest);
        sys_mount(Some(&src), &t, None, MsFlags::MS_BIND, None)?;
        let top = reopen(root, &rel.join(name))?;
        let mut f = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        if ro {
            f |= MsFlags::MS_RDONLY;
        }
        remount(&fd_path(&top), f)?;
    }
    if ro {
        let top = reopen(root, rel)?;
        remount_readonly(&fd_path(&top), false)?;
    }
    Ok(())
}
