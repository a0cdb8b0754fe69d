//! `create`: set up a container from a bundle and leave its process waiting for `start`.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespaceType, LinuxResources};

use super::{Cleanup, Runtime};
use crate::error::{Error, IoContext, Result};
use crate::hooks;
use crate::process::channel::Message;
use crate::process::init::{InitConfig, Role};
use crate::process::spawn::{Namespaces, spawn};
use crate::spec::{Bundle, load_bundle};
use crate::state::{
    Container, EXEC_FIFO, Record, STATE_VERSION, check_id, now_rfc3339, proc_start_time,
};

#[derive(Debug, Default, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// Creates the container; returns the pid of its process.
pub fn create(rt: &Runtime, id: &str, opts: &CreateOptions) -> Result<i32> {
    check_id(id)?;
    create_from(rt, id, &load_bundle(&opts.bundle)?, opts)
}

/// `create` for a bundle already loaded (and validated); `opts.bundle` is not read again.
pub fn create_from(rt: &Runtime, id: &str, bundle: &Bundle, opts: &CreateOptions) -> Result<i32> {
    check_id(id)?;
    let spec = &bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    // Relative bind-mount sources are relative to the bundle, as with runc.
    std::env::set_current_dir(&bundle.dir).ctx("chdir", &bundle.dir)?;

    let mut cleanup = Cleanup::default();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&rt.root)
        .ctx("create", &rt.root)?;
    let dir = rt.root.join(id);
    match fs::DirBuilder::new().mode(0o711).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Exists(id.to_owned()));
        }
        Err(e) => return Err(Error::io("create", dir, e)),
    }
    let d = dir.clone();
    cleanup.push("remove state directory", move || {
        let _ = fs::remove_dir_all(d);
    });
    let fifo = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| Error::sys(format!("mkfifo {}", fifo.display()), e))?;
    // The container process opens it after switching to its own user: writable by anyone
    // (whatever the umask), owned by the container's root.
    fs::set_permissions(&fifo, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .ctx("chmod", &fifo)?;
    let (root_uid, root_gid) = container_root_ids(spec);
    std::os::unix::fs::chown(&fifo, Some(root_uid), Some(root_gid)).ctx("chown", &fifo)?;

    let linux = spec.linux().as_ref();
    let cgroup_path = crate::cgroups::resolve_path(
        linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy())
            .as_deref(),
        id,
    )?;
    let cgroup = crate::cgroups::Cgroup::new(crate::cgroups::Layout::cached()?, &cgroup_path);
    cgroup.create()?;
    let cg = cgroup.clone();
    cleanup.push("remove cgroup", move || {
        let _ = cg.kill_all();
        let _ = cg.destroy();
    });
    if let Some(r) = linux.and_then(|l| l.resources().as_ref()) {
        cgroup.apply(&with_default_devices(spec, r))?;
    }

    let state_dir: OwnedFd = nix::fcntl::open(
        &dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {}", dir.display()), e))?;
    let console_socket = connect_console(opts.console_socket.as_deref())?;
    let ns = namespaces(spec)?;
    let new = |t| ns.new.contains(&t);
    let cfg = InitConfig {
        id,
        spec,
        process,
        role: Role::Init {
            rootfs: &bundle.rootfs,
            bundle: &bundle.dir,
            state_dir,
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            new_mount_ns: new(LinuxNamespaceType::Mount),
            new_uts_ns: new(LinuxNamespaceType::Uts)
                || ns.join.iter().any(|(t, _)| *t == LinuxNamespaceType::Uts),
            cgroup_path: &cgroup_path,
        },
        console_socket,
        preserve_fds: opts.preserve_fds + crate::process::init::listen_fds().unwrap_or(0),
    };
    let created = now_rfc3339();
    let spawned = spawn(&cfg, &ns, Some(&cgroup), &created)?;
    let pid = spawned.pid;
    cleanup.push("kill container process", move || {
        let _ = crate::sys::kill(pid, libc::SIGKILL);
    });
    let mut container = Container {
        dir: dir.clone(),
        record: Record {
            version: STATE_VERSION,
            id: id.to_owned(),
            pid,
            pid_start: 0,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created,
            owner: String::new(),
            cgroup_path: cgroup_path.clone(),
            spec: spec.clone(),
        },
    };
    if let Some(devices) = linux.and_then(|l| l.net_devices().as_ref()) {
        crate::netdev::move_into(devices, pid)?;
    }
    let io = |e: std::io::Error| Error::Init(e.to_string());
    loop {
        let (msg, fd) = match spawned.channel.recv_with_fd().map_err(io)? {
            Some((m, fd)) => (Some(m), fd),
            None => (None, None),
        };
        match msg {
            Some(Message::SeccompListener) => {
                let fd =
                    fd.ok_or_else(|| Error::Init("seccomp listener message without an fd".into()))?;
                let state = container.oci_state("creating");
                crate::process::notify::forward_listener(
                    linux.and_then(|l| l.seccomp().as_ref()),
                    pid,
                    state,
                    fd,
                )?;
            }
            Some(Message::RunCreateRuntimeHooks) => {
                let state = container.oci_state("creating");
                let h = spec.hooks().as_ref();
                let r =
                    hooks::run_all(h.and_then(|h| h.prestart().as_ref()), &state).and_then(|()| {
                        hooks::run_all(h.and_then(|h| h.create_runtime().as_ref()), &state)
                    });
                if let Err(e) = r {
                    let _ = spawned.channel.send(&Message::Error(e.to_string()));
                    return Err(e);
                }
                spawned.channel.send(&Message::HooksDone).map_err(io)?;
            }
            Some(Message::Ready) => break,
            Some(Message::Error(e)) => return Err(Error::Init(e)),
            Some(m) => return Err(Error::Init(format!("unexpected message {m:?}"))),
            None => return Err(Error::Init("container process exited during setup".into())),
        }
    }
    container.record.pid_start = proc_start_time(pid).unwrap_or(0);
    container.save()?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    cleanup.disarm();
    Ok(pid)
}

