//! The spec of a pod's infra (pause) process: it holds the pod's namespaces and cgroup, runs
//! from a read-only directory with one static binary, as an unprivileged user, with no
//! capability.

use std::path::PathBuf;

use oci_spec::runtime::{Capabilities, Spec, UserBuilder};

use super::base::{self, DEFAULT_PATH};
use super::{
    Error, Namespace, PodSpecInput, Result, build_err, mounts, resources, seccomp, security, sysctl,
};

/// The infra process's user when the pod does not name one (containerd's choice: the
/// conventional "nobody" of 16-bit ids).
pub const DEFAULT_POD_ID: u32 = 65535;

/// The OOM score of the infra process: killed only after everything else.
pub const POD_OOM_SCORE_ADJ: i32 = -998;

fn id(value: i64, field: &str, pod: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        Error::InvalidArgument(format!("pod {pod}: {field} {value} is not a valid id"))
    })
}

/// The spec of a pod's infra process.
pub fn pod_spec(input: &PodSpecInput<'_>) -> Result<Spec> {
    let config = input.config;
    let meta = config.metadata.clone().unwrap_or_default();
    let pod = if meta.name.is_empty() {
        input.sandbox_id
    } else {
        meta.name.as_str()
    };
    if input.args.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "pod {pod}: no command specified for the infra process"
        )));
    }
    let linux_cfg = config.linux.clone().unwrap_or_default();
    let sc = linux_cfg.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged;

    let host_network = input.namespaces.network == Namespace::Host;
    let host_ipc = input.namespaces.ipc == Namespace::Host;
    let sysctls = sysctl::normalized_sysctls(&linux_cfg.sysctls, host_network, host_ipc)?;

    security::check_apparmor(sc.apparmor.as_ref(), "")?;
    let caps = Capabilities::new();
    let seccomp = if privileged {
        None
    } else {
        // The deprecated string field still comes from older kubelets.
        #[allow(deprecated)]
        let path = &sc.seccomp_profile_path;
        let choice = seccomp::choice(sc.seccomp.as_ref(), path)?;
        seccomp::profile(&choice, &caps)?
    };

    let uid = match &sc.run_as_user {
        Some(u) => id(u.value, "run_as_user", pod)?,
        None => DEFAULT_POD_ID,
    };
    let gid = match &sc.run_as_group {
        Some(g) => id(g.value, "run_as_group", pod)?,
        None if sc.run_as_user.is_some() => 0,
        None => DEFAULT_POD_ID,
    };
    let mut gids = vec![gid];
    for &g in &sc.supplemental_groups {
        let g = id(g, "supplemental_groups", pod)?;
        if !gids.contains(&g) {
            gids.push(g);
        }
    }
    let user = UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .additional_gids(gids)
        .build()
        .map_err(build_err("process.user"))?;

    let mut process = base::blank_process();
    process.set_terminal(Some(false));
    process.set_user(user);
    process.set_args(Some(input.args.clone()));
    process.set_env(Some(vec![DEFAULT_PATH.to_owned()]));
    process.set_cwd(PathBuf::from("/"));
    process.set_no_new_privileges(Some(true));
    process.set_capabilities(Some(security::no_capabilities()?));
    process.set_oom_score_adj(Some(POD_OOM_SCORE_ADJ));

    let res = linux_cfg.resources.as_ref().or(linux_cfg.overhead.as_ref());
    let resources = resources::linux_resources(
        res,
        vec![resources::deny_all_devices()?],
        resources::swap_accounting(),
    )?;

    let mut l = base::blank_linux();
    l.set_namespaces(Some(base::namespaces(&input.namespaces)?));
    l.set_resources(Some(resources));
    if !input.cgroups_path.is_empty() {
        l.set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)));
    }
    if !privileged {
        l.set_masked_paths(Some(strings(security::DEFAULT_MASKED_PATHS)));
        l.set_readonly_paths(Some(strings(security::DEFAULT_READONLY_PATHS)));
    }
    if !sysctls.is_empty() {
        l.set_sysctl(Some(sysctls));
    }
    l.set_seccomp(seccomp);

    let mut spec = base::blank_spec();
    spec.set_root(Some(base::root(input.rootfs, true)?));
    spec.set_mounts(Some(mounts::pod_mounts()?));
    spec.set_process(Some(process));
    if input.namespaces.uts != Namespace::Host && !config.hostname.is_empty() {
        spec.set_hostname(Some(config.hostname.clone()));
    }
    spec.set_annotations(Some(base::annotations(&[
        ("io.kubernetes.cri.container-type", "sandbox"),
        ("io.kubernetes.cri.sandbox-id", input.sandbox_id),
        ("io.kubernetes.cri.sandbox-name", &meta.name),
        ("io.kubernetes.cri.sandbox-namespace", &meta.namespace),
        ("io.kubernetes.cri.sandbox-uid", &meta.uid),
        (
            "io.kubernetes.cri.sandbox-log-directory",
            &config.log_directory,
        ),
    ])));
    spec.set_linux(Some(l));
    Ok(spec)
}

