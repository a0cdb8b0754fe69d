//! Seccomp profiles: berth's runtime default, a node-local JSON file, or none.
//!
//! The default profile denies (EPERM) every syscall it does not list. The table below is
//! berth's own: the syscalls an ordinary containerized program needs, then the ones that are
//! only harmless when the container already holds the capability that guards them in the
//! kernel, then a few allowed only with restricted arguments.

use std::path::Path;

use berth_api::runtime::v1::{SecurityProfile, security_profile::ProfileType};
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use super::{Error, Result, build_err};

/// What the container asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// No filter.
    Unconfined,
    /// [`default_profile`].
    RuntimeDefault,
    /// A JSON `LinuxSeccomp` at this absolute path on the node.
    Localhost(String),
}

/// The choice from the CRI's `seccomp` field, or the deprecated `seccomp_profile_path`
/// ("runtime/default", "docker/default", "unconfined", `"localhost/<path>"`) when it is unset.
/// Neither set: unconfined (what the kubelet asks for when the pod says nothing).
pub fn choice(profile: Option<&SecurityProfile>, deprecated_path: &str) -> Result<SeccompChoice> {
    if let Some(p) = profile {
        return Ok(match p.profile_type() {
            ProfileType::RuntimeDefault => SeccompChoice::RuntimeDefault,
            ProfileType::Unconfined => SeccompChoice::Unconfined,
            ProfileType::Localhost => SeccompChoice::Localhost(p.localhost_ref.clone()),
        });
    }
    match deprecated_path {
        "" | "unconfined" => Ok(SeccompChoice::Unconfined),
        "runtime/default" | "docker/default" => Ok(SeccompChoice::RuntimeDefault),
        other => match other.strip_prefix("localhost/") {
            Some(path) => Ok(SeccompChoice::Localhost(path.to_owned())),
            None => Err(Error::InvalidArgument(format!(
                "unknown seccomp profile {other:?}"
            ))),
        },
    }
}

/// The filter for `choice`, given the capabilities the process will hold.
pub fn profile(choice: &SeccompChoice, caps: &Capabilities) -> Result<Option<LinuxSeccomp>> {
    match choice {
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::RuntimeDefault => default_profile(caps).map(Some),
        SeccompChoice::Localhost(path) => load_localhost(Path::new(path)).map(Some),
    }
}

/// Reads a node-local profile: an OCI `LinuxSeccomp` as JSON.
pub fn load_localhost(path: &Path) -> Result<LinuxSeccomp> {
    if !path.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "seccomp profile {}: not an absolute path",
            path.display()
        )));
    }
    let data = std::fs::read(path)
        .map_err(|e| Error::InvalidArgument(format!("seccomp profile {}: {e}", path.display())))?;
    serde_json::from_slice(&data).map_err(|e| {
        Error::InvalidArgument(format!(
            "seccomp profile {}: not a valid profile: {e}",
            path.display()
        ))
    })
}

