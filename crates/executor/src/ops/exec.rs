//! `exec`: run an extra process inside a running container.

use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::Runtime;
use super::create::write_pid_file;
use crate::error::{Error, Result};
use crate::process::init::{InitConfig, Role};
use crate::process::spawn::{Namespaces, spawn};
use crate::state::{Container, now_rfc3339};

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// Starts the process; in the foreground returns its exit code, detached 0.
pub fn exec(rt: &Runtime, id: &str, opts: &ExecOptions) -> Result<i32> {
    let c = Container::load(&rt.root, id)?;
    let status = c.status();
    if !status.can_exec() {
        return Err(c.bad_state(status, "exec"));
    }
    crate::spec::validate_process(&opts.process, "process")?;
    let ns = join_container(&c)?;
    let cgroup = c.cgroup()?;
    let console_socket = match &opts.console_socket {
        Some(p) => Some(
            std::os::unix::net::UnixStream::connect(p)
                .map_err(|e| Error::io("connect console socket", p, e))?
                .into(),
        ),
        None => None,
    };
    let cfg = InitConfig {
        id,
        spec: &c.record.spec,
        process: &opts.process,
        role: Role::Exec,
        console_socket,
        preserve_fds: opts.preserve_fds,
    };
    let spawned = spawn(&cfg, &ns, Some(&cgroup), &now_rfc3339())?;
    // The channel closes on a successful execve (close-on-exec); an error message means failure.
    loop {
        match spawned
            .channel
            .recv_with_fd()
            .map_err(|e| Error::Init(e.to_string()))?
        {
            None => break,
            Some((crate::process::channel::Message::SeccompListener, Some(fd))) => {
                let seccomp = c
                    .record
                    .spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.seccomp().as_ref());
                crate::process::notify::forward_listener(
                    seccomp,
                    spawned.pid,
                    c.oci_state("running"),
                    fd,
                )?;
            }
            Some((crate::process::channel::Message::Error(e), _)) => {
                let _ = crate::sys::waitpid(spawned.pid);
                return Err(Error::Init(e));
            }
            Some((m, _)) => return Err(Error::Init(format!("unexpected message {m:?}"))),
        }
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, spawned.pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    super::run::wait_forwarding_signals(spawned.pid)
}

/// Every namespace the container has, joined through its init process.
fn join_container(c: &Container) -> Result<Namespaces> {
    let mut ns = Namespaces::default();
    let spec_ns = c
        .record
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for n in spec_ns {
        let name = crate::process::spawn::proc_ns_name(n.typ());
        let path = format!("/proc/{}/ns/{name}", c.record.pid);
        let fd = nix::fcntl::open(
            path.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open {path}"), e))?;
        ns.join.push((n.typ(), fd));
    }
    Ok(ns)
}
