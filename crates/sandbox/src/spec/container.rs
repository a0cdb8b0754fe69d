//! The spec of one container of a pod, as containerd's CRI plugin builds it for the kubelet.

use std::path::{Path, PathBuf};

use berth_api::runtime::v1::{ContainerConfig, SupplementalGroupsPolicy};
use berth_image::ImageConfig;
use oci_spec::runtime::{Process, Spec};

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

/// The spec of a container.
pub fn container_spec(input: &ContainerSpecInput<'_>) -> Result<Spec> {
    let config = input.config;
    let meta = config.metadata.clone().unwrap_or_default();
    let name = meta.name.as_str();
    let linux_cfg = config.linux.clone().unwrap_or_default();
    let sc = linux_cfg.security_context.clone().unwrap_or_default();
    let pod_linux = input.pod.linux.clone().unwrap_or_default();
    let pod_sc = pod_linux.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged;
    if privileged && !pod_sc.privileged {
        return Err(Error::InvalidArgument(format!(
            "container {name}: a privileged container needs a privileged pod"
        )));
    }

    // Process.
    let args = command_line(config, input.image, name)?;
    let hostname = if !input.pod.hostname.is_empty() {
        input.pod.hostname.clone()
    } else if input.namespaces.uts == Namespace::Host {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
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
    let caps = security::capability_set(sc.capabilities.as_ref(), privileged)?;
    let linux_caps = security::linux_capabilities(&caps, sc.capabilities.as_ref())?;
    // The deprecated string fields still come from older kubelets.
    #[allow(deprecated)]
    let (apparmor_path, seccomp_path) = (&sc.apparmor_profile, &sc.seccomp_profile_path);
    security::check_apparmor(sc.apparmor.as_ref(), apparmor_path)?;
    let seccomp = if privileged {
        None
    } else {
        let choice = seccomp::choice(sc.seccomp.as_ref(), seccomp_path)?;
        seccomp::profile(&choice, &caps)?
    };

    let mut process = base::blank_process();
    process.set_terminal(Some(config.tty));
    process.set_user(user);
    process.set_args(Some(args));
    process.set_env(Some(environment(config, input.image, &hostname, name)?));
    process.set_cwd(working_dir(config, input.image, name)?);
    process.set_capabilities(Some(linux_caps));
    process.set_no_new_privileges(Some(sc.no_new_privs));
    if let Some(r) = &linux_cfg.resources {
        let adj = r.oom_score_adj.clamp(-1000, 1000) as i32;
        process.set_oom_score_adj(Some(adj));
    }

    // Mounts and devices.
    let mut all_mounts =
        mounts::container_defaults(input.pod_files, privileged, sc.readonly_rootfs)?;
    let propagation = mounts::add_cri_mounts(&mut all_mounts, &config.mounts, name)?;
    let (device_nodes, device_rules) = mounts::cri_devices(&config.devices, name)?;
    let mut rules = vec![if privileged {
        resources::allow_all_devices()?
    } else {
        resources::deny_all_devices()?
    }];
    if !privileged {
        rules.extend(device_rules);
    }
    let resources = resources::linux_resources(linux_cfg.resources.as_ref(), rules)?;

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
        let masked = if sc.masked_paths.is_empty() {
            strings(security::DEFAULT_MASKED_PATHS)
        } else {
            sc.masked_paths.clone()
        };
        let readonly = if sc.readonly_paths.is_empty() {
            strings(security::DEFAULT_READONLY_PATHS)
        } else {
            sc.readonly_paths.clone()
        };
        l.set_masked_paths(Some(masked));
        l.set_readonly_paths(Some(readonly));
    }
    l.set_seccomp(seccomp);
    l.set_rootfs_propagation(propagation.as_option().map(str::to_owned));

    let pod_meta = input.pod.metadata.clone().unwrap_or_default();
    let image_name = config
        .image
        .as_ref()
        .map(|i| i.image.as_str())
        .unwrap_or("");
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
    spec.set_linux(Some(l));
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
