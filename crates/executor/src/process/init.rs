//! Code that runs in the container process (I) between fork and execve. It is single-threaded
//! and never returns into the runtime's code paths: on failure it reports on the channel and
//! exits.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use oci_spec::runtime::{Process, Spec};

use super::channel::{Channel, Message};
use crate::error::{Error, IoContext, Result};
use crate::{capabilities, hooks, rootfs, sys};

/// What the container process does: become a new container's init, or run inside an
/// existing container.
pub enum Role<'a> {
    Init {
        rootfs: &'a Path,
        bundle: &'a Path,
        /// The container's state directory (O_PATH), where the exec fifo is.
        state_dir: OwnedFd,
        no_pivot: bool,
        no_new_keyring: bool,
        new_mount_ns: bool,
        new_uts_ns: bool,
        cgroup_path: &'a Path,
    },
    Exec,
}

pub struct InitConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub role: Role<'a>,
    /// Connected console socket when process.terminal is set.
    pub console_socket: Option<OwnedFd>,
    /// Descriptors 3..3+n stay open in the container.
    pub preserve_fds: u32,
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the container process's setup and execs the user's program.
pub fn run(cfg: &InitConfig<'_>, ch: &Channel) -> Result<Infallible> {
    let (pid, created) = match ch.recv().map_err(|e| Error::Init(e.to_string()))? {
        Some(Message::Started { pid, created }) => (pid, created),
        other => return Err(Error::Init(format!("expected Started, got {other:?}"))),
    };
    let spec = cfg.spec;
    let process = cfg.process;
    let linux = spec.linux().as_ref();
    let hook_state = |status: &str| {
        serde_json::json!({
            "ociVersion": spec.version(), "id": cfg.id, "pid": pid, "status": status,
            "bundle": match &cfg.role { Role::Init { bundle, .. } => bundle.to_path_buf(), Role::Exec => PathBuf::new() },
            "created": created,
            "annotations": spec.annotations().clone().unwrap_or_default(),
        })
    };
    // Compiled before the root changes: nothing in it needs the container's files.
    let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(crate::seccomp::compile(profile)?),
        None => None,
    };
    let no_new_privs = process.no_new_privileges().unwrap_or(false);

    if let Role::Init {
        rootfs,
        no_pivot,
        new_mount_ns,
        cgroup_path,
        new_uts_ns,
        no_new_keyring,
        ..
    } = &cfg.role
    {
        if !new_mount_ns {
            return Err(Error::spec(
                "linux.namespaces",
                "a container needs its own mount namespace",
            ));
        }
        rootfs::prepare(spec, rootfs, cgroup_path)?;
        let hooks = spec.hooks().as_ref();
        if hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some()) {
            ch.send(&Message::RunCreateRuntimeHooks)
                .map_err(|e| Error::Init(e.to_string()))?;
            ch.expect(Message::HooksDone)
                .map_err(|e| Error::Init(e.to_string()))?;
        }
        hooks::run_all(
            hooks.and_then(|h| h.create_container().as_ref()),
            &hook_state("created"),
        )?;
        rootfs::enter(rootfs, *no_pivot)?;
        rootfs::finish(spec)?;
        if *new_uts_ns {
            if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
                nix::unistd::sethostname(h)
                    .map_err(|e| Error::sys(format!("sethostname {h:?}"), e))?;
            }
            if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
                fs::write("/proc/sys/kernel/domainname", d)
                    .ctx("write", "/proc/sys/kernel/domainname")?;
            }
        }
        for (key, value) in linux
            .and_then(|l| l.sysctl().as_ref())
            .into_iter()
            .flatten()
        {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            fs::write(&path, value).map_err(|e| {
                Error::spec(
                    format!("linux.sysctl.{key}"),
                    format!("write {}: {e}", path.display()),
                )
            })?;
        }
        rootfs::protect_paths(spec)?;
        if !no_new_keyring {
            let name = CString::new(format!("_ses.{}", cfg.id)).expect("id has no NUL");
            // Kernels without keyrings (or seccomp profiles forbidding keyctl) are not fatal.
            if let Err(e) = sys::join_session_keyring(&name) {
                tracing::debug!(error = %e, "no session keyring");
            }
        }
    }
    set_oom_score_adj(process.oom_score_adj())?;
    set_rlimits(process)?;
    set_scheduling(spec, process)?;

    if process.terminal().unwrap_or(false) {
        setup_terminal(cfg)?;
    } else if matches!(cfg.role, Role::Init { .. }) {
        // The container init leads its own session, like runc's.
        let _ = nix::unistd::setsid();
    }

    let mut seccomp = seccomp;
    if !no_new_privs {
        // Loading a filter without no_new_privs needs CAP_SYS_ADMIN: do it while we have it.
        load_seccomp(&mut seccomp, ch)?;
    }
    let caps = process.capabilities().as_ref();
    capabilities::apply_bounding(caps)?;
    set_user(process)?;
    capabilities::apply(caps)?;
    if no_new_privs {
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(|e| Error::sys("set no_new_privs", e))?;
    }
    enter_cwd(process.cwd())?;
    let env = environment(process);
    let (exe, argv) = resolve_exe(process, &env)?;
    // Nothing of the runtime may reach the container: every descriptor above the preserved
    // ones closes at execve (CVE-2024-21626).
    sys::cloexec_from(3 + cfg.preserve_fds).map_err(|e| Error::sys("close_range", e))?;

    // A notifying filter is loaded while the runtime still listens, to take the listener fd.
    if seccomp.as_ref().is_some_and(|f| f.uses_notify()) {
        load_seccomp(&mut seccomp, ch)?;
    }
    let mut exec_fifo = None;
    if let Role::Init { state_dir, .. } = &cfg.role {
        ch.send(&Message::Ready)
            .map_err(|e| Error::Init(e.to_string()))?;
        // Blocks until `start` opens the other end. startContainer hooks run as part of start,
        // before the byte that tells start they are done; the descriptor then stays open until
        // execve closes it (close-on-exec), which is how start knows the program runs and
        // poststart hooks may follow, in the order the spec gives.
        let fifo = nix::fcntl::openat(
            state_dir.as_fd(),
            crate::state::EXEC_FIFO,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys("open exec fifo", e))?;
        hooks::run_all(
            spec.hooks()
                .as_ref()
                .and_then(|h| h.start_container().as_ref()),
            &hook_state("created"),
        )?;
        nix::unistd::write(&fifo, b"0").map_err(|e| Error::sys("write exec fifo", e))?;
        exec_fifo = Some(fifo);
    }
    set_final_affinity(process)?;
    reset_signals()?;
    // Everything execve needs is built before the filter is loaded.
    let envp: Vec<CString> = env
        .iter()
        .filter_map(|e| CString::new(e.as_bytes()).ok())
        .collect();
    load_seccomp(&mut seccomp, ch)?;
    let err = sys::execve(&exe, &argv, &envp);
    drop(exec_fifo);
    Err(Error::sys(format!("exec {:?}", exe), err))
}