pub(super) fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use berth_api::runtime::v1::{
        Int64Value, LinuxContainerResources, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
        PodSandboxConfig, PodSandboxMetadata, SecurityProfile,
    };
    use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccompAction};

    use super::super::Namespaces;
    use super::*;

    fn config(sc: LinuxSandboxSecurityContext) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "nginx".into(),
                uid: "u-1".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "nginx-host".into(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: "/kubepods/podu-1".into(),
                security_context: Some(sc),
                sysctls: HashMap::from([("net/ipv4/ip_forward".into(), "1".into())]),
                resources: Some(LinuxContainerResources {
                    cpu_shares: 2,
                    memory_limit_in_bytes: 1 << 30,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ns(network: Namespace) -> Namespaces {
        Namespaces {
            network,
            ipc: Namespace::New,
            uts: Namespace::New,
            pid: Namespace::New,
        }
    }

    fn input<'a>(c: &'a PodSandboxConfig, n: Namespaces) -> PodSpecInput<'a> {
        PodSpecInput {
            sandbox_id: "sb1",
            config: c,
            rootfs: Path::new("/var/lib/berth/pause"),
            args: vec!["/pause".into()],
            namespaces: n,
            cgroups_path: "/kubepods/podu-1/sb1".into(),
        }
    }

    #[test]
    fn default_pod_spec() {
        let c = config(LinuxSandboxSecurityContext::default());
        let s = pod_spec(&input(&c, ns(Namespace::Join("/run/netns/p".into())))).unwrap();
        let root = s.root().as_ref().unwrap();
        assert_eq!(root.readonly(), Some(true));
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_deref(), Some(&["/pause".to_owned()][..]));
        assert_eq!((p.user().uid(), p.user().gid()), (65535, 65535));
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.oom_score_adj(), Some(-998));
        let caps = p.capabilities().as_ref().unwrap();
        assert!(caps.bounding().as_ref().unwrap().is_empty());
        assert_eq!(s.hostname().as_deref(), Some("nginx-host"));
        let l = s.linux().as_ref().unwrap();
        let n = l.namespaces().as_ref().unwrap();
        assert!(n.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
        let net = n
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_deref(), Some(Path::new("/run/netns/p")));
        assert_eq!(l.sysctl().as_ref().unwrap()["net.ipv4.ip_forward"], "1");
        assert_eq!(
            l.cgroups_path().as_deref(),
            Some(Path::new("/kubepods/podu-1/sb1"))
        );
        let r = l.resources().as_ref().unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(2));
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(1 << 30));
        assert!(
            l.masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_owned())
        );
        assert!(l.seccomp().is_none(), "no profile asked: unconfined");
        let dests: Vec<_> = s
            .mounts()
            .iter()
            .flatten()
            .map(|m| m.destination().clone())
            .collect();
        for d in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
        ] {
            assert!(dests.contains(&PathBuf::from(d)), "{d}");
        }
        let a = s.annotations().as_ref().unwrap();
        assert_eq!(a["io.kubernetes.cri.container-type"], "sandbox");
        assert_eq!(a["io.kubernetes.cri.sandbox-id"], "sb1");
        // It passes what berth-oci checks (JSON round trip included).
        let json = serde_json::to_string(&s).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn host_network_no_uts_no_hostname_and_net_sysctl_refused() {
        let c = config(LinuxSandboxSecurityContext::default());
        let mut n = ns(Namespace::Host);
        let e = pod_spec(&input(&c, n.clone())).unwrap_err().to_string();
        assert!(e.contains("net.ipv4.ip_forward"), "{e}");
        let mut c2 = c.clone();
        c2.linux.as_mut().unwrap().sysctls.clear();
        n.uts = Namespace::Host;
        let s = pod_spec(&input(&c2, n)).unwrap();
        assert!(s.hostname().is_none());
        let l = s.linux().as_ref().unwrap();
        assert!(!l.namespaces().iter().flatten().any(|n| matches!(
            n.typ(),
            LinuxNamespaceType::Uts | LinuxNamespaceType::Network
        )));
    }

    #[test]
    fn run_as_user_group_and_runtime_default_seccomp() {
        let c = config(LinuxSandboxSecurityContext {
            run_as_user: Some(Int64Value { value: 1000 }),
            run_as_group: Some(Int64Value { value: 3000 }),
            supplemental_groups: vec![4000],
            seccomp: Some(SecurityProfile::default()),
            ..Default::default()
        });
        let s = pod_spec(&input(&c, ns(Namespace::New))).unwrap();
        let u = s.process().as_ref().unwrap().user();
        assert_eq!((u.uid(), u.gid()), (1000, 3000));
        assert_eq!(u.additional_gids().as_deref(), Some(&[3000, 4000][..]));
        let sc = s.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
        assert_eq!(sc.default_action(), LinuxSeccompAction::ScmpActErrno);
    }

    #[test]
    fn privileged_pod_unmasked_unconfined() {
        let c = config(LinuxSandboxSecurityContext {
            privileged: true,
            seccomp: Some(SecurityProfile::default()),
            ..Default::default()
        });
        let s = pod_spec(&input(&c, ns(Namespace::New))).unwrap();
        let l = s.linux().as_ref().unwrap();
        assert!(l.seccomp().is_none() && l.masked_paths().is_none());
    }

    #[test]
    fn empty_args_and_host_sysctl_refused() {
        let c = config(LinuxSandboxSecurityContext::default());
        let mut i = input(&c, ns(Namespace::New));
        i.args.clear();
        assert!(pod_spec(&i).unwrap_err().to_string().contains("nginx"));
        let mut c2 = c.clone();
        c2.linux
            .as_mut()
            .unwrap()
            .sysctls
            .insert("kernel.core_pattern".into(), "|/x".into());
        let e = pod_spec(&input(&c2, ns(Namespace::New))).unwrap_err();
        assert!(e.to_string().contains("kernel.core_pattern"), "{e}");
    }
}
