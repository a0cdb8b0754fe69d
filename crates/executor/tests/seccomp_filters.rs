//! Kernel tests of the seccomp module: each case forks a child, compiles and loads a filter in it
//! (as the container init process does) and checks what the kernel then does to syscalls.
//!
//! This binary uses libtest-mimic (`harness = false`) and runs its cases one after the other on
//! the main thread, so that it forks from a single-threaded process. A case whose prerequisite is
//! missing (seccomp in the kernel, a libseccomp API level, CAP_SYS_ADMIN) is reported *ignored*
//! with the reason on stderr; when the environment variable CI is set it fails instead.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};

use berth_executor::seccomp;
use libtest_mimic::{Arguments, Failed, Trial};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe};
use oci_spec::runtime::LinuxSeccomp;

type CaseResult = Result<(), String>;

/// What a case needs from the machine.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// Seccomp filter mode in the kernel and a libseccomp that can use it.
    Seccomp,
    /// libseccomp API level 3: SCMP_ACT_KILL_PROCESS, SCMP_ACT_LOG, SECCOMP_FILTER_FLAG_LOG.
    ApiLevel3,
    /// libseccomp API level 6: user notification (SCMP_ACT_NOTIFY).
    ApiLevel6,
    /// CAP_SYS_ADMIN, to load a filter without no_new_privs.
    CapSysAdmin,
}

impl Need {
    /// Why the need is not met here, or None when it is.
    fn missing(self) -> Option<String> {
        let api = libseccomp::get_api();
        match self {
            Need::Seccomp if api < 1 => Some(format!(
                "seccomp filters unavailable (libseccomp API level {api})"
            )),
            Need::ApiLevel3 if api < 3 => Some(format!("libseccomp API level {api} < 3")),
            Need::ApiLevel6 if api < 6 => Some(format!("libseccomp API level {api} < 6")),
            Need::CapSysAdmin if !has_cap_sys_admin() => {
                Some("CAP_SYS_ADMIN missing (run as root)".to_owned())
            }
            _ => None,
        }
    }
}

fn has_cap_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

struct Case {
    name: &'static str,
    needs: &'static [Need],
    run: fn() -> CaseResult,
}