/// The program starts with no signal blocked and SIGPIPE at its default: Rust's runtime
/// ignores SIGPIPE, and the caller (a shim, a harness) may block signals; both would survive
/// execve and change how the program behaves (`yes | head` would never end).
fn reset_signals() -> Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| Error::sys("unblock signals", e))?;
    sys::default_signal(libc::SIGPIPE).map_err(|e| Error::sys("reset SIGPIPE", e))?;
    Ok(())
}

/// Loads the filter if it is still pending; a listener fd goes to the runtime.
fn load_seccomp(filter: &mut Option<crate::seccomp::Filter>, ch: &Channel) -> Result<()> {
    let Some(f) = filter.take() else {
        return Ok(());
    };
    if let Some(listener) = f.load()? {
        ch.send_with_fd(&Message::SeccompListener, listener.as_fd())
            .map_err(|e| Error::sys("send the seccomp listener to the runtime", e))?;
    }
    Ok(())
}

fn set_oom_score_adj(value: Option<i32>) -> Result<()> {
    let Some(value) = value else { return Ok(()) };
    let path = "/proc/self/oom_score_adj";
    match fs::write(path, value.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            // Lowering the score needs CAP_SYS_RESOURCE, which some hosts deny even to root:
            // keep the current value, as containerd's restrict_oom_score_adj does.
            let current = fs::read_to_string(path).unwrap_or_default();
            tracing::warn!(
                requested = value,
                current = current.trim(),
                "cannot lower oom_score_adj here; keeping the current value"
            );
            Ok(())
        }
        Err(e) => Err(Error::io("write", path, e)),
    }
}

fn set_rlimits(process: &Process) -> Result<()> {
    use oci_spec::runtime::PosixRlimitType as T;
    for r in process.rlimits().iter().flatten() {
        let resource = match r.typ() {
            T::RlimitCpu => libc::RLIMIT_CPU,
            T::RlimitFsize => libc::RLIMIT_FSIZE,
            T::RlimitData => libc::RLIMIT_DATA,
            T::RlimitStack => libc::RLIMIT_STACK,
            T::RlimitCore => libc::RLIMIT_CORE,
            T::RlimitRss => libc::RLIMIT_RSS,
            T::RlimitNproc => libc::RLIMIT_NPROC,
            T::RlimitNofile => libc::RLIMIT_NOFILE,
            T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
            T::RlimitAs => libc::RLIMIT_AS,
            T::RlimitLocks => libc::RLIMIT_LOCKS,
            T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
            T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
            T::RlimitNice => libc::RLIMIT_NICE,
            T::RlimitRtprio => libc::RLIMIT_RTPRIO,
            T::RlimitRttime => libc::RLIMIT_RTTIME,
        };
        sys::setrlimit(resource, r.soft(), r.hard())
            .map_err(|e| Error::spec(format!("process.rlimits.{:?}", r.typ()), e.to_string()))?;
    }
    Ok(())
}

