//! Which sysctls a pod may set: only those its own namespaces isolate.
//!
//! The CRI-O CVE-2022-0811 lesson: a value smuggling a second `key=value` (through `+` or a
//! newline) or a host-wide key such as kernel.core_pattern must never reach the runtime.

use std::collections::HashMap;

use super::{Error, Result};

/// IPC-namespaced keys (besides the fs.mqueue.* family).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shm_rmid_forced",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
];

/// The namespace a sysctl key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Ipc,
    Network,
}

/// `kernel/shmmax` and `kernel.shmmax` name the same key; the dotted form is canonical. As in
/// Kubernetes, a key whose first separator is a slash swaps the two, so that a dot inside a
/// component (`net/ipv4/conf/eth0.100/rp_filter`, a VLAN interface) survives as a slash
/// (`net.ipv4.conf.eth0/100.rp_filter`).
pub fn normalize_key(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => key.to_owned(),
    }
}

fn owner(key: &str) -> Option<Owner> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(Owner::Ipc)
    } else if key.starts_with("net.") {
        Some(Owner::Network)
    } else {
        None
    }
}

fn check_one(key: &str, value: &str, host_network: bool, host_ipc: bool) -> Result<String> {
    let bad_name = key.is_empty()
        || key.contains("..")
        || key.starts_with(['.', '/'])
        || key.ends_with(['.', '/'])
        || key
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-')));
    if bad_name {
        return Err(Error::InvalidArgument(format!(
            "sysctl {key:?} is not a valid sysctl name"
        )));
    }
    let norm = normalize_key(key);
    if value.contains(['\n', '\r', '\0', '+', '=']) {
        return Err(Error::InvalidArgument(format!(
            "sysctl {norm}: value {value:?} contains a forbidden character"
        )));
    }
    match owner(&norm) {
        None => Err(Error::InvalidArgument(format!(
            "sysctl {norm} is not namespaced: refused"
        ))),
        Some(Owner::Ipc) if host_ipc => Err(Error::InvalidArgument(format!(
            "sysctl {norm} is refused: the pod shares the host's ipc namespace"
        ))),
        Some(Owner::Network) if host_network => Err(Error::InvalidArgument(format!(
            "sysctl {norm} is refused: the pod shares the host's network namespace"
        ))),
        Some(_) => Ok(norm),
    }
}

/// Refuses sysctls that are not namespaced (or not in a namespace the pod owns).
pub fn validate_sysctls(
    sysctls: &HashMap<String, String>,
    host_network: bool,
    host_ipc: bool,
) -> Result<()> {
    normalized_sysctls(sysctls, host_network, host_ipc).map(drop)
}

/// The validated sysctls with their keys in the dotted form, as they go into the spec.
pub fn normalized_sysctls(
    sysctls: &HashMap<String, String>,
    host_network: bool,
    host_ipc: bool,
) -> Result<HashMap<String, String>> {
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    let mut out = HashMap::new();
    for key in keys {
        let value = &sysctls[key];
        let norm = check_one(key, value, host_network, host_ipc)?;
        out.insert(norm, value.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: &str) -> HashMap<String, String> {
        HashMap::from([(k.to_owned(), v.to_owned())])
    }

    #[test]
    fn namespaced_keys_pass() {
        for k in [
            "kernel.shm_rmid_forced",
            "kernel.shmmax",
            "kernel.shmall",
            "kernel.shmmni",
            "kernel.msgmax",
            "kernel.msgmnb",
            "kernel.msgmni",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.rp_filter",
        ] {
            validate_sysctls(&one(k, "1"), false, false).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
    }

    #[test]
    fn core_pattern_refused_cve_2022_0811() {
        let e = validate_sysctls(&one("kernel.core_pattern", "|/evil"), false, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sysctl kernel.core_pattern is not namespaced: refused"),
            "{e}"
        );
    }

    #[test]
    fn smuggled_second_assignment_refused_cve_2022_0811() {
        for v in [
            "1+kernel.core_pattern=|/evil",
            "1\nkernel.core_pattern=x",
            "1\0",
        ] {
            let e = validate_sysctls(&one("kernel.shm_rmid_forced", v), false, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("kernel.shm_rmid_forced"), "{e}");
        }
    }

    #[test]
    fn hostname_and_unknown_keys_refused() {
        for k in [
            "kernel.hostname",
            "kernel.domainname",
            "vm.overcommit_memory",
            "fs.file-max",
        ] {
            let e = validate_sysctls(&one(k, "1"), false, false).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
    }

    #[test]
    fn ipc_keys_refused_with_host_ipc_net_keys_with_host_network() {
        let e = validate_sysctls(&one("kernel.sem", "1 2 3 4"), false, true).unwrap_err();
        assert!(e.to_string().contains("ipc"), "{e}");
        let e = validate_sysctls(&one("fs.mqueue.msg_max", "1"), false, true).unwrap_err();
        assert!(e.to_string().contains("fs.mqueue.msg_max"), "{e}");
        let e = validate_sysctls(&one("net.core.somaxconn", "1"), true, false).unwrap_err();
        assert!(e.to_string().contains("network"), "{e}");
        validate_sysctls(&one("net.core.somaxconn", "1"), false, true).unwrap();
        validate_sysctls(&one("kernel.sem", "1 2 3 4"), true, false).unwrap();
    }

    #[test]
    fn slash_form_normalized_and_traversal_refused() {
        let m = normalized_sysctls(&one("net/ipv4/ip_forward", "1"), false, false).unwrap();
        assert_eq!(m.get("net.ipv4.ip_forward").map(String::as_str), Some("1"));
        assert_eq!(
            normalize_key("net/ipv4/conf/eth0.100/rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter"
        );
        assert_eq!(
            normalize_key("net.ipv4.conf.eth0/100.rp_filter"),
            "net.ipv4.conf.eth0/100.rp_filter"
        );
        for k in ["net/../kernel/core_pattern", "/net.x", "", "net.ipv4 x"] {
            assert!(validate_sysctls(&one(k, "1"), false, false).is_err(), "{k}");
        }
    }
}