fn main() {
    let mut args = Arguments::from_args();
    // Fork only from a single-threaded process: run every case on the main thread.
    args.test_threads = Some(1);
    let ci = std::env::var_os("CI").is_some();

    let trials = cases()
        .into_iter()
        .map(|case| {
            let missing = case.needs.iter().find_map(|need| need.missing());
            match missing {
                None => Trial::test(case.name, move || (case.run)().map_err(Failed::from)),
                Some(reason) if ci => Trial::test(case.name, move || {
                    Err(Failed::from(format!(
                        "prerequisite missing and CI is set: {reason}"
                    )))
                }),
                Some(reason) => {
                    eprintln!("{}: ignored: {reason}", case.name);
                    Trial::test(case.name, || Ok(())).with_ignored_flag(true)
                }
            }
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn cases() -> Vec<Case> {
    use Need::*;
    vec![
        Case {
            name: "denied_syscall_fails_with_errno_ret",
            needs: &[Seccomp],
            run: denied_syscall_fails_with_errno_ret,
        },
        Case {
            name: "errno_ret_defaults_to_eperm",
            needs: &[Seccomp],
            run: errno_ret_defaults_to_eperm,
        },
        Case {
            name: "arg_condition_denies_personality_for_one_value_only",
            needs: &[Seccomp],
            run: arg_condition_denies_personality_for_one_value_only,
        },
        Case {
            name: "arg_condition_denies_socket_for_af_inet6_only",
            needs: &[Seccomp],
            run: arg_condition_denies_socket_for_af_inet6_only,
        },
        Case {
            name: "masked_eq_compares_masked_argument_with_value_two",
            needs: &[Seccomp],
            run: masked_eq_compares_masked_argument_with_value_two,
        },
        Case {
            name: "conditions_on_different_arguments_are_anded",
            needs: &[Seccomp],
            run: conditions_on_different_arguments_are_anded,
        },
        Case {
            name: "conditions_repeating_an_argument_are_ored",
            needs: &[Seccomp],
            run: conditions_repeating_an_argument_are_ored,
        },
        Case {
            name: "default_errno_with_allow_list",
            needs: &[Seccomp],
            run: default_errno_with_allow_list,
        },
        Case {
            name: "kill_process_kills_with_sigsys",
            needs: &[Seccomp, ApiLevel3],
            run: kill_process_kills_with_sigsys,
        },
        Case {
            name: "trap_raises_sigsys",
            needs: &[Seccomp],
            run: trap_raises_sigsys,
        },
        Case {
            name: "log_flag_and_log_action_are_accepted",
            needs: &[Seccomp, ApiLevel3],
            run: log_flag_and_log_action_are_accepted,
        },
        Case {
            name: "extra_architectures_load",
            needs: &[Seccomp],
            run: extra_architectures_load,
        },
        Case {
            name: "notify_returns_a_working_listener_fd",
            needs: &[Seccomp, ApiLevel6],
            run: notify_returns_a_working_listener_fd,
        },
        Case {
            name: "tsync_flag_with_notify_loads",
            needs: &[Seccomp, ApiLevel6],
            run: tsync_flag_with_notify_loads,
        },
        Case {
            name: "load_leaves_no_new_privs_to_the_caller",
            needs: &[Seccomp, CapSysAdmin],
            run: load_leaves_no_new_privs_to_the_caller,
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("test profile parses")
}

/// Sets no_new_privs, validates, compiles and loads `json` in the calling (child) process.
fn load_with_nnp(json: &str) -> Result<Option<OwnedFd>, String> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("set no_new_privs: {e}"))?;
    load(json)
}

fn load(json: &str) -> Result<Option<OwnedFd>, String> {
    let profile = profile(json);
    seccomp::validate(&profile).map_err(|e| format!("validate: {e}"))?;
    let filter = seccomp::compile(&profile).map_err(|e| format!("compile: {e}"))?;
    filter.load().map_err(|e| format!("load: {e}"))
}

/// Result of a raw syscall: Ok(return value) or Err(errno).
fn check(ret: libc::c_long) -> Result<libc::c_long, i32> {
    if ret == -1 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(ret)
    }
}

fn sys_mkdir(path: &str) -> Result<libc::c_long, i32> {
    let path = CString::new(path).unwrap();
    // SAFETY: mkdir reads a NUL-terminated string that outlives the call.
    check(unsafe { libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o700) })
}

fn sys_personality(persona: u64) -> Result<libc::c_long, i32> {
    // SAFETY: personality takes an integer and touches no memory of ours.
    check(unsafe { libc::syscall(libc::SYS_personality, persona) })
}

fn sys_socket(domain: i32, ty: i32) -> Result<libc::c_long, i32> {
    // SAFETY: socket takes integers; the fd it may return is closed right away.
    let r = check(unsafe { libc::syscall(libc::SYS_socket, domain, ty, 0) });
    if let Ok(fd) = r {
        // SAFETY: fd was just returned by socket and is ours.
        unsafe { libc::close(fd as i32) };
    }
    r
}

fn expect(what: &str, got: Result<libc::c_long, i32>, want_errno: Option<i32>) -> CaseResult {
    match (got, want_errno) {
        (Err(e), Some(w)) if e == w => Ok(()),
        (Ok(_), None) => Ok(()),
        (got, Some(w)) => Err(format!("{what}: want errno {w}, got {got:?}")),
        (got, None) => Err(format!("{what}: want success, got {got:?}")),
    }
}

/// A directory path that does not exist, so that an allowed mkdir succeeds.
fn fresh_dir(tag: &str) -> String {
    format!(
        "{}/berth-seccomp-{tag}-{}",
        std::env::temp_dir().display(),
        std::process::id()
    )
}

/// Runs `body` in a forked child and returns how the child ended plus what it reported.
///
/// The child sends an error message over a pipe and exits 1 (2 on panic), or exits 0. Only
/// `write` and `exit_group` are needed after `body` returns, which every profile here allows.
fn in_child(body: impl FnOnce() -> CaseResult) -> Result<(WaitStatus, String), String> {
    let (read_end, write_end) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: this test binary runs its cases on the main thread only (test_threads = 1), so the
    // child of fork is a copy of a single-threaded process and may do anything.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(read_end);
            // No core files from the SIGSYS cases.
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            let code = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(Ok(())) => 0,
                Ok(Err(message)) => {
                    let _ = std::fs::File::from(write_end).write_all(message.as_bytes());
                    1
                }
                Err(_) => 2,
            };
            // SAFETY: _exit ends the child without running the parent's atexit handlers or
            // unwinding into the test harness.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut message = String::new();
            let _ = std::fs::File::from(read_end).read_to_string(&mut message);
            let status = waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
            Ok((status, message))
        }
    }
}

