//! Capabilities, masked and read-only paths, AppArmor.

use std::collections::HashSet;
use std::str::FromStr;

use berth_api::runtime::v1::{Capability as CriCapability, SecurityProfile, security_profile};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use super::{Error, Result, build_err};

/// What a container gets when its security context says nothing (the set Docker and containerd
/// have granted since the beginning).
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability this oci-spec version knows, with its kernel number (linux/capability.h).
pub const CAPABILITY_BITS: &[(Capability, u32)] = &[
    (Capability::Chown, 0),
    (Capability::DacOverride, 1),
    (Capability::DacReadSearch, 2),
    (Capability::Fowner, 3),
    (Capability::Fsetid, 4),
    (Capability::Kill, 5),
    (Capability::Setgid, 6),
    (Capability::Setuid, 7),
    (Capability::Setpcap, 8),
    (Capability::LinuxImmutable, 9),
    (Capability::NetBindService, 10),
    (Capability::NetBroadcast, 11),
    (Capability::NetAdmin, 12),
    (Capability::NetRaw, 13),
    (Capability::IpcLock, 14),
    (Capability::IpcOwner, 15),
    (Capability::SysModule, 16),
    (Capability::SysRawio, 17),
    (Capability::SysChroot, 18),
    (Capability::SysPtrace, 19),
    (Capability::SysPacct, 20),
    (Capability::SysAdmin, 21),
    (Capability::SysBoot, 22),
    (Capability::SysNice, 23),
    (Capability::SysResource, 24),
    (Capability::SysTime, 25),
    (Capability::SysTtyConfig, 26),
    (Capability::Mknod, 27),
    (Capability::Lease, 28),
    (Capability::AuditWrite, 29),
    (Capability::AuditControl, 30),
    (Capability::Setfcap, 31),
    (Capability::MacOverride, 32),
    (Capability::MacAdmin, 33),
    (Capability::Syslog, 34),
    (Capability::WakeAlarm, 35),
    (Capability::BlockSuspend, 36),
    (Capability::AuditRead, 37),
    (Capability::Perfmon, 38),
    (Capability::Bpf, 39),
    (Capability::CheckpointRestore, 40),
];

/// The capabilities whose bits are set in `mask` (a `/proc/<pid>/status` Cap* value).
pub fn capabilities_in_mask(mask: u64) -> Capabilities {
    CAPABILITY_BITS
        .iter()
        .filter(|(_, bit)| mask & (1u64 << bit) != 0)
        .map(|(cap, _)| *cap)
        .collect()
}

/// What a privileged container (or "ALL" in add) gets: every capability berthd's own bounding
/// set still holds, as containerd does; a capability the node took away cannot be granted.
/// Falls back to every known capability when /proc/self/status cannot be read.
pub fn all_current_capabilities() -> Capabilities {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        });
    match bounding {
        Some(mask) => capabilities_in_mask(mask),
        None => capabilities_in_mask(u64::MAX),
    }
}

/// Paths hidden from a non-privileged container (kernel memory, keys, timers, firmware).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths a non-privileged container sees read-only.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The `ALL` wildcard of add/drop lists.
fn is_all(name: &str) -> bool {
    name.eq_ignore_ascii_case("all")
}

/// Parses `cap_net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN`.
pub fn parse_capability(name: &str) -> Result<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare)
        .map_err(|_| Error::InvalidArgument(format!("unknown capability {name:?}")))
}

/// The effective set, in containerd's order: the default (or everything when privileged);
/// "ALL" in add grants everything; "ALL" in drop then empties the set; named adds; named drops
/// (a capability both added and dropped ends up dropped).
pub fn capability_set(caps: Option<&CriCapability>, privileged: bool) -> Result<Capabilities> {
    if privileged {
        return Ok(all_current_capabilities());
    }
    let mut set: HashSet<Capability> = DEFAULT_CAPABILITIES.iter().copied().collect();
    let Some(caps) = caps else { return Ok(set) };
    if caps.add_capabilities.iter().any(|c| is_all(c)) {
        set.extend(all_current_capabilities());
    }
    if caps.drop_capabilities.iter().any(|c| is_all(c)) {
        set.clear();
    }
    for name in caps.add_capabilities.iter().filter(|c| !is_all(c)) {
        set.insert(parse_capability(name)?);
    }
    for name in caps.drop_capabilities.iter().filter(|c| !is_all(c)) {
        set.remove(&parse_capability(name)?);
    }
    Ok(set)
}

/// The process capabilities: bounding = effective = permitted = `set`; ambient (and
/// inheritable, which ambient needs) from `add_ambient_capabilities`, each of which must also
/// be in `set`.
pub fn linux_capabilities(
    set: &Capabilities,
    caps: Option<&CriCapability>,
) -> Result<LinuxCapabilities> {
    let mut ambient = Capabilities::new();
    for name in caps
        .map(|c| c.add_ambient_capabilities.as_slice())
        .unwrap_or(&[])
    {
        let cap = parse_capability(name)?;
        if !set.contains(&cap) {
            return Err(Error::InvalidArgument(format!(
                "ambient capability {name} is not in the container's capability set"
            )));
        }
        ambient.insert(cap);
    }
    LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set.clone())
        .inheritable(ambient.clone())
        .ambient(ambient)
        .build()
        .map_err(build_err("process.capabilities"))
}

