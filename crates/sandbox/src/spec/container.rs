//! The spec of one container of a pod, as containerd's CRI plugin builds it for the kubelet.

use std::path::{Path, PathBuf};

use berth_api::runtime::v1::{
    ContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    SupplementalGroupsPolicy,
};
use berth_image::ImageConfig;
use oci_spec::runtime::{Linux, LinuxCapabilities, LinuxSeccomp, Process, Spec};

use super::base::{self, DEFAULT_PATH, EnvList};
use super::pod::strings;
use super::user::{UserRequest, resolve_user};
use super::{ContainerSpecInput, Error, Namespace, Result, mounts, resources, seccomp, security};

/// The process's argv, the way Kubernetes merges the CRI with the image: `command` replaces
/// the entrypoint and then only the CRI `args` follow (the image's Cmd is dropped); with no
/// `command`, the CRI `args` replace the image's Cmd after its Entrypoint.
pub fn command_line(
    config: &ContainerConfig,
    image: &ImageConfig,
    name: &str,
) -> Result<Vec<String>> {
    let argv: Vec<String> = if !config.command.is_empty() {
        config.command.iter().chain(&config.args).cloned().collect()
    } else if !config.args.is_empty() {
        image
            .entrypoint
            .iter()
            .chain(&config.args)
            .cloned()
            .collect()
    } else {
        image.entrypoint.iter().chain(&image.cmd).cloned().collect()
    };
    if argv.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "container {name}: no command specified"
        )));
    }
    Ok(argv)
}

/// The environment: HOSTNAME, the image's, TERM for a terminal, the CRI's (each later one
/// replacing an earlier one of the same key), and PATH when nobody set it.
pub fn environment(
    config: &ContainerConfig,
    image: &ImageConfig,
    hostname: &str,
    name: &str,
) -> Result<Vec<String>> {
    let mut env = EnvList::default();
    if !hostname.is_empty() {
        env.set("HOSTNAME", hostname);
    }
    for pair in &image.env {
        env.set_pair(pair);
    }
    if config.tty {
        env.set("TERM", "xterm");
    }
    for kv in &config.envs {
        if kv.key.is_empty() {
            continue;
        }
        let value = std::str::from_utf8(&kv.value).map_err(|_| {
            Error::InvalidArgument(format!(
                "container {name}: env {}: value is not UTF-8",
                kv.key
            ))
        })?;
        env.set(&kv.key, value);
    }
    let mut out = env.into_vec();
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(usize::from(!hostname.is_empty()), DEFAULT_PATH.to_owned());
    }
    Ok(out)
}

/// CRI working_dir, else the image's, else "/".
fn working_dir(config: &ContainerConfig, image: &ImageConfig, name: &str) -> Result<PathBuf> {
    if !config.working_dir.is_empty() {
        let p = PathBuf::from(&config.working_dir);
        if !p.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "container {name}: working_dir {:?} is not an absolute path",
                config.working_dir
            )));
        }
        return Ok(p);
    }
    match image.working_dir.as_deref().filter(|w| !w.is_empty()) {
        // Docker resolves a relative WorkingDir against /.
        Some(w) => Ok(Path::new("/").join(w)),
        None => Ok(PathBuf::from("/")),
    }
}

/// What the security context decided, before it is spread over the process and linux parts.
struct Security {
    privileged: bool,
    caps: LinuxCapabilities,
    seccomp: Option<LinuxSeccomp>,
}

/// Stage 1: privileges, capabilities, AppArmor, seccomp.
fn security(
    sc: &LinuxContainerSecurityContext,
    pod_privileged: bool,
    name: &str,
) -> Result<Security> {
    let privileged = sc.privileged;
    if privileged && !pod_privileged {
        return Err(Error::InvalidArgument(format!(
            "container {name}: a privileged container needs a privileged pod"
        )));
    }
    let set = security::capability_set(sc.capabilities.as_ref(), privileged)?;
    let caps = security::linux_capabilities(&set, sc.capabilities.as_ref())?;
    // The deprecated string fields still come from older kubelets.
    #[allow(deprecated)]
    let (apparmor_path, seccomp_path) = (&sc.apparmor_profile, &sc.seccomp_profile_path);
    security::check_apparmor(sc.apparmor.as_ref(), apparmor_path)?;
    let seccomp = if privileged {
        None
    } else {
        let choice = seccomp::choice(sc.seccomp.as_ref(), seccomp_path)?;
        seccomp::profile(&choice, &set)?
    };
    Ok(Security {
        privileged,
        caps,
        seccomp,
    })
}