/// Runs `body` in a child and wants it to exit 0.
fn child_passes(body: impl FnOnce() -> CaseResult) -> CaseResult {
    match in_child(body)? {
        (WaitStatus::Exited(_, 0), _) => Ok(()),
        (WaitStatus::Exited(_, 1), message) => Err(message),
        (WaitStatus::Exited(_, 2), _) => Err("child panicked".to_owned()),
        (status, message) => Err(format!("child ended with {status:?}: {message}")),
    }
}

/// Runs `body` in a child and wants it killed by SIGSYS.
fn child_killed_by_sigsys(body: impl FnOnce() -> CaseResult) -> CaseResult {
    match in_child(body)? {
        (WaitStatus::Signaled(_, Signal::SIGSYS, _), _) => Ok(()),
        (status, message) => Err(format!(
            "want SIGSYS, child ended with {status:?}: {message}"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Cases

fn denied_syscall_fails_with_errno_ret() -> CaseResult {
    child_passes(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        )?;
        expect("mkdir", sys_mkdir(&fresh_dir("enosys")), Some(libc::ENOSYS))
    })
}

fn errno_ret_defaults_to_eperm() -> CaseResult {
    child_passes(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )?;
        expect("mkdir", sys_mkdir(&fresh_dir("eperm")), Some(libc::EPERM))
    })
}

fn arg_condition_denies_personality_for_one_value_only() -> CaseResult {
    child_passes(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":38,
                 "args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]}]}"#,
        )?;
        expect(
            "personality(0xffffffff)",
            sys_personality(0xffff_ffff),
            Some(libc::ENOSYS),
        )?;
        expect("personality(PER_LINUX)", sys_personality(0), None)
    })
}

fn arg_condition_denies_socket_for_af_inet6_only() -> CaseResult {
    child_passes(|| {
        load_with_nnp(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":{eafnosupport},
                 "args":[{{"index":0,"value":{inet6},"op":"SCMP_CMP_EQ"}}]}}]}}"#,
            eafnosupport = libc::EAFNOSUPPORT,
            inet6 = libc::AF_INET6,
        ))?;
        expect(
            "socket(AF_INET6)",
            sys_socket(libc::AF_INET6, libc::SOCK_STREAM),
            Some(libc::EAFNOSUPPORT),
        )?;
        expect(
            "socket(AF_UNIX)",
            sys_socket(libc::AF_UNIX, libc::SOCK_STREAM),
            None,
        )
    })
}

