//! Loading and checking an OCI bundle. Everything that can be checked before a process is
//! forked is checked here, so that a bad bundle fails with the field named and nothing created.

use std::collections::HashSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, IoContext, Result};

/// A bundle whose config parsed and passed validation.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute, canonical path of the root filesystem.
    pub rootfs: PathBuf,
}

/// Reads `<dir>/config.json`; parse errors name the JSON path of the offending field.
pub fn load_config(path: &Path) -> Result<Spec> {
    let data = fs::read(path).ctx("read", path)?;
    let de = &mut serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(de).map_err(|source| Error::Config {
        path: path.to_owned(),
        source,
    })
}

pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = fs::canonicalize(dir).ctx("open bundle", dir)?;
    let spec = load_config(&dir.join("config.json"))?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = fs::canonicalize(&rootfs)
        .map_err(|e| Error::spec("root.path", format!("{}: {e}", rootfs.display())))?;
    if !rootfs.is_dir() {
        return Err(Error::spec(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    validate(&spec)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Checks the parts of a spec that serde's types do not.
pub fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "missing"))?;
    validate_process(process, "process")?;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(Error::spec(
                format!("mounts[{i}].destination"),
                format!("{:?} is not an absolute path", dest.display().to_string()),
            ));
        }
        if dest.components().any(|c| c == Component::ParentDir) {
            return Err(Error::spec(
                format!("mounts[{i}].destination"),
                "must not contain \"..\"",
            ));
        }
    }
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.into_iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(Error::spec(
                format!("linux.namespaces[{i}].type"),
                format!("{} listed twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::spec(
                    format!("linux.namespaces[{i}].path"),
                    "must be absolute",
                ));
            }
        }
    }
    // The container has a namespace of this type, new or joined.
    let listed = |t: LinuxNamespaceType| namespaces.into_iter().flatten().any(|ns| ns.typ() == t);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !listed(LinuxNamespaceType::Uts)
    {
        return Err(Error::spec(
            "hostname",
            "setting the hostname needs a uts namespace",
        ));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !listed(LinuxNamespaceType::Uts)
    {
        return Err(Error::spec(
            "domainname",
            "setting the domainname needs a uts namespace",
        ));
    }
    let Some(linux) = linux else { return Ok(()) };
    let new_userns = namespaces
        .into_iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if new_userns && linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
        return Err(Error::spec(
            "linux.uidMappings",
            "a new user namespace needs uid mappings",
        ));
    }
    if new_userns && linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
        return Err(Error::spec(
            "linux.gidMappings",
            "a new user namespace needs gid mappings",
        ));
    }
    if let Some(sysctls) = linux.sysctl() {
        for key in sysctls.keys() {
            check_sysctl(key, &listed)?;
        }
    }
    if let Some(p) = linux.cgroups_path() {
        crate::cgroups::resolve_path(Some(&p.to_string_lossy()), "x")
            .map_err(|e| Error::spec("linux.cgroupsPath", e.to_string()))?;
    }
    if let Some(devices) = linux.net_devices() {
        let new_netns = namespaces
            .into_iter()
            .flatten()
            .any(|ns| ns.typ() == LinuxNamespaceType::Network && ns.path().is_none());
        crate::netdev::validate(devices, new_netns)?;
    }
    if let Some(seccomp) = linux.seccomp() {
        crate::seccomp::validate(seccomp)?;
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if !prop.is_empty() && crate::rootfs::propagation_flag(prop).is_none() {
            return Err(Error::spec(
                "linux.rootfsPropagation",
                format!("unknown propagation {prop:?}"),
            ));
        }
    }
    if linux.intel_rdt().is_some() && !Path::new("/sys/fs/resctrl/schemata").exists() {
        return Err(Error::spec(
            "linux.intelRdt",
            "the host has no resctrl filesystem mounted at /sys/fs/resctrl",
        ));
    }
    if let Some(time_offsets) = linux.time_offsets() {
        for clock in time_offsets.keys() {
            if clock != "monotonic" && clock != "boottime" {
                return Err(Error::spec(
                    format!("linux.timeOffsets.{clock}"),
                    "only monotonic and boottime can be offset",
                ));
            }
        }
        if !time_offsets.is_empty() && !listed(LinuxNamespaceType::Time) {
            return Err(Error::spec(
                "linux.timeOffsets",
                "time offsets need a new time namespace",
            ));
        }
    }
    Ok(())
}

pub fn validate_process(process: &oci_spec::runtime::Process, field: &str) -> Result<()> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::spec(format!("{field}.args"), "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::spec(
            format!("{field}.cwd"),
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    if let Some(profile) = process.apparmor_profile() {
        if !profile.is_empty() && !apparmor_enabled() {
            return Err(Error::spec(
                format!("{field}.apparmorProfile"),
                format!("profile {profile:?} requested but AppArmor is not enabled on this host"),
            ));
        }
    }
    Ok(())
}

pub fn apparmor_enabled() -> bool {
    fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.starts_with('Y'))
        && Path::new("/sys/kernel/security/apparmor").exists()
}

/// Allows only sysctls that the container's own namespaces isolate (the CVE-2022-0811 lesson:
/// a host-wide key such as kernel.core_pattern must never be writable from a container spec).
fn check_sysctl(key: &str, has_ns: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let field = format!("linux.sysctl.{key}");
    if key.is_empty() || key.contains("..") || key.starts_with(['.', '/']) || key.contains('\0') {
        return Err(Error::spec(field, "not a valid sysctl name"));
    }
    let key = key.replace('/', ".");
    let ipc = matches!(
        key.as_str(),
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || key.starts_with("fs.mqueue.");
    let (needed, what) = if ipc {
        (LinuxNamespaceType::Ipc, "ipc")
    } else if key.starts_with("net.") {
        (LinuxNamespaceType::Network, "network")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        (LinuxNamespaceType::Uts, "uts")
    } else {
        return Err(Error::spec(
            field,
            "not a namespaced sysctl: it would change the host",
        ));
    };
    if !has_ns(needed) {
        return Err(Error::spec(
            field,
            format!("needs the container's own {what} namespace"),
        ));
    }
    Ok(())
}

/// A path inside the container made relative (for openat2 under the root), refusing `..`.
pub fn relative_in_root(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}