/// No capability at all (the pod's infra process).
pub fn no_capabilities() -> Result<LinuxCapabilities> {
    linux_capabilities(&Capabilities::new(), None)
}

/// AppArmor is not available on berth's hosts: a named profile is refused, runtime/default and
/// unconfined mean no profile. `deprecated` is the old `apparmor_profile` string.
pub fn check_apparmor(profile: Option<&SecurityProfile>, deprecated: &str) -> Result<()> {
    let named = match profile {
        Some(p) => p.profile_type() == security_profile::ProfileType::Localhost,
        None => deprecated.starts_with("localhost/"),
    };
    if named {
        return Err(Error::InvalidArgument(
            "apparmor is not available on this host".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cri(add: &[&str], drop: &[&str]) -> CriCapability {
        CriCapability {
            add_capabilities: add.iter().map(|s| s.to_string()).collect(),
            drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
            add_ambient_capabilities: vec![],
        }
    }

    #[test]
    fn default_set_is_the_fourteen() {
        let s = capability_set(None, false).unwrap();
        assert_eq!(s.len(), 14);
        assert!(s.contains(&Capability::AuditWrite) && !s.contains(&Capability::SysAdmin));
    }

    #[test]
    fn add_and_drop_accept_any_case_and_prefix() {
        let s = capability_set(
            Some(&cri(
                &["sys_admin", "CAP_NET_ADMIN"],
                &["cap_chown", "KILL"],
            )),
            false,
        )
        .unwrap();
        assert!(s.contains(&Capability::SysAdmin) && s.contains(&Capability::NetAdmin));
        assert!(!s.contains(&Capability::Chown) && !s.contains(&Capability::Kill));
        assert_eq!(s.len(), 14);
    }

    #[test]
    fn drop_all_then_add() {
        let s = capability_set(Some(&cri(&["NET_BIND_SERVICE"], &["ALL"])), false).unwrap();
        assert_eq!(s, [Capability::NetBindService].into_iter().collect());
        let s = capability_set(Some(&cri(&[], &["all"])), false).unwrap();
        assert!(s.is_empty());
        let s = capability_set(Some(&cri(&["ALL"], &["ALL"])), false).unwrap();
        assert!(s.is_empty(), "drop ALL wins over add ALL");
        let s = capability_set(Some(&cri(&["ALL"], &["SYS_ADMIN"])), false).unwrap();
        let mut want = all_current_capabilities();
        want.remove(&Capability::SysAdmin);
        assert_eq!(s, want);
        let s = capability_set(Some(&cri(&["KILL"], &["KILL"])), false).unwrap();
        assert!(
            !s.contains(&Capability::Kill),
            "a named drop wins over a named add"
        );
    }

    #[test]
    fn privileged_gets_everything_the_node_holds() {
        let s = capability_set(Some(&cri(&[], &["ALL"])), true).unwrap();
        assert_eq!(s, all_current_capabilities());
        assert!(s.contains(&Capability::Chown));
    }

    #[test]
    fn mask_bits_map_to_capabilities() {
        assert_eq!(capabilities_in_mask(u64::MAX).len(), 41);
        assert_eq!(
            capabilities_in_mask((1 << 21) | (1 << 40)),
            [Capability::SysAdmin, Capability::CheckpointRestore]
                .into_iter()
                .collect()
        );
        // A node without CAP_SYS_RESOURCE (bit 24), as in some CI containers.
        let s = capabilities_in_mask(0x01ff_feff_ffff);
        assert!(!s.contains(&Capability::SysResource) && s.len() == 40);
    }

    #[test]
    fn unknown_capability_named() {
        let e = capability_set(Some(&cri(&["CAP_FLY"], &[])), false).unwrap_err();
        assert!(e.to_string().contains("CAP_FLY"), "{e}");
    }

    #[test]
    fn ambient_must_be_granted() {
        let mut c = cri(&[], &[]);
        c.add_ambient_capabilities = vec!["NET_BIND_SERVICE".into()];
        let set = capability_set(Some(&c), false).unwrap();
        let l = linux_capabilities(&set, Some(&c)).unwrap();
        assert!(
            l.ambient()
                .as_ref()
                .unwrap()
                .contains(&Capability::NetBindService)
        );
        assert_eq!(l.bounding(), l.effective());
        c.add_ambient_capabilities = vec!["SYS_ADMIN".into()];
        assert!(linux_capabilities(&set, Some(&c)).is_err());
    }

    #[test]
    fn apparmor_named_profile_refused() {
        let p = SecurityProfile {
            profile_type: security_profile::ProfileType::Localhost as i32,
            localhost_ref: "k8s-nginx".into(),
        };
        let e = check_apparmor(Some(&p), "").unwrap_err().to_string();
        assert!(e.contains("apparmor is not available on this host"), "{e}");
        assert!(check_apparmor(Some(&SecurityProfile::default()), "").is_ok());
        assert!(check_apparmor(None, "runtime/default").is_ok());
        assert!(check_apparmor(None, "localhost/x").is_err());
    }
}