fn masked_eq_compares_masked_argument_with_value_two() -> CaseResult {
    // Deny socket() when (type & SOCK_CLOEXEC) == SOCK_CLOEXEC: value is the mask, valueTwo the
    // value the masked argument must equal.
    child_passes(|| {
        load_with_nnp(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":22,
                 "args":[{{"index":1,"value":{cloexec},"valueTwo":{cloexec},
                          "op":"SCMP_CMP_MASKED_EQ"}}]}}]}}"#,
            cloexec = libc::SOCK_CLOEXEC,
        ))?;
        expect(
            "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC)",
            sys_socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC),
            Some(libc::EINVAL),
        )?;
        expect(
            "socket(AF_UNIX, SOCK_STREAM)",
            sys_socket(libc::AF_UNIX, libc::SOCK_STREAM),
            None,
        )
    })
}

fn conditions_on_different_arguments_are_anded() -> CaseResult {
    // Deny socket(AF_UNIX, SOCK_DGRAM) only: both conditions must hold.
    child_passes(|| {
        load_with_nnp(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {{"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":13,
                 "args":[{{"index":0,"value":{unix},"op":"SCMP_CMP_EQ"}},
                         {{"index":1,"value":{dgram},"op":"SCMP_CMP_EQ"}}]}}]}}"#,
            unix = libc::AF_UNIX,
            dgram = libc::SOCK_DGRAM,
        ))?;
        expect(
            "socket(AF_UNIX, SOCK_DGRAM)",
            sys_socket(libc::AF_UNIX, libc::SOCK_DGRAM),
            Some(libc::EACCES),
        )?;
        expect(
            "socket(AF_UNIX, SOCK_STREAM)",
            sys_socket(libc::AF_UNIX, libc::SOCK_STREAM),
            None,
        )?;
        expect(
            "socket(AF_INET, SOCK_DGRAM)",
            sys_socket(libc::AF_INET, libc::SOCK_DGRAM),
            None,
        )
    })
}

fn conditions_repeating_an_argument_are_ored() -> CaseResult {
    // As in runc: two comparisons of argument 0 become two rules, either one denies.
    child_passes(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":38,
                 "args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"},
                         {"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        )?;
        expect(
            "personality(0xffffffff)",
            sys_personality(0xffff_ffff),
            Some(libc::ENOSYS),
        )?;
        expect("personality(8)", sys_personality(8), Some(libc::ENOSYS))?;
        expect("personality(0)", sys_personality(0), None)
    })
}

fn default_errno_with_allow_list() -> CaseResult {
    // The allow-list holds what this child needs after load: the syscalls under test, the
    // memory and signal calls Rust may make, and write + exit_group to report and end (the same
    // kind of last steps a container init needs: see docs/seccomp.md).
    child_passes(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "syscalls":[{"names":["write","exit_group","exit","close","getpid","brk",
                    "mmap","munmap","mremap","madvise","rt_sigprocmask","rt_sigaction",
                    "sigaltstack","futex","personality"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )?;
        // SAFETY: getpid and getppid take no arguments.
        let pid = check(unsafe { libc::syscall(libc::SYS_getpid) });
        expect("getpid", pid, None)?;
        // SAFETY: as above.
        let ppid = check(unsafe { libc::syscall(libc::SYS_getppid) });
        expect("getppid", ppid, Some(libc::EPERM))?;
        expect(
            "mkdir",
            sys_mkdir(&fresh_dir("allowlist")),
            Some(libc::EPERM),
        )?;
        expect(
            "personality(0xffffffff)",
            sys_personality(0xffff_ffff),
            None,
        )
    })
}

fn kill_process_kills_with_sigsys() -> CaseResult {
    child_killed_by_sigsys(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        )?;
        // SAFETY: getppid takes no arguments.
        unsafe { libc::syscall(libc::SYS_getppid) };
        Err("getppid returned under SCMP_ACT_KILL_PROCESS".to_owned())
    })
}

fn trap_raises_sigsys() -> CaseResult {
    // SIGSYS is not handled in the child, so its default action ends the process.
    child_killed_by_sigsys(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["getppid"],"action":"SCMP_ACT_TRAP"}]}"#,
        )?;
        // SAFETY: getppid takes no arguments.
        unsafe { libc::syscall(libc::SYS_getppid) };
        Err("getppid returned under SCMP_ACT_TRAP".to_owned())
    })
}