fn set_scheduling(spec: &Spec, process: &Process) -> Result<()> {
    if let Some(io) = process.io_priority() {
        use oci_spec::runtime::IOPriorityClass as C;
        let class = match io.class() {
            C::IoprioClassRt => 1,
            C::IoprioClassBe => 2,
            C::IoprioClassIdle => 3,
        };
        sys::ioprio_set(class, io.priority() as u32)
            .map_err(|e| Error::spec("process.ioPriority", e.to_string()))?;
    }
    if let Some(s) = process.scheduler() {
        use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
        let mut attr = sys::SchedAttr {
            sched_policy: match s.policy() {
                P::SchedOther => 0,
                P::SchedFifo => 1,
                P::SchedRr => 2,
                P::SchedBatch => 3,
                P::SchedIso => 4,
                P::SchedIdle => 5,
                P::SchedDeadline => 6,
            },
            sched_nice: s.nice().unwrap_or(0),
            sched_priority: s.priority().unwrap_or(0) as u32,
            sched_runtime: s.runtime().unwrap_or(0),
            sched_deadline: s.deadline().unwrap_or(0),
            sched_period: s.period().unwrap_or(0),
            ..Default::default()
        };
        for f in s.flags().iter().flatten() {
            attr.sched_flags |= match f {
                F::SchedResetOnFork => 0x01,
                F::SchedFlagReclaim => 0x02,
                F::SchedFlagDLOverrun => 0x04,
                F::SchedFlagKeepPolicy => 0x08,
                F::SchedFlagKeepParams => 0x10,
                F::SchedFlagUtilClampMin => 0x20,
                F::SchedFlagUtilClampMax => 0x40,
            };
        }
        sys::sched_setattr(&mut attr)
            .map_err(|e| Error::spec("process.scheduler", e.to_string()))?;
    }
    let linux = spec.linux().as_ref();
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        use oci_spec::runtime::LinuxPersonalityDomain as D;
        let persona = match p.domain() {
            D::PerLinux => 0x0000,
            D::PerLinux32 => 0x0008,
        };
        sys::personality(persona).map_err(|e| Error::spec("linux.personality", e.to_string()))?;
    }
    if let Some(mp) = linux.and_then(|l| l.memory_policy().as_ref()) {
        apply_memory_policy(mp)?;
    }
    if let Some(cpus) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().clone())
    {
        let list =
            parse_cpu_list(&cpus).map_err(|e| Error::spec("process.execCPUAffinity.initial", e))?;
        sys::set_affinity(&list)
            .map_err(|e| Error::spec("process.execCPUAffinity.initial", e.to_string()))?;
    }
    Ok(())
}

/// execCPUAffinity.final, or back to every CPU of the cgroup when only `initial` was given.
fn set_final_affinity(process: &Process) -> Result<()> {
    let Some(a) = process.exec_cpu_affinity() else {
        return Ok(());
    };
    let cpus = match a.cpu_affinity_final() {
        Some(list) => {
            parse_cpu_list(list).map_err(|e| Error::spec("process.execCPUAffinity.final", e))?
        }
        None if a.initial().is_some() => (0..libc::CPU_SETSIZE as usize).collect(),
        None => return Ok(()),
    };
    sys::set_affinity(&cpus)
        .map_err(|e| Error::spec("process.execCPUAffinity.final", e.to_string()))
}

fn apply_memory_policy(mp: &oci_spec::runtime::LinuxMemoryPolicy) -> Result<()> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let mut mode = match mp.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for f in mp.flags().iter().flatten() {
        mode |= match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    let mut mask: Vec<libc::c_ulong> = Vec::new();
    if let Some(nodes) = mp.nodes().as_deref().filter(|n| !n.is_empty()) {
        for n in parse_cpu_list(nodes).map_err(|e| Error::spec("linux.memoryPolicy.nodes", e))? {
            if mask.len() <= n / 64 {
                mask.resize(n / 64 + 1, 0);
            }
            mask[n / 64] |= 1 << (n % 64);
        }
    }
    sys::set_mempolicy(mode, &mask).map_err(|e| Error::spec("linux.memoryPolicy", e.to_string()))
}