/// The HOSTNAME variable: the pod's hostname, or the node's for a pod in the host's uts.
fn hostname_env(input: &ContainerSpecInput<'_>) -> String {
    if !input.pod.hostname.is_empty() {
        input.pod.hostname.clone()
    } else if input.namespaces.uts == Namespace::Host {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    }
}

/// Stage 2: argv, environment, cwd, user, capabilities, OOM score.
fn process(
    input: &ContainerSpecInput<'_>,
    sc: &LinuxContainerSecurityContext,
    res: Option<&LinuxContainerResources>,
    caps: LinuxCapabilities,
    name: &str,
) -> Result<Process> {
    let config = input.config;
    let user = resolve_user(
        input.rootfs,
        name,
        &UserRequest {
            run_as_user: sc.run_as_user.as_ref().map(|v| v.value),
            run_as_username: &sc.run_as_username,
            run_as_group: sc.run_as_group.as_ref().map(|v| v.value),
            supplemental_groups: &sc.supplemental_groups,
            strict_groups: sc.supplemental_groups_policy() == SupplementalGroupsPolicy::Strict,
            image_user: input.image.user.as_deref(),
        },
    )?;
    let mut process = base::blank_process();
    process.set_terminal(Some(config.tty));
    process.set_user(user);
    process.set_args(Some(command_line(config, input.image, name)?));
    process.set_env(Some(environment(
        config,
        input.image,
        &hostname_env(input),
        name,
    )?));
    process.set_cwd(working_dir(config, input.image, name)?);
    process.set_capabilities(Some(caps));
    process.set_no_new_privileges(Some(sc.no_new_privs));
    if let Some(r) = res {
        process.set_oom_score_adj(Some(r.oom_score_adj.clamp(-1000, 1000) as i32));
    }
    Ok(process)
}

/// Stage 3: namespaces, cgroup, devices, masked paths, seccomp, propagation.
fn linux(
    input: &ContainerSpecInput<'_>,
    sc: &LinuxContainerSecurityContext,
    res: Option<&LinuxContainerResources>,
    security: Security,
    propagation: mounts::RootPropagation,
    name: &str,
) -> Result<Linux> {
    let privileged = security.privileged;
    let (device_nodes, device_rules) = mounts::cri_devices(&input.config.devices, name)?;
    let rules = if privileged {
        vec![resources::allow_all_devices()?]
    } else {
        std::iter::once(resources::deny_all_devices()?)
            .chain(device_rules)
            .collect()
    };
    let resources = resources::linux_resources(res, rules, resources::swap_accounting())?;

    let mut l = base::blank_linux();
    l.set_namespaces(Some(base::namespaces(&input.namespaces)?));
    l.set_resources(Some(resources));
    if !input.cgroups_path.is_empty() {
        l.set_cgroups_path(Some(PathBuf::from(&input.cgroups_path)));
    }
    if !device_nodes.is_empty() {
        l.set_devices(Some(device_nodes));
    }
    if !privileged {
        let or_default = |given: &[String], default: &[&str]| {
            if given.is_empty() {
                strings(default)
            } else {
                given.to_vec()
            }
        };
        l.set_masked_paths(Some(or_default(
            &sc.masked_paths,
            security::DEFAULT_MASKED_PATHS,
        )));
        l.set_readonly_paths(Some(or_default(
            &sc.readonly_paths,
            security::DEFAULT_READONLY_PATHS,
        )));
    }
    l.set_seccomp(security.seccomp);
    l.set_rootfs_propagation(propagation.as_option().map(str::to_owned));
    Ok(l)
}