fn log_flag_and_log_action_are_accepted() -> CaseResult {
    child_passes(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_LOG"},
                            {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":30}]}"#,
        )?;
        // SAFETY: getppid takes no arguments.
        expect(
            "getppid",
            check(unsafe { libc::syscall(libc::SYS_getppid) }),
            None,
        )?;
        expect("mkdir", sys_mkdir(&fresh_dir("log")), Some(libc::EROFS))
    })
}

fn extra_architectures_load() -> CaseResult {
    child_passes(|| {
        load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["mkdir","socketcall"],"action":"SCMP_ACT_ERRNO",
                             "errnoRet":38}]}"#,
        )?;
        expect("mkdir", sys_mkdir(&fresh_dir("archs")), Some(libc::ENOSYS))
    })
}

fn notify_returns_a_working_listener_fd() -> CaseResult {
    // The child loads a filter notifying on mkdir and gets the listener; a grandchild (which
    // inherits the filter) calls mkdir; the child, acting as the seccomp agent, answers with
    // errno 77 and the grandchild must see it.
    child_passes(|| {
        let listener = load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/berth-test-agent.sock",
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )?
        .ok_or("no listener fd for a profile using SCMP_ACT_NOTIFY")?;
        let flags = nix::fcntl::fcntl(&listener, nix::fcntl::FcntlArg::F_GETFD)
            .map_err(|e| format!("listener fd is not open: {e}"))?;
        if flags & libc::FD_CLOEXEC == 0 {
            return Err("listener fd lacks FD_CLOEXEC".to_owned());
        }
        let path = fresh_dir("notify");
        // SAFETY: the child is single-threaded (it is a fork of the single-threaded test main).
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => {
                let code = match sys_mkdir(&path) {
                    Err(77) => 0,
                    _ => 1,
                };
                // SAFETY: end the grandchild without unwinding into the child's code.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                let fd = listener.as_raw_fd();
                let request = libseccomp::ScmpNotifReq::receive(fd)
                    .map_err(|e| format!("receive notification: {e}"))?;
                let name = request
                    .data
                    .syscall
                    .get_name()
                    .map_err(|e| format!("syscall name: {e}"))?;
                if name != "mkdir" {
                    return Err(format!("notified for {name}, want mkdir"));
                }
                libseccomp::ScmpNotifResp::new_error(
                    request.id,
                    -77,
                    libseccomp::ScmpNotifRespFlags::empty(),
                )
                .respond(fd)
                .map_err(|e| format!("respond: {e}"))?;
                match waitpid(child, None).map_err(|e| format!("waitpid: {e}"))? {
                    WaitStatus::Exited(_, 0) => Ok(()),
                    other => Err(format!("grandchild did not see errno 77: {other:?}")),
                }
            }
        }
    })
}

fn tsync_flag_with_notify_loads() -> CaseResult {
    // TSYNC together with a listener needs SECCOMP_FILTER_FLAG_TSYNC_ESRCH (Linux 5.7), which
    // libseccomp adds by itself.
    child_passes(|| {
        let listener = load_with_nnp(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/berth-test-agent.sock",
                "flags":["SECCOMP_FILTER_FLAG_TSYNC"],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )?;
        listener
            .map(drop)
            .ok_or_else(|| "no listener fd".to_owned())
    })
}

fn load_leaves_no_new_privs_to_the_caller() -> CaseResult {
    // Without no_new_privs the load needs CAP_SYS_ADMIN, and must not set no_new_privs itself:
    // with process.noNewPrivileges false the container must be able to gain privileges by exec.
    child_passes(|| {
        load(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        )?;
        let nnp = nix::sys::prctl::get_no_new_privs().map_err(|e| format!("get nnp: {e}"))?;
        if nnp {
            return Err("load set no_new_privs".to_owned());
        }
        expect("mkdir", sys_mkdir(&fresh_dir("nonnp")), Some(libc::ENOSYS))
    })
}