/// Syscalls every container may make.
#[rustfmt::skip]
const ALWAYS: &[&str] = &[
    // Files and directories.
    "access", "faccessat", "faccessat2", "open", "openat", "openat2", "creat", "close",
    "close_range", "read", "readv", "pread64", "preadv", "preadv2", "write", "writev",
    "pwrite64", "pwritev", "pwritev2", "lseek", "_llseek", "stat", "stat64", "lstat", "lstat64",
    "fstat", "fstat64", "newfstatat", "fstatat64", "statx", "statfs", "statfs64", "fstatfs",
    "fstatfs64", "getdents", "getdents64", "readdir", "mkdir", "mkdirat", "rmdir", "rename",
    "renameat", "renameat2", "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat",
    "readlink", "readlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "chown32",
    "fchown", "fchown32", "fchownat", "lchown", "lchown32", "truncate", "truncate64",
    "ftruncate", "ftruncate64", "fallocate", "fadvise64", "fadvise64_64", "arm_fadvise64_64",
    "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "flock", "fcntl", "fcntl64",
    "dup", "dup2", "dup3", "pipe", "pipe2", "chdir", "fchdir", "getcwd", "umask", "utime",
    "utimes", "utimensat", "utimensat_time64", "futimesat", "mknod", "mknodat", "ioctl",
    "copy_file_range", "sendfile", "sendfile64", "splice", "tee", "vmsplice",
    "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr",
    "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "getxattrat",
    "setxattrat", "listxattrat", "removexattrat", "memfd_create", "memfd_secret",
    // Polling and events.
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait",
    "epoll_wait_old", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "signalfd", "signalfd4",
    "timerfd_create", "timerfd_settime", "timerfd_settime64", "timerfd_gettime",
    "timerfd_gettime64", "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64",
    // io_uring_* are left out: a large kernel attack surface few programs need.
    "futex", "futex_time64", "futex_waitv", "futex_wait", "futex_wake",
    "futex_requeue", "set_robust_list", "get_robust_list", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self",
    // Memory.
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "msync", "madvise", "mincore",
    "mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "remap_file_pages", "map_shadow_stack", "mseal",
    // Processes, threads and signals.
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
    "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigpending", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaction", "sigaltstack", "signal", "sigpending",
    "sigprocmask", "sigreturn", "sigsuspend", "pause", "pidfd_open", "pidfd_send_signal",
    "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
    "set_tid_address", "arch_prctl", "prctl", "rseq", "restart_syscall", "sched_yield",
    "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_getattr", "sched_setattr", "getpriority", "setpriority", "ioprio_get", "ioprio_set",
    "getrlimit", "ugetrlimit", "setrlimit", "prlimit64", "getrusage", "times", "capget",
    "capset", "get_thread_area", "set_thread_area", "getcpu", "process_mrelease",
    // Tracing one's own children needs no capability (and kernels since 4.8 check seccomp
    // again after a tracer changes a syscall); installing a further filter only narrows.
    "ptrace", "seccomp",
    // Credentials (the kernel checks CAP_SETUID/CAP_SETGID itself).
    "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid",
    "getegid32", "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups",
    "getgroups32", "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32",
    "setregid", "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32",
    "setgroups", "setgroups32", "setfsuid", "setfsuid32", "setfsgid", "setfsgid32",
    // Time.
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "alarm",
    "getitimer", "setitimer", "timer_create", "timer_settime", "timer_settime64",
    "timer_gettime", "timer_gettime64", "timer_getoverrun", "timer_delete", "adjtimex",
    // Sockets.
    "socket", "socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4",
    "getsockname", "getpeername", "getsockopt", "setsockopt", "shutdown", "send", "sendto",
    "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
    // SysV IPC and POSIX message queues (namespaced).
    "ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semtimedop_time64", "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open",
    "mq_unlink", "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
    // System information.
    "uname", "olduname", "sysinfo", "getrandom", "nice", "readahead", "cachestat",
    "fanotify_mark",
];

/// Syscalls allowed only when the container holds the capability: the kernel would refuse
/// most of them anyway, but the filter keeps the attack surface closed when it does not.
#[rustfmt::skip]
const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            // Mounting and the new mount API.
            "mount", "umount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick",
            "move_mount", "open_tree", "mount_setattr",
            // Namespaces: clone with CLONE_NEW* flags, unshare, setns.
            "clone", "clone3", "unshare", "setns",
            // Host identity and kernel state.
            "sethostname", "setdomainname", "quotactl", "quotactl_fd", "lookup_dcookie",
            "fanotify_init", "name_to_handle_at",
            "bpf", "perf_event_open", "syslog", "pivot_root",
        ],
    ),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["init_module", "finit_module", "delete_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
            "process_madvise", "userfaultfd",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
          "clock_adjtime64"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &["get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind",
          "migrate_pages", "move_pages"],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// The namespace flags of clone(2): CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS,
/// CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// personality(2) values a program may set: PER_LINUX, PER_LINUX32, UNAME26 with either, and
/// the 0xffffffff query.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The architectures a container on this node may run code of: the native one and its
/// compatibility modes.
pub fn native_architectures() -> Vec<Arch> {
    if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    }
}