/// The spec of a container.
pub fn container_spec(input: &ContainerSpecInput<'_>) -> Result<Spec> {
    let config = input.config;
    let meta = config.metadata.clone().unwrap_or_default();
    let name = meta.name.as_str();
    let linux_cfg = config.linux.clone().unwrap_or_default();
    let sc = linux_cfg.security_context.clone().unwrap_or_default();
    let res = linux_cfg.resources.as_ref();
    let pod_privileged = input
        .pod
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .is_some_and(|s| s.privileged);

    let security = security(&sc, pod_privileged, name)?;
    let process = process(input, &sc, res, security.caps.clone(), name)?;
    let mut all_mounts =
        mounts::container_defaults(input.pod_files, security.privileged, sc.readonly_rootfs)?;
    let propagation = mounts::add_cri_mounts(&mut all_mounts, &config.mounts, name)?;
    let linux = linux(input, &sc, res, security, propagation, name)?;

    let pod_meta = input.pod.metadata.clone().unwrap_or_default();
    let image_name = config.image.as_ref().map_or("", |i| i.image.as_str());
    let mut spec = base::blank_spec();
    spec.set_root(Some(base::root(input.rootfs, sc.readonly_rootfs)?));
    spec.set_mounts(Some(all_mounts));
    spec.set_process(Some(process));
    spec.set_annotations(Some(base::annotations(&[
        ("io.kubernetes.cri.container-type", "container"),
        ("io.kubernetes.cri.container-name", name),
        ("io.kubernetes.cri.sandbox-id", input.sandbox_id),
        ("io.kubernetes.cri.sandbox-name", &pod_meta.name),
        ("io.kubernetes.cri.sandbox-namespace", &pod_meta.namespace),
        ("io.kubernetes.cri.sandbox-uid", &pod_meta.uid),
        ("io.kubernetes.cri.image-name", image_name),
    ])));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The container's process with `cmd` as argv, for ExecSync and Exec.
pub fn exec_process(spec: &Spec, cmd: &[String], tty: bool) -> Result<Process> {
    if cmd.is_empty() {
        return Err(Error::InvalidArgument("exec: no command specified".into()));
    }
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| Error::Build("process: missing from the container's spec".into()))?;
    p.set_args(Some(cmd.to_vec()));
    p.set_terminal(Some(tty));
    p.set_console_size(None);
    if tty {
        let mut env = p.env().clone().unwrap_or_default();
        if !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        p.set_env(Some(env));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use berth_api::runtime::v1::{
        Capability as CriCapability, ContainerMetadata, Device, ImageSpec, Int64Value, KeyValue,
        LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
        LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount as CriMount, PodSandboxConfig,
        PodSandboxMetadata, SecurityProfile, security_profile::ProfileType,
    };
    use oci_spec::runtime::{Capability, LinuxNamespaceType, LinuxSeccompAction};

    use super::super::{Namespaces, PodFiles};
    use super::*;

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        ImageConfig {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/img/bin".into(), "A=image".into(), "B=image".into()],
            working_dir: Some("/srv".into()),
            ..Default::default()
        }
    }

    fn cfg(command: &[&str], args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "web".into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: "docker.io/library/nginx:1".into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn pod(privileged: bool) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "nginx".into(),
                uid: "u-1".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "nginx-host".into(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    privileged,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn namespaces() -> Namespaces {
        Namespaces {
            network: Namespace::Join("/run/netns/p".into()),
            ipc: Namespace::Join("/proc/10/ns/ipc".into()),
            uts: Namespace::Join("/proc/10/ns/uts".into()),
            pid: Namespace::New,
        }
    }

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nwheel:x:10:app\n").unwrap();
        d
    }

    fn spec_of(
        pod: &PodSandboxConfig,
        config: &ContainerConfig,
        image: &ImageConfig,
        root: &Path,
    ) -> Result<Spec> {
        let files = PodFiles {
            hostname: Some("/run/p/hostname".into()),
            hosts: Some("/run/p/hosts".into()),
            resolv_conf: Some("/run/p/resolv.conf".into()),
            shm: Some("/run/p/shm".into()),
        };
        container_spec(&ContainerSpecInput {
            sandbox_id: "sb1",
            pod,
            config,
            image,
            rootfs: root,
            namespaces: namespaces(),
            cgroups_path: "/kubepods/podu-1/c1".into(),
            pod_files: &files,
        })
    }

    fn with_sc(mut c: ContainerConfig, sc: LinuxContainerSecurityContext) -> ContainerConfig {
        c.linux = Some(LinuxContainerConfig {
            resources: c.linux.and_then(|l| l.resources),
            security_context: Some(sc),
        });
        c
    }

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_and_args_merge_like_kubernetes() {
        let img = image(&["/entry"], &["cmd1", "cmd2"]);
        let argv = |c: &[&str], a: &[&str]| command_line(&cfg(c, a), &img, "web").unwrap();
        assert_eq!(argv(&["/bin/x"], &[]), v(&["/bin/x"]), "image cmd ignored");
        assert_eq!(argv(&["/bin/x"], &["1"]), v(&["/bin/x", "1"]));
        assert_eq!(argv(&[], &["a1"]), v(&["/entry", "a1"]));
        assert_eq!(argv(&[], &[]), v(&["/entry", "cmd1", "cmd2"]));
        let e = command_line(&cfg(&[], &[]), &image(&[], &[]), "web").unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)));
        assert!(
            e.to_string()
                .contains("container web: no command specified"),
            "{e}"
        );
    }

    #[test]
    fn environment_order_and_overrides() {
        let mut c = cfg(&["/x"], &[]);
        c.tty = true;
        c.envs = vec![
            KeyValue {
                key: "B".into(),
                value: b"cri".to_vec(),
            },
            KeyValue {
                key: "C".into(),
                value: b"new".to_vec(),
            },
        ];
        let env = environment(&c, &image(&[], &[]), "h", "web").unwrap();
        assert_eq!(
            env,
            v(&[
                "HOSTNAME=h",
                "PATH=/img/bin",
                "A=image",
                "B=cri",
                "TERM=xterm",
                "C=new"
            ])
        );
        let mut img = image(&[], &[]);
        img.env.clear();
        let env = environment(&cfg(&["/x"], &[]), &img, "h", "web").unwrap();
        assert_eq!(env, v(&["HOSTNAME=h", DEFAULT_PATH]));
        c.envs[0].value = vec![0xff];
        assert!(environment(&c, &img, "h", "web").is_err());
    }

    #[test]
    fn default_container_spec() {
        let r = rootfs();
        let mut c = cfg(&[], &[]);
        c.linux = Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_shares: 256,
                memory_limit_in_bytes: 128 << 20,
                oom_score_adj: 900,
                ..Default::default()
            }),
            security_context: None,
        });
        let s = spec_of(&pod(false), &c, &image(&["/entry"], &["x"]), r.path()).unwrap();
        assert!(s.hostname().is_none(), "the pod's uts has it");
        let root = s.root().as_ref().unwrap();
        assert_eq!(
            (root.path().as_path(), root.readonly()),
            (r.path(), Some(false))
        );
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.cwd(), Path::new("/srv"));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.oom_score_adj(), Some(900));
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        let caps = p.capabilities().as_ref().unwrap();
        let want: HashSet<_> = security::DEFAULT_CAPABILITIES.iter().copied().collect();
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(caps.effective(), caps.permitted());
        assert_eq!(caps.effective(), caps.bounding());
        let l = s.linux().as_ref().unwrap();
        let ns = l.namespaces().as_ref().unwrap();
        assert_eq!(ns.len(), 5);
        assert!(
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none())
        );
        let uts = ns
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Uts)
            .unwrap();
        assert_eq!(uts.path().as_deref(), Some(Path::new("/proc/10/ns/uts")));
        let res = l.resources().as_ref().unwrap();
        assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(256));
        let swap = resources::swap_accounting().then_some(128 << 20);
        assert_eq!(res.memory().as_ref().unwrap().swap(), swap);
        let dev = &res.devices().as_ref().unwrap()[0];
        assert!(!dev.allow() && dev.access().as_deref() == Some("rwm"));
        assert_eq!(l.masked_paths().as_ref().unwrap().len(), 11);
        assert_eq!(l.readonly_paths().as_ref().unwrap().len(), 5);
        assert!(l.seccomp().is_none(), "nothing asked: unconfined");
        assert!(l.rootfs_propagation().is_none());
        let a = s.annotations().as_ref().unwrap();
        assert_eq!(a["io.kubernetes.cri.container-type"], "container");
        assert_eq!(a["io.kubernetes.cri.container-name"], "web");
        assert_eq!(a["io.kubernetes.cri.sandbox-id"], "sb1");
        let env = p.env().as_ref().unwrap();
        assert!(env.contains(&"HOSTNAME=nginx-host".to_owned()));
        let json = serde_json::to_string(&s).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn security_context_applied() {
        let r = rootfs();
        let c = with_sc(
            cfg(&["/x"], &[]),
            LinuxContainerSecurityContext {
                capabilities: Some(CriCapability {
                    add_capabilities: v(&["NET_ADMIN"]),
                    drop_capabilities: v(&["all"]),
                    add_ambient_capabilities: vec![],
                }),
                run_as_username: "app".into(),
                run_as_group: Some(Int64Value { value: 3000 }),
                supplemental_groups: vec![5000],
                readonly_rootfs: true,
                no_new_privs: true,
                masked_paths: v(&["/proc/x"]),
                readonly_paths: v(&["/proc/y"]),
                seccomp: Some(SecurityProfile {
                    profile_type: ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            },
        );
        let s = spec_of(&pod(false), &c, &image(&[], &[]), r.path()).unwrap();
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        let u = p.user();
        assert_eq!((u.uid(), u.gid()), (1000, 3000));
        assert_eq!(u.additional_gids().as_deref(), Some(&[3000, 10, 5000][..]));
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(
            caps.effective().as_ref(),
            Some(&[Capability::NetAdmin].into_iter().collect())
        );
        let l = s.linux().as_ref().unwrap();
        assert_eq!(l.masked_paths().as_deref(), Some(&v(&["/proc/x"])[..]));
        assert_eq!(l.readonly_paths().as_deref(), Some(&v(&["/proc/y"])[..]));
        let sc = l.seccomp().as_ref().unwrap();
        assert_eq!(sc.default_action(), LinuxSeccompAction::ScmpActErrno);
        let mounts = s.mounts().as_ref().unwrap();
        let hosts = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/etc/hosts"))
            .unwrap();
        assert!(hosts.options().as_ref().unwrap().contains(&"ro".to_owned()));
    }

    #[test]
    fn privileged_container() {
        let r = rootfs();
        let sc = LinuxContainerSecurityContext {
            privileged: true,
            seccomp: Some(SecurityProfile::default()),
            ..Default::default()
        };
        let c = with_sc(cfg(&["/x"], &[]), sc);
        let e = spec_of(&pod(false), &c, &image(&[], &[]), r.path()).unwrap_err();
        assert!(e.to_string().contains("privileged pod"), "{e}");
        let s = spec_of(&pod(true), &c, &image(&[], &[]), r.path()).unwrap();
        let l = s.linux().as_ref().unwrap();
        assert!(
            l.seccomp().is_none() && l.masked_paths().is_none() && l.readonly_paths().is_none()
        );
        let dev = &l.resources().as_ref().unwrap().devices().as_ref().unwrap()[0];
        assert!(dev.allow() && dev.typ().is_none());
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(
            caps.bounding().as_ref(),
            Some(&security::all_current_capabilities())
        );
        let sys = s
            .mounts()
            .iter()
            .flatten()
            .find(|m| m.destination() == Path::new("/sys"))
            .unwrap();
        assert!(sys.options().as_ref().unwrap().contains(&"rw".to_owned()));
    }

    #[test]
    fn mounts_devices_and_propagation() {
        let r = rootfs();
        let data = tempfile::tempdir().unwrap();
        let mut c = cfg(&["/x"], &[]);
        c.mounts = vec![
            CriMount {
                container_path: "/etc/hosts".into(),
                host_path: data.path().display().to_string(),
                ..Default::default()
            },
            CriMount {
                container_path: "/data".into(),
                host_path: data.path().display().to_string(),
                propagation: berth_api::runtime::v1::MountPropagation::PropagationBidirectional
                    as i32,
                ..Default::default()
            },
        ];
        c.devices = vec![Device {
            container_path: "/dev/fuse-like".into(),
            host_path: "/dev/zero".into(),
            permissions: "rw".into(),
        }];
        let s = spec_of(&pod(false), &c, &image(&[], &[]), r.path()).unwrap();
        let mounts = s.mounts().as_ref().unwrap();
        let hosts: Vec<_> = mounts
            .iter()
            .filter(|m| m.destination() == Path::new("/etc/hosts"))
            .collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].source().as_deref(), Some(data.path()));
        let l = s.linux().as_ref().unwrap();
        assert_eq!(l.rootfs_propagation().as_deref(), Some("rshared"));
        let d = &l.devices().as_ref().unwrap()[0];
        assert_eq!((d.major(), d.minor()), (1, 5));
        let rules = l.resources().as_ref().unwrap().devices().as_ref().unwrap();
        assert_eq!(rules.len(), 2);
        assert!(rules[1].allow() && rules[1].minor() == Some(5));
    }

    #[test]
    fn unknown_user_and_named_apparmor_refused() {
        let r = rootfs();
        let c = with_sc(
            cfg(&["/x"], &[]),
            LinuxContainerSecurityContext {
                run_as_username: "ghost".into(),
                ..Default::default()
            },
        );
        let e = spec_of(&pod(false), &c, &image(&[], &[]), r.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ghost") && e.contains("web"), "{e}");
        let c = with_sc(
            cfg(&["/x"], &[]),
            LinuxContainerSecurityContext {
                apparmor: Some(SecurityProfile {
                    profile_type: ProfileType::Localhost as i32,
                    localhost_ref: "p".into(),
                }),
                ..Default::default()
            },
        );
        let e = spec_of(&pod(false), &c, &image(&[], &[]), r.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("apparmor is not available on this host"), "{e}");
    }

    #[test]
    fn working_dir_choice() {
        let img = image(&[], &[]);
        let mut c = cfg(&["/x"], &[]);
        assert_eq!(working_dir(&c, &img, "web").unwrap(), Path::new("/srv"));
        c.working_dir = "/cri".into();
        assert_eq!(working_dir(&c, &img, "web").unwrap(), Path::new("/cri"));
        c.working_dir = "rel".into();
        assert!(
            working_dir(&c, &img, "web")
                .unwrap_err()
                .to_string()
                .contains("\"rel\"")
        );
        c.working_dir.clear();
        assert_eq!(
            working_dir(&c, &ImageConfig::default(), "web").unwrap(),
            Path::new("/")
        );
    }

    #[test]
    fn exec_process_replaces_args_keeps_the_rest() {
        let r = rootfs();
        let s = spec_of(&pod(false), &cfg(&["/x"], &[]), &image(&[], &[]), r.path()).unwrap();
        let p = exec_process(&s, &v(&["ls", "-l"]), true).unwrap();
        assert_eq!(p.args().as_deref(), Some(&v(&["ls", "-l"])[..]));
        assert_eq!(p.terminal(), Some(true));
        assert!(p.env().as_ref().unwrap().contains(&"TERM=xterm".to_owned()));
        assert_eq!(p.user(), s.process().as_ref().unwrap().user());
        assert!(exec_process(&s, &[], false).is_err());
    }
}
