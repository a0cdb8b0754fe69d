//! The container's filesystem view, built inside its new mount namespace: mounts, devices,
//! pivot_root, read-only root, masked and read-only paths.
//!
//! Every destination inside the root filesystem is resolved with openat2(RESOLVE_IN_ROOT), so a
//! symlink in the image (or one swapped in while we work, CVE-2021-30465) can never send a mount
//! outside the root; the mount then targets the opened descriptor through /proc/self/fd.

mod devices;
mod mounts;

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::sys;

pub use devices::bind_console;
pub use mounts::MountOptions;

/// The propagation flags named by `rootfsPropagation` and by mount options.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

fn root_propagation(spec: &Spec) -> MsFlags {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC)
}

fn sys_mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    mount(src, target, fstype, flags, data).map_err(|e| {
        Error::sys(
            format!(
                "mount {} on {} (type {}, flags {:?}, data {:?})",
                src.map(|p| p.display().to_string()).unwrap_or_default(),
                target.display(),
                fstype.unwrap_or(""),
                flags,
                data.unwrap_or("")
            ),
            e,
        )
    })
}

/// The path that names an open descriptor, for mount(2) targets and sources.
pub(crate) fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens the root filesystem directory (O_PATH) for lookups under it.
fn open_root(rootfs: &Path) -> Result<OwnedFd> {
    let cwd = nix::fcntl::AT_FDCWD;
    sys::openat2(cwd, rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
        .map_err(|e| Error::io("open", rootfs, e))
}

/// Steps that run in the new mount namespace before pivot_root.
pub fn prepare(spec: &Spec, rootfs: &Path, cgroup_path: &Path) -> Result<()> {
    // Nothing we mount may propagate back to the host.
    sys_mount(None, Path::new("/"), None, root_propagation(spec), None)?;
    make_parent_private(rootfs)?;
    // pivot_root needs the new root to be a mount point.
    sys_mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let root = open_root(rootfs)?;
    let mut dev_is_bind = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = MountOptions::parse(m);
        if m.destination() == Path::new("/dev") && opts.is_bind() {
            dev_is_bind = true;
        }
        mounts::mount_entry(&root, m, &opts, cgroup_path).map_err(|e| {
            Error::spec(
                format!("mounts[{i}] ({})", m.destination().display()),
                e.to_string(),
            )
        })?;
    }
    if !dev_is_bind {
        devices::create_default(&root, spec)?;
    }
    devices::create_configured(&root, spec)?;
    Ok(())
}

/// pivot_root(2) has to find the new root's parent mount not shared.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mut dir = rootfs.to_path_buf();
    loop {
        match mount(
            None::<&str>,
            &dir,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) if dir.pop() => continue,
            Err(e) => return Err(Error::sys(format!("make {} private", dir.display()), e)),
        }
    }
}

/// Switches the root to `rootfs`: pivot_root, or with `no_pivot` a move mount plus chroot.
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        nix::unistd::chdir(rootfs)
            .map_err(|e| Error::sys(format!("chdir {}", rootfs.display()), e))?;
        sys_mount(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot", e))?;
    } else {
        let old = fs::File::open("/").map_err(|e| Error::io("open", "/", e))?;
        nix::unistd::chdir(rootfs)
            .map_err(|e| Error::sys(format!("chdir {}", rootfs.display()), e))?;
        nix::unistd::pivot_root(".", ".")
            .map_err(|e| Error::sys(format!("pivot_root {}", rootfs.display()), e))?;
        // The old root is now stacked under the new one: step into it, stop propagation, drop it.
        nix::unistd::fchdir(old.as_fd()).map_err(|e| Error::sys("fchdir old root", e))?;
        sys_mount(
            None,
            Path::new("."),
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None,
        )?;
        umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::sys("unmount old root", e))?;
    }
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir /", e))?;
    Ok(())
}

/// Steps after pivot_root: read-only root, masked and read-only paths, root propagation.
pub fn finish(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mounts::remount_readonly(Path::new("/"), false)?;
    }
    if let Some(flag) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation_flag)
    {
        sys_mount(None, Path::new("/"), None, flag, None)?;
    }
    Ok(())
}

/// Masked and read-only paths, applied after sysctls and the domain name went through /proc.
pub fn protect_paths(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(Path::new(p))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(Path::new(p))?;
    }
    Ok(())
}

fn open_nofollow(path: &Path) -> Option<OwnedFd> {
    let root = nix::fcntl::AT_FDCWD;
    sys::openat2(
        root,
        path,
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        sys::RESOLVE_NO_SYMLINKS,
    )
    .ok()
}

fn mask_path(path: &Path) -> Result<()> {
    let Some(fd) = open_nofollow(path) else {
        return Ok(());
    };
    let target = fd_path(&fd);
    let is_dir = fs::metadata(&target).map(|m| m.is_dir()).unwrap_or(false);
    if is_dir {
        sys_mount(
            Some(Path::new("tmpfs")),
            &target,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        )
    } else {
        sys_mount(
            Some(Path::new("/dev/null")),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
        )
    }
}

fn readonly_path(path: &Path) -> Result<()> {
    let Some(fd) = open_nofollow(path) else {
        return Ok(());
    };
    let target = fd_path(&fd);
    sys_mount(
        Some(&target),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    // Re-open: the bind mount now sits on top of the path the first descriptor saw.
    let fd = open_nofollow(path).ok_or_else(|| {
        Error::sys(
            format!("reopen {}", path.display()),
            std::io::Error::from_raw_os_error(libc::ENOENT),
        )
    })?;
    mounts::remount_readonly(&fd_path(&fd), true)
}
