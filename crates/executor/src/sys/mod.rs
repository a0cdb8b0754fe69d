//! Thin wrappers over the system calls that nix does not cover (or covers in a shape that does
//! not fit). Every `unsafe` block of the executor lives in this module, each with the reason it
//! holds. Callers get safe functions returning `std::io::Result`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// What `clone_process` returns.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// Forks the calling process with the raw clone system call. `flags` may add CLONE_PARENT (the
/// new process becomes a sibling of the caller, so an intermediate process can hand the
/// container process straight to the one that waits for it) and CLONE_NEW* namespace flags
/// (the child is born in new namespaces; the caller's stay as they are).
pub fn clone_process(flags: libc::c_int) -> io::Result<Forked> {
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with a NULL stack behaves like fork(2): the child gets a
    // copy-on-write copy of the address space and continues on its copy of the current stack.
    // The executor is single-threaded whenever it forks (no tokio, no thread is ever spawned),
    // so no lock can be held by another thread across the fork.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match cvt(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}

/// Ends the calling process at once, without running destructors or atexit handlers (the
/// forked children of the executor must never unwind into the parent's code paths).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// close_range(first, u32::MAX, CLOSE_RANGE_CLOEXEC): marks every descriptor from `first` on
/// close-on-exec, so nothing of the runtime leaks into the container (CVE-2024-21626).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    cvt(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

/// Takes ownership of a descriptor the kernel just handed over (SCM_RIGHTS, or a library that
/// returns a raw number it no longer manages).
///
/// # Safety
/// `raw` must be an open descriptor that nothing else will close or use as its own.
pub unsafe fn adopt_fd(raw: RawFd) -> OwnedFd {
    // SAFETY: the caller guarantees sole ownership of an open descriptor.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// pidfd_open(2).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: no memory is passed; on success the return value is a new descriptor we own.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2): signals exactly the process the pidfd names, never a recycled pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a NULL siginfo is allowed; no other memory is passed.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null_mut::<libc::c_void>(),
            0,
        )
    })
    .map(drop)
}

/// open_tree(2) with OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC: a detached bind mount of `path`.
pub fn open_tree_clone(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    let c = cstring(path)?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) })?;
    // SAFETY: fd was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attributes for `mount_setattr`.
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH), optionally recursive: this is
/// how recursive read-only (`rro`) and the sealed runtime binary are made.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    path: &Path,
    set: u64,
    clear: u64,
    recursive: bool,
) -> io::Result<()> {
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags = 0;
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    if recursive {
        flags |= AT_RECURSIVE;
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let c = cstring(path)?;
    // SAFETY: c and attr outlive the call; the size passed is the size of the struct.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Resolution flags for `openat2`.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2): opens `path` relative to `dirfd` with the given resolve restrictions. With
/// RESOLVE_IN_ROOT, absolute symlinks and `..` never leave `dirfd`.
pub fn openat2(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    let c = cstring(path)?;
    loop {
        // SAFETY: c and how outlive the call; the size passed is the size of the struct.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match cvt(ret) {
            // SAFETY: the kernel returned a new descriptor that nobody else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            // openat2 returns EAGAIN when a concurrent rename raced the lookup.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): executes the file `fd` refers to.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv_ptrs = nul_terminated(argv);
    let envp_ptrs = nul_terminated(envp);
    // SAFETY: argv_ptrs/envp_ptrs are NULL-terminated arrays of pointers into argv/envp, which
    // outlive the call; on success the call does not return.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    io::Error::last_os_error()
}

/// execve(2) of an absolute path.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv_ptrs = nul_terminated(argv);
    let envp_ptrs = nul_terminated(envp);
    // SAFETY: as for execveat_fd.
    unsafe {
        libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
    }
    io::Error::last_os_error()
}

fn nul_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): gives the container its own session keyring.
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: name is a valid NUL-terminated string for the duration of the call.
    cvt(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) })
        .map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level).
pub fn ioprio_set(class: u32, level: u32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | (level & 0x1fff);
    // SAFETY: integers only.
    cvt(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) }).map(drop)
}

/// The kernel's struct sched_attr (version 1, with utilization clamps).
#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
    pub sched_util_min: u32,
    pub sched_util_max: u32,
}

/// sched_setattr(0, attr, 0) for the calling thread.
pub fn sched_setattr(attr: &mut SchedAttr) -> io::Result<()> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: attr points to a live, fully initialised struct of the size given in attr.size.
    cvt(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) }).map(drop)
}

