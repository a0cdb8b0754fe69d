//! The runtime side of starting a container process: fork the stage-1 child, place it in the
//! cgroup, write user namespace maps, and hand back the container process's pid and channel.

use std::fs;
use std::os::fd::OwnedFd;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType};

use super::channel::{Channel, Message};
use super::init::{self, InitConfig};
use crate::error::{Error, Result};
use crate::sys::{self, Forked};

/// Namespaces of the container process: joined by descriptor, or created.
#[derive(Default)]
pub struct Namespaces {
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    pub new: Vec<LinuxNamespaceType>,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// (clock, seconds, nanoseconds) for a new time namespace.
    pub time_offsets: Vec<(String, i64, u32)>,
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of a namespace type under /proc/<pid>/ns/.
pub fn proc_ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The container process, forked and waiting at its first handshake step.
pub struct Spawned {
    pub pid: i32,
    pub channel: Channel,
}

/// Forks the container process. It joins `cgroup` before it does anything else.
///
/// Most containers take the direct path: one clone with the new namespaces' flags, the child
/// joins its cgroup and the namespaces it shares, and goes on. A stage-1 child is needed only
/// when the container process has to be born into namespaces that the calling process cannot
/// create or enter for its child with clone alone: a new user namespace (the cgroup must be
/// joined and shared namespaces entered before it exists, and its id maps written from
/// outside), an existing pid namespace, or a new time namespace (offsets are set between
/// unshare and the first child).
pub fn spawn(
    cfg: &InitConfig<'_>,
    ns: &Namespaces,
    cgroup: Option<&crate::cgroups::Cgroup>,
    created: &str,
) -> Result<Spawned> {
    let needs_stage1 = ns.new.contains(&LinuxNamespaceType::User)
        || ns.new.contains(&LinuxNamespaceType::Time)
        || ns.join.iter().any(|(t, _)| *t == LinuxNamespaceType::Pid);
    if needs_stage1 {
        spawn_two_stage(cfg, ns, cgroup, created)
    } else {
        spawn_direct(cfg, ns, cgroup, created)
    }
}

fn spawn_direct(
    cfg: &InitConfig<'_>,
    ns: &Namespaces,
    cgroup: Option<&crate::cgroups::Cgroup>,
    created: &str,
) -> Result<Spawned> {
    let (parent, child) = Channel::pair().map_err(|e| Error::sys("socketpair", e))?;
    // Born in the new namespaces, except the cgroup one: it is rooted where the process is
    // when it is created, so it comes after joining the cgroup.
    let mut flags = CloneFlags::empty();
    for t in ns.new.iter().filter(|t| **t != LinuxNamespaceType::Cgroup) {
        flags |= clone_flag(*t);
    }
    match sys::clone_process(flags.bits()).map_err(|e| Error::sys("clone", e))? {
        Forked::Child => {
            drop(parent);
            container_process(&child, || {
                enter(ns, cgroup, CloneFlags::CLONE_NEWCGROUP, &child)?;
                init::run(cfg, &child)
            })
        }
        Forked::Parent(pid) => {
            drop(child);
            let started = Message::Started {
                pid,
                created: created.to_owned(),
            };
            if let Err(e) = parent.send(&started) {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = sys::waitpid(pid);
                return Err(Error::Init(e.to_string()));
            }
            Ok(Spawned {
                pid,
                channel: parent,
            })
        }
    }
}

/// The forked container process: runs `body`, which execs on success; a failure is reported
/// and the process ends without returning into the runtime's code.
fn container_process(ch: &Channel, body: impl FnOnce() -> Result<std::convert::Infallible>) -> ! {
    let Err(e) = body();
    ch.report_error(&e);
    sys::exit_now(1)
}

/// Joins the cgroup, then the shared namespaces, then unshares `unshare` among the new ones.
fn enter(
    ns: &Namespaces,
    cgroup: Option<&crate::cgroups::Cgroup>,
    unshare: CloneFlags,
    ch: &Channel,
) -> Result<()> {
    let io = |e: std::io::Error| Error::Init(e.to_string());
    // Into the cgroup first, before any namespace: every descendant is born there, and a new
    // cgroup namespace is rooted at it. This process is single-threaded, so it moves itself
    // (the cheap path: see Cgroup::join_self).
    if let Some(cg) = cgroup {
        cg.join_self()?;
    }
    // Join the user namespace first (the others belong to it), the mount namespace last (it
    // changes how paths resolve; all descriptors were opened beforehand anyway).
    let mut joins: Vec<&(LinuxNamespaceType, OwnedFd)> = ns.join.iter().collect();
    joins.sort_by_key(|(t, _)| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    for (t, fd) in joins {
        nix::sched::setns(fd, clone_flag(*t))
            .map_err(|e| Error::sys(format!("join {t} namespace"), e))?;
    }
    if unshare.contains(CloneFlags::CLONE_NEWUSER) && ns.new.contains(&LinuxNamespaceType::User) {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
            .map_err(|e| Error::sys("unshare user namespace", e))?;
        ch.send(&Message::MapUsers).map_err(io)?;
        ch.expect(Message::UsersMapped).map_err(io)?;
        sys::setresgid(0).map_err(|e| Error::sys("setresgid 0 in user namespace", e))?;
        sys::setresuid(0).map_err(|e| Error::sys("setresuid 0 in user namespace", e))?;
    }
    let mut flags = CloneFlags::empty();
    for t in &ns.new {
        let f = clone_flag(*t);
        if unshare.contains(f) && f != CloneFlags::CLONE_NEWUSER {
            flags |= f;
        }
    }
    if !flags.is_empty() {
        nix::sched::unshare(flags).map_err(|e| Error::sys(format!("unshare {flags:?}"), e))?;
    }
    Ok(())
}

fn spawn_two_stage(
    cfg: &InitConfig<'_>,
    ns: &Namespaces,
    cgroup: Option<&crate::cgroups::Cgroup>,
    created: &str,
) -> Result<Spawned> {
    let (parent, child) = Channel::pair().map_err(|e| Error::sys("socketpair", e))?;
    let stage1 = match sys::clone_process(0).map_err(|e| Error::sys("fork", e))? {
        Forked::Child => {
            drop(parent);
            let code = match stage1(cfg, ns, cgroup, &child) {
                Ok(()) => 0,
                Err(e) => {
                    child.report_error(&e);
                    1
                }
            };
            sys::exit_now(code);
        }
        Forked::Parent(pid) => pid,
    };
    drop(child);
    let mut init_pid = None;
    let result = handshake(&parent, stage1, ns, created, &mut init_pid);
    // Stage 1 exits right after reporting the pid (or on failure): reap it either way.
    if result.is_err() {
        let _ = sys::kill(stage1, libc::SIGKILL);
        if let Some(pid) = init_pid {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = sys::waitpid(pid);
        }
    }
    let _ = sys::waitpid(stage1);
    result.map(|pid| Spawned {
        pid,
        channel: parent,
    })
}

fn handshake(
    ch: &Channel,
    stage1: i32,
    ns: &Namespaces,
    created: &str,
    init_pid: &mut Option<i32>,
) -> Result<i32> {
    let io = |e: std::io::Error| Error::Init(e.to_string());
    loop {
        match ch.recv().map_err(io)? {
            Some(Message::MapUsers) => {
                write_id_map(stage1, "uid_map", &ns.uid_mappings)?;
                write_id_map(stage1, "gid_map", &ns.gid_mappings)?;
                ch.send(&Message::UsersMapped).map_err(io)?;
            }
            Some(Message::Pid(pid)) => {
                *init_pid = Some(pid);
                ch.send(&Message::Started {
                    pid,
                    created: created.to_owned(),
                })
                .map_err(io)?;
                return Ok(pid);
            }
            Some(Message::Error(e)) => return Err(Error::Init(e)),
            Some(m) => return Err(Error::Init(format!("unexpected message {m:?}"))),
            None => return Err(Error::Init("process exited during setup".into())),
        }
    }
}

fn write_id_map(pid: i32, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{file}");
    fs::write(&path, text).map_err(|e| Error::io("write", path, e))
}

/// Stage 1: cgroup, namespaces, time offsets, then fork the container process as a child of
/// the runtime (CLONE_PARENT).
fn stage1(
    cfg: &InitConfig<'_>,
    ns: &Namespaces,
    cgroup: Option<&crate::cgroups::Cgroup>,
    ch: &Channel,
) -> Result<()> {
    let io = |e: std::io::Error| Error::Init(e.to_string());
    enter(ns, cgroup, CloneFlags::from_bits_retain(!0), ch)?;
    if !ns.time_offsets.is_empty() {
        let text: String = ns
            .time_offsets
            .iter()
            .map(|(c, s, n)| format!("{c} {s} {n}\n"))
            .collect();
        fs::write("/proc/self/timens_offsets", text)
            .map_err(|e| Error::spec("linux.timeOffsets", e.to_string()))?;
    }
    match sys::clone_process(libc::CLONE_PARENT)
        .map_err(|e| Error::sys("fork container process", e))?
    {
        Forked::Child => container_process(ch, || init::run(cfg, ch)),
        Forked::Parent(pid) => ch.send(&Message::Pid(pid)).map_err(io),
    }
}