/// "0-3,7" -> [0, 1, 2, 3, 7].
pub fn parse_cpu_list(s: &str) -> std::result::Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("invalid list {s:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

/// Creates the pty, sends its master to the console socket, and makes the peer this
/// process's controlling terminal and stdio.
fn setup_terminal(cfg: &InitConfig<'_>) -> Result<()> {
    let sock = cfg
        .console_socket
        .as_ref()
        .ok_or_else(|| Error::spec("process.terminal", "a terminal needs --console-socket"))?;
    let master = nix::fcntl::open(
        "/dev/ptmx",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open /dev/ptmx", e))?;
    sys::unlock_pty(master.as_fd()).map_err(|e| Error::sys("unlock pty", e))?;
    let peer = sys::open_pty_peer(master.as_fd()).map_err(|e| Error::sys("open pty peer", e))?;
    if let Some(size) = cfg.process.console_size() {
        let _ = sys::set_winsize(peer.as_fd(), size.height() as u16, size.width() as u16);
    }
    if matches!(cfg.role, Role::Init { .. }) {
        rootfs::bind_console(&peer)?;
    }
    let name = fs::read_link(format!("/proc/self/fd/{}", peer.as_raw_fd()))
        .unwrap_or_else(|_| PathBuf::from("/dev/console"));
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(name.as_os_str().as_bytes())];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::sys("send pty master to console socket", e))?;
    drop(master);
    nix::unistd::setsid().map_err(|e| Error::sys("setsid", e))?;
    sys::set_controlling_tty(peer.as_fd())
        .map_err(|e| Error::sys("set controlling terminal", e))?;
    for fd in 0..3 {
        sys::dup2(peer.as_fd(), fd).map_err(|e| Error::sys("dup2 terminal", e))?;
    }
    Ok(())
}

fn set_user(process: &Process) -> Result<()> {
    let user = process.user();
    // The supplementary groups are exactly additionalGids (as runc sets them): the primary
    // gid is one of them only when listed, as Kubernetes lists it.
    let mut groups: Vec<u32> = Vec::new();
    for g in user.additional_gids().clone().unwrap_or_default() {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    // Keep the permitted set across the uid change; capabilities::apply sets it exactly after.
    sys::prctl(libc::PR_SET_KEEPCAPS, 1).map_err(|e| Error::sys("set keepcaps", e))?;
    // setgroups is denied in a user namespace whose setgroups file says deny; ignore EPERM there
    // only when no supplementary groups were asked for.
    if let Err(e) = sys::setgroups(&groups) {
        if user
            .additional_gids()
            .as_ref()
            .is_some_and(|g| !g.is_empty())
        {
            return Err(Error::sys("setgroups", e));
        }
    }
    sys::setresgid(user.gid()).map_err(|e| Error::sys(format!("setresgid {}", user.gid()), e))?;
    sys::setresuid(user.uid()).map_err(|e| Error::sys(format!("setresuid {}", user.uid()), e))?;
    sys::prctl(libc::PR_SET_KEEPCAPS, 0).map_err(|e| Error::sys("clear keepcaps", e))?;
    if let Some(mask) = user.umask() {
        sys::umask(mask);
    }
    Ok(())
}

/// Enters the working directory and checks it lies inside the container's root: a directory
/// descriptor leaked from the host would show up as an unreachable path (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd)
        .map_err(|e| Error::spec("process.cwd", format!("chdir {}: {e}", cwd.display())))?;
    let now = sys::getcwd_raw().map_err(|e| Error::sys("getcwd", e))?;
    if !now.starts_with(b"/") {
        return Err(Error::spec(
            "process.cwd",
            format!("{} resolves outside the container's root", cwd.display()),
        ));
    }
    Ok(())
}

fn environment(process: &Process) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if let Some(n) = listen_fds() {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".into());
    }
    env
}

/// Socket activation: when the runtime itself got LISTEN_FDS, the container gets them.
pub fn listen_fds() -> Option<u32> {
    std::env::var("LISTEN_FDS")
        .ok()?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// Finds the program the way execvp would, with the container's PATH, checking it can be
/// executed now so that a missing binary fails `create`, not the container later.
fn resolve_exe(process: &Process, env: &[String]) -> Result<(CString, Vec<CString>)> {
    let args = process.args().as_ref().expect("validated");
    let argv: Vec<CString> = args
        .iter()
        .map(|a| {
            CString::new(a.as_bytes())
                .map_err(|_| Error::spec("process.args", "contains a NUL byte"))
        })
        .collect::<Result<_>>()?;
    let prog = &args[0];
    let candidates: Vec<PathBuf> = if prog.contains('/') {
        vec![PathBuf::from(prog)]
    } else {
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(prog))
            .collect()
    };
    for c in &candidates {
        let meta = match fs::metadata(c) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_file() && nix::unistd::access(c, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok((
                CString::new(c.as_os_str().as_bytes()).expect("no NUL"),
                argv,
            ));
        }
    }
    Err(Error::spec(
        "process.args",
        format!("exec: {prog:?}: executable file not found in $PATH"),
    ))
}