/// berth's runtime default profile for a process holding `caps`.
pub fn default_profile(caps: &Capabilities) -> Result<LinuxSeccomp> {
    let allow = |names: Vec<String>| -> Result<LinuxSyscall> {
        LinuxSyscallBuilder::default()
            .names(names)
            .action(LinuxSeccompAction::ScmpActAllow)
            .build()
            .map_err(build_err("linux.seccomp.syscalls"))
    };
    let own = |list: &[&str]| -> Vec<String> { list.iter().map(|s| s.to_string()).collect() };
    let mut rules = vec![allow(own(ALWAYS))?];
    let mut granted: Vec<String> = Vec::new();
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(cap) {
            for n in own(names) {
                if !granted.contains(&n) {
                    granted.push(n);
                }
            }
        }
    }
    let sys_admin = caps.contains(&Capability::SysAdmin);
    if !granted.is_empty() {
        rules.push(allow(granted)?);
    }
    if !sys_admin {
        // clone without namespace flags (fork, threads); clone3 cannot be filtered on its
        // flags (they sit in memory), so it fails with ENOSYS and libc falls back to clone.
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(CLONE_NAMESPACE_FLAGS)
            .value_two(0u64)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .map_err(build_err("linux.seccomp.syscalls.args"))?;
        rules.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone".to_owned()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg])
                .build()
                .map_err(build_err("linux.seccomp.syscalls"))?,
        );
        rules.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_owned()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(libc::ENOSYS as u32)
                .build()
                .map_err(build_err("linux.seccomp.syscalls"))?,
        );
    }
    for &value in PERSONALITIES {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(value)
            .op(LinuxSeccompOperator::ScmpCmpEq)
            .build()
            .map_err(build_err("linux.seccomp.syscalls.args"))?;
        rules.push(
            LinuxSyscallBuilder::default()
                .names(vec!["personality".to_owned()])
                .action(LinuxSeccompAction::ScmpActAllow)
                .args(vec![arg])
                .build()
                .map_err(build_err("linux.seccomp.syscalls"))?,
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
        .syscalls(rules)
        .build()
        .map_err(build_err("linux.seccomp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls().iter().flatten().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.args().is_none()
                && r.names().iter().any(|n| n == name)
        })
    }

    fn caps(list: &[Capability]) -> Capabilities {
        list.iter().copied().collect()
    }

    #[test]
    fn default_denies_with_eperm_on_x86() {
        let p = default_profile(&caps(&[])).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        for n in [
            "read",
            "write",
            "execve",
            "openat",
            "futex",
            "socket",
            "exit_group",
            "ptrace",
            "seccomp",
        ] {
            assert!(allowed(&p, n), "{n}");
        }
        for n in [
            "mount",
            "unshare",
            "setns",
            "kcmp",
            "reboot",
            "init_module",
            "bpf",
            "io_uring_setup",
            "keyctl",
        ] {
            assert!(!allowed(&p, n), "{n} must need a capability");
        }
    }

    #[test]
    fn clone_restricted_without_sys_admin() {
        let p = default_profile(&caps(&[Capability::Chown])).unwrap();
        assert!(!allowed(&p, "clone"));
        let rule = p
            .syscalls()
            .iter()
            .flatten()
            .find(|r| *r.names() == ["clone"])
            .unwrap();
        let arg = &rule.args().as_ref().unwrap()[0];
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(
            (arg.value(), arg.value_two()),
            (CLONE_NAMESPACE_FLAGS, Some(0))
        );
        let clone3 = p
            .syscalls()
            .iter()
            .flatten()
            .find(|r| *r.names() == ["clone3"])
            .unwrap();
        assert_eq!(clone3.errno_ret(), Some(libc::ENOSYS as u32));
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let p = default_profile(&caps(&[Capability::SysAdmin, Capability::SysPtrace])).unwrap();
        for n in [
            "mount", "umount2", "unshare", "setns", "clone", "clone3", "ptrace",
        ] {
            assert!(allowed(&p, n), "{n}");
        }
        assert!(!allowed(&p, "reboot"));
        assert!(
            !p.syscalls()
                .iter()
                .flatten()
                .any(|r| *r.names() == ["clone3"] && r.action() == LinuxSeccompAction::ScmpActErrno)
        );
        let p = default_profile(&caps(&[Capability::SysChroot, Capability::SysTime])).unwrap();
        assert!(allowed(&p, "chroot") && allowed(&p, "clock_settime"));
    }

    #[test]
    fn choice_from_profile_and_deprecated_path() {
        let sp = |t: ProfileType, r: &str| SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        };
        assert_eq!(
            choice(Some(&sp(ProfileType::RuntimeDefault, "")), "unconfined").unwrap(),
            SeccompChoice::RuntimeDefault
        );
        assert_eq!(
            choice(Some(&sp(ProfileType::Localhost, "/p.json")), "").unwrap(),
            SeccompChoice::Localhost("/p.json".into())
        );
        assert_eq!(choice(None, "").unwrap(), SeccompChoice::Unconfined);
        assert_eq!(
            choice(None, "docker/default").unwrap(),
            SeccompChoice::RuntimeDefault
        );
        assert_eq!(
            choice(None, "runtime/default").unwrap(),
            SeccompChoice::RuntimeDefault
        );
        assert_eq!(
            choice(None, "localhost//etc/s.json").unwrap(),
            SeccompChoice::Localhost("/etc/s.json".into())
        );
        assert!(choice(None, "bogus").is_err());
    }

    #[test]
    fn localhost_profile_read_or_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("p.json");
        std::fs::write(
            &good,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let p = profile(
            &SeccompChoice::Localhost(good.display().to_string()),
            &caps(&[]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
        let missing = dir.path().join("missing.json");
        let e = load_localhost(&missing).unwrap_err().to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        let e = load_localhost(&bad).unwrap_err().to_string();
        assert!(
            e.contains("bad.json") && e.contains("not a valid profile"),
            "{e}"
        );
        let e = load_localhost(Path::new("rel.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an absolute path"), "{e}");
    }

    #[test]
    fn default_profile_serializes_as_oci_json() {
        let p = default_profile(&caps(&[])).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(v["architectures"][0], "SCMP_ARCH_X86_64");
    }
}