/// Device rules as runc applies them: the spec's rules, then an allow rule for every device node
/// the spec creates, then the nodes every container needs (null, zero, full, tty, random,
/// urandom, console, ptmx, pts/*).
fn with_default_devices(spec: &oci_spec::runtime::Spec, r: &LinuxResources) -> LinuxResources {
    let Some(rules) = r.devices().as_ref().filter(|d| !d.is_empty()) else {
        return r.clone();
    };
    let mut rules = rules.clone();
    let rule = |typ, major: Option<i64>, minor: Option<i64>| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some("rwm".to_owned()));
        d
    };
    let devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for d in devices.into_iter().flatten() {
        rules.push(rule(d.typ(), Some(d.major()), Some(d.minor())));
    }
    use LinuxDeviceType::C;
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (5, Some(0)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
    ] {
        rules.push(rule(C, Some(major), minor));
    }
    let mut r = r.clone();
    r.set_devices(Some(rules));
    r
}

/// Host uid and gid of the container's root user (0 unless a user namespace maps it).
fn container_root_ids(spec: &oci_spec::runtime::Spec) -> (u32, u32) {
    let host = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    let linux = spec.linux().as_ref();
    (
        host(linux.and_then(|l| l.uid_mappings().as_ref())),
        host(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}

pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("tmp-pid");
    fs::write(&tmp, pid.to_string()).ctx("write", &tmp)?;
    fs::rename(&tmp, path).ctx("rename", path)
}

fn connect_console(path: Option<&Path>) -> Result<Option<OwnedFd>> {
    let Some(path) = path else { return Ok(None) };
    let s = UnixStream::connect(path).ctx("connect console socket", path)?;
    Ok(Some(s.into()))
}

/// Splits the spec's namespaces into ones to join (opened now, before any fork or mount
/// namespace change) and ones to create.
pub fn namespaces(spec: &oci_spec::runtime::Spec) -> Result<Namespaces> {
    let mut ns = Namespaces::default();
    let linux = spec.linux().as_ref();
    for (i, n) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        match n.path() {
            Some(p) => {
                let fd = nix::fcntl::open(
                    p,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| {
                    Error::spec(
                        format!("linux.namespaces[{i}].path"),
                        format!("open {}: {e}", p.display()),
                    )
                })?;
                ns.join.push((n.typ(), fd));
            }
            None => ns.new.push(n.typ()),
        }
    }
    if let Some(l) = linux {
        ns.uid_mappings = l.uid_mappings().clone().unwrap_or_default();
        ns.gid_mappings = l.gid_mappings().clone().unwrap_or_default();
        for (clock, off) in l.time_offsets().iter().flatten() {
            ns.time_offsets.push((
                clock.clone(),
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0),
            ));
        }
    }
    Ok(ns)
}