/// set_mempolicy(mode | flags, nodemask, maxnode).
pub fn set_mempolicy(mode: i32, nodemask: &[libc::c_ulong]) -> io::Result<()> {
    let maxnode = if nodemask.is_empty() {
        0
    } else {
        nodemask.len() * 64 + 1
    };
    let ptr = if nodemask.is_empty() {
        std::ptr::null()
    } else {
        nodemask.as_ptr()
    };
    // SAFETY: ptr is NULL or points to nodemask.len() words, matching maxnode.
    cvt(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// personality(2).
pub fn personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: integer argument only.
    let ret = unsafe { libc::personality(persona) };
    cvt(ret as libc::c_long).map(drop)
}

/// sched_setaffinity(0, cpus) for the calling thread.
pub fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpu {cpu} out of range"),
            ));
        }
        // SAFETY: cpu is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: set is a valid cpu_set_t of the size passed.
    cvt(
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) }
            as libc::c_long,
    )
    .map(drop)
}

/// TIOCSCTTY: make the terminal on `fd` the controlling terminal of the calling session.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } as libc::c_long).map(drop)
}

/// Opens the pty peer of `master` (TIOCGPTPEER), which needs no path lookup in /dev/pts.
pub fn open_pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: TIOCGPTPEER takes open flags as its integer argument and returns a new fd.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    let fd = cvt(fd as libc::c_long)?;
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// unlockpt on a pty master.
pub fn unlock_pty(master: BorrowedFd<'_>) -> io::Result<()> {
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer, which is valid for the call.
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } as libc::c_long)
        .map(drop)
}

/// The window size of a terminal, if `fd` is one.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (ret == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sets the window size of a terminal.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, valid for the call.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } as libc::c_long).map(drop)
}

/// getcwd(2) as raw bytes: after pivot_root a working directory outside the new root shows up
/// as a path that does not start with '/' ("(unreachable)/..."), which is how a leaked
/// directory is detected.
pub fn getcwd_raw() -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: the raw syscall writes at most buf.len() bytes into buf and returns the length
    // written, including the NUL.
    let n = cvt(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })?;
    buf.truncate((n as usize).saturating_sub(1));
    Ok(buf)
}

/// umask(2).
pub fn umask(mask: u32) {
    // SAFETY: integer argument only; umask cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// setgroups(2) for the calling thread.
pub fn setgroups(gids: &[u32]) -> io::Result<()> {
    // SAFETY: gids points to gids.len() gid_t values that outlive the call.
    cvt(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) }).map(drop)
}

/// setresuid(2) / setresgid(2) for the calling thread, as raw syscalls: the container init is
/// single-threaded, so glibc's all-threads broadcast is not needed.
pub fn setresuid(uid: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn setresgid(gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// prctl(2) with integer arguments.
pub fn prctl(option: i32, arg2: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: the options used by the executor take integer arguments only.
    let ret = unsafe {
        libc::prctl(
            option,
            arg2,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    cvt(ret as libc::c_long).map(|r| r as i32)
}

/// Is a pid alive (signal 0)?
pub fn pid_alive(pid: libc::pid_t) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks existence and permission.
    let ret = unsafe { libc::kill(pid, 0) };
    ret == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// kill(2).
pub fn kill(pid: libc::pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    cvt(unsafe { libc::kill(pid, sig) } as libc::c_long).map(drop)
}

/// waitpid(pid, 0) retried on EINTR; returns the raw wait status.
pub fn waitpid(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid int for the call to write into.
        let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
        if ret >= 0 {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// A shell-style exit code from a raw wait status: the code, or 128 + the signal.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// setrlimit(2); u64::MAX is RLIM_INFINITY.
pub fn setrlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit for the call to read.
    cvt(unsafe { libc::setrlimit(resource, &lim) } as libc::c_long).map(drop)
}

/// dup2(2) onto a fixed descriptor number (stdio), which the caller then owns.
pub fn dup2(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table; `target` is one of 0..=2, which the
    // caller means to replace.
    cvt(unsafe { libc::dup2(fd.as_raw_fd(), target) } as libc::c_long).map(drop)
}

/// Puts a signal back to its default disposition.
pub fn default_signal(sig: libc::c_int) -> io::Result<()> {
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run in signal context.
    let prev = unsafe { libc::signal(sig, libc::SIG_DFL) };
    if prev == libc::SIG_ERR {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
