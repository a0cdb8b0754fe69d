//! bpf(2) for the device filter. **Every `unsafe` block of the cgroup layer is in this file.**
//!
//! Each command has its own `#[repr(C)]` struct holding the leading fields of the kernel's
//! `union bpf_attr` for that command; the kernel zero-fills the rest of the union up to its
//! own size, so passing the shorter struct with its size is valid.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::bpf::Insn;
use crate::cgroups::OsError;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
pub(crate) const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls bpf(2) with `attr`. Returns the non-negative result.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> Result<libc::c_long, OsError> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] struct whose layout is the
    // prefix of `union bpf_attr` for `cmd` (see the structs above), and we pass its exact size;
    // every pointer stored inside it (insns, license, log buffer, id array) is set by the
    // callers below from buffers that outlive this call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error().into())
    } else {
        Ok(rc)
    }
}

/// Takes ownership of a file descriptor that bpf(2) just returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned this fd to us just now; nothing else owns or closes it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program. On failure, also returns the verifier log.
pub(crate) fn load_device_program(insns: &[Insn]) -> Result<OwnedFd, (OsError, String)> {
    let license = c"Apache-2.0";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..11].copy_from_slice(b"berth_devcg");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(e) => {
            // load again with the verifier log on, to say why
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr).map(owned);
            let text = CStr::from_bytes_until_nul(&log)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_default();
            Err((e, text))
        }
    }
}

/// The ids of the device programs attached to the cgroup `cg`.
pub(crate) fn query_device_programs(cg: BorrowedFd<'_>) -> Result<Vec<u32>, OsError> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

pub(crate) fn prog_fd_by_id(id: u32) -> Result<OwnedFd, OsError> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(owned)
}

pub(crate) fn attach_device_program(
    cg: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> Result<(), OsError> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

pub(crate) fn detach_device_program(
    cg: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
) -> Result<(), OsError> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}
