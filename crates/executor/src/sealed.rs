//! CVE-2019-5736: a container process that execs /proc/self/exe while the runtime is inside the
//! container could reopen the runtime's own binary for writing and replace it on the host.
//! Before entering any container, the runtime re-executes itself from a read-only detached bind
//! mount of its binary (open_tree + mount_setattr, no copy); where that is not allowed, from a
//! sealed memfd copy. Either way /proc/self/exe can no longer be opened for writing.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use crate::sys;

/// True when our executable cannot be written through /proc/self/exe.
pub fn is_sealed() -> bool {
    if nix::sys::statvfs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    {
        return true;
    }
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY-free: F_GET_SEALS through nix.
    nix::fcntl::fcntl(f.as_fd(), nix::fcntl::FcntlArg::F_GET_SEALS)
        .is_ok_and(|seals| seals & libc::F_SEAL_WRITE != 0)
}

/// Re-executes the current process from a protected copy of its binary, with the same
/// arguments and environment. Returns only on failure (or when already protected).
pub fn ensure_sealed() -> io::Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let argv: Vec<CString> = std::env::args_os().map(to_cstring).collect();
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_cstring(kv)
        })
        .collect();
    match sys::open_tree_clone(Path::new("/proc/self/exe"), false) {
        Ok(fd) => {
            sys::mount_setattr(fd.as_fd(), Path::new(""), sys::MOUNT_ATTR_RDONLY, 0, false)?;
            Err(sys::execveat_fd(fd.as_fd(), &argv, &envp))
        }
        Err(e) => {
            tracing::debug!(error = %e, "open_tree unavailable; using a sealed memfd copy");
            let memfd = sealed_copy()?;
            Err(sys::execveat_fd(memfd.as_fd(), &argv, &envp))
        }
    }
}

fn sealed_copy() -> io::Result<std::os::fd::OwnedFd> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let memfd = memfd_create(
        c"berth-oci",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut src = File::open("/proc/self/exe")?;
    let mut dst = File::from(memfd);
    io::copy(&mut src, &mut dst)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    nix::fcntl::fcntl(
        dst.as_fd(),
        nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::from_bits_truncate(seals)),
    )?;
    let _ = dst.as_raw_fd();
    Ok(dst.into())
}

fn to_cstring(s: OsString) -> CString {
    CString::new(s.into_vec()).unwrap_or_default()
}
