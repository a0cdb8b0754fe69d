//! Device nodes in the container's /dev: the defaults every container gets, the ones the spec
//! lists, the standard symlinks, and /dev/console for terminals.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::mounts::create_in_root;
use super::{fd_path, sys_mount};
use crate::error::{Error, Result};
use crate::spec::relative_in_root;
use crate::sys;

const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("dev/null", 1, 3),
    ("dev/zero", 1, 5),
    ("dev/full", 1, 7),
    ("dev/random", 1, 8),
    ("dev/urandom", 1, 9),
    ("dev/tty", 5, 0),
];

const SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "dev/fd"),
    ("/proc/self/fd/0", "dev/stdin"),
    ("/proc/self/fd/1", "dev/stdout"),
    ("/proc/self/fd/2", "dev/stderr"),
    ("/proc/kcore", "dev/core"),
];

fn in_user_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        })
}

pub fn create_default(root: &OwnedFd, spec: &Spec) -> Result<()> {
    let userns = in_user_namespace(spec);
    for &(path, major, minor) in DEFAULT_DEVICES {
        make_device(
            root,
            Path::new(path),
            SFlag::S_IFCHR,
            major,
            minor,
            0o666,
            Some((0, 0)),
            userns,
        )?;
    }
    let dev = create_in_root(root, Path::new("dev"), true, true)?;
    for &(target, link) in SYMLINKS {
        let name = Path::new(link).file_name().expect("static name");
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("symlink /{link}"), e)),
        }
    }
    // /dev/ptmx points into the container's own devpts instance, when it has one.
    let has_pts = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev/pts"));
    if has_pts {
        let _ = nix::unistd::unlinkat(dev.as_fd(), "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
        nix::unistd::symlinkat("pts/ptmx", dev.as_fd(), "ptmx")
            .map_err(|e| Error::sys("symlink /dev/ptmx", e))?;
    }
    Ok(())
}

pub fn create_configured(root: &OwnedFd, spec: &Spec) -> Result<()> {
    let userns = in_user_namespace(spec);
    let devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for (i, d) in devices.into_iter().flatten().enumerate() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::spec(
                    format!("linux.devices[{i}].type"),
                    "\"a\" is not a device node type",
                ));
            }
        };
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        let path = d.path();
        if !path.is_absolute() {
            return Err(Error::spec(
                format!("linux.devices[{i}].path"),
                "must be absolute",
            ));
        }
        make_device(
            root,
            &relative_in_root(path),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            owner,
            userns,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    root: &OwnedFd,
    rel: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
    userns: bool,
) -> Result<()> {
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| Error::spec("linux.devices", format!("bad path /{}", rel.display())))?;
    let parent = create_in_root(root, parent_rel, true, true)?;
    if userns {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        let host = Path::new("/").join(rel);
        let dest = create_in_root(root, rel, false, true)?;
        return sys_mount(Some(&host), &fd_path(&dest), None, MsFlags::MS_BIND, None);
    }
    let dev = nix::sys::stat::makedev(major, minor);
    let _ = nix::unistd::unlinkat(
        parent.as_fd(),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    nix::sys::stat::mknodat(
        parent.as_fd(),
        name,
        kind,
        Mode::from_bits_truncate(mode),
        dev,
    )
    .map_err(|e| Error::sys(format!("mknod /{}", rel.display()), e))?;
    // mknod applies the umask: set the mode exactly, and the owner.
    let node = sys::openat2(
        parent.as_fd(),
        Path::new(name),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        sys::RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| Error::io("open", Path::new("/").join(rel), e))?;
    let p = fd_path(&node);
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| Error::io("chmod", Path::new("/").join(rel), e))?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &p,
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::empty(),
        )
        .map_err(|e| Error::sys(format!("chown /{}", rel.display()), e))?;
    }
    Ok(())
}

/// Binds the terminal's peer end over /dev/console (after pivot_root).
pub fn bind_console(peer: &OwnedFd) -> Result<()> {
    let root = sys::openat2(
        nix::fcntl::AT_FDCWD,
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .map_err(|e| Error::io("open", "/", e))?;
    let console = create_in_root(&root, Path::new("dev/console"), false, true)?;
    sys_mount(
        Some(&fd_path(peer)),
        &fd_path(&console),
        None,
        MsFlags::MS_BIND,
        None,
    )
}
