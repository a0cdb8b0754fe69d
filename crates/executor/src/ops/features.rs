//! `features`: what this runtime supports, in the OCI features document's shape.

pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.1",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime",
            "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private",
            "rbind", "rdev", "rexec", "relatime", "remount", "rnodev", "rnoexec", "rnosuid", "ro", "rprivate",
            "rro", "rrw", "rshared", "rslave", "rsuid", "runbindable", "rw", "shared", "slave", "strictatime",
            "suid", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": crate::seccomp::features(),
            "apparmor": { "enabled": crate::spec::apparmor_enabled() },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": std::path::Path::new("/sys/fs/resctrl/schemata").exists() },
            "mountExtensions": { "idmap": { "enabled": false } },
            "netDevices": { "enabled": true },
            "memoryPolicy": {
                "modes": ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            }
        },
        "annotations": { "org.opencontainers.runtime-spec.features": "berth-oci" }
    })
}
