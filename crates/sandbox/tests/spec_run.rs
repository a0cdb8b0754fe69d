//! Root test: the specs `pod_spec` and `container_spec` build actually run under berth-oci,
//! with the user, groups, capabilities and seccomp filter they promise.
//!
//! Needs root, /bin/busybox (Debian package busybox-static) and berth-oci built in the same
//! target directory (`cargo build -p berth-executor --bin berth-oci`), or $BERTH_OCI. When one
//! is missing each test is reported as ignored with the reason, or fails when $CI is set.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_api::runtime::v1::{
    Capability, ContainerConfig, ContainerMetadata, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    PodSandboxConfig, PodSandboxMetadata, SecurityProfile, security_profile::ProfileType,
};
use berth_image::ImageConfig;
use berth_sandbox::spec::{
    ContainerSpecInput, Namespace, Namespaces, PodFiles, PodSpecInput, container_spec, pod_spec,
};
use libtest_mimic::Arguments;

type TestResult = Result<(), String>;

const BUSYBOX: &str = "/bin/busybox";

/// berth-oci: $BERTH_OCI, else beside this test's target directory (target/debug/berth-oci).
fn berth_oci() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_OCI") {
        return PathBuf::from(p);
    }
    // target/debug/deps/spec_run-<hash> -> target/debug/berth-oci
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("berth-oci"))
        .unwrap_or_default()
}

fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("needs {BUSYBOX} (Debian package busybox-static)"));
    }
    if !berth_oci().exists() {
        return Some(format!(
            "needs berth-oci at {} (cargo build -p berth-executor --bin berth-oci)",
            berth_oci().display()
        ));
    }
    None
}

fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A busybox rootfs with a user `app` (1000:1000) that /etc/group lists in wheel and audio.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "mnt", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "id", "cat", "grep", "mount", "true", "sleep"] {
        symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\napp:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\nvideo:x:44:root\n",
    )
    .unwrap();
    for f in ["hostname", "hosts", "resolv.conf"] {
        std::fs::write(rootfs.join("etc").join(f), "").unwrap();
    }
    rootfs
}

/// Writes `spec` as `<bundle>/config.json` and runs it in the foreground: its stdout, stderr
/// and exit status. Output goes through files, not pipes (the container inherits them).
fn run_bundle(bundle: &Path, spec: &oci_spec::runtime::Spec) -> Result<Output, String> {
    let json = serde_json::to_vec_pretty(spec).map_err(|e| e.to_string())?;
    std::fs::write(bundle.join("config.json"), json).map_err(|e| e.to_string())?;
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let id = unique_id("berth-spec");
    let out = tempfile::tempfile().map_err(|e| e.to_string())?;
    let err = tempfile::tempfile().map_err(|e| e.to_string())?;
    let status = Command::new(berth_oci())
        .arg("--root")
        .arg(state.path())
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(err.try_clone().map_err(|e| e.to_string())?)
        .status()
        .map_err(|e| format!("spawn {}: {e}", berth_oci().display()))?;
    // In case the foreground run left anything behind.
    let _ = Command::new(berth_oci())
        .arg("--root")
        .arg(state.path())
        .args(["delete", "--force", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Ok(Output {
        status,
        stdout: read(out),
        stderr: read(err),
    })
}

fn pod_config() -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "spec-run".into(),
            uid: "uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "spec-run-host".into(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                seccomp: Some(SecurityProfile {
                    profile_type: ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn all_new() -> Namespaces {
    Namespaces {
        network: Namespace::New,
        ipc: Namespace::New,
        uts: Namespace::New,
        pid: Namespace::New,
    }
}

/// This run's parent cgroup, removed at the end by [`remove_test_cgroups`].
fn cgroup_parent() -> String {
    format!("berth-spec-test-{}", std::process::id())
}

fn cgroups_path(id: &str) -> String {
    format!("/{}/{id}", cgroup_parent())
}

/// Removes this run's parent cgroup (the runtime removes each container's own) in every v1
/// hierarchy and in a v2 root.
fn remove_test_cgroups() {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(cgroup_parent()));
    for e in entries.flatten() {
        let _ = std::fs::remove_dir(e.path().join(cgroup_parent()));
    }
}

fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// RuntimeDefault seccomp, every capability dropped, run_as_username, cpu and memory limits:
/// `id` shows the user, its /etc/group memberships and the CRI's supplemental group; mount
/// fails; the kernel reports a seccomp filter, no capability, no_new_privs and the OOM score.
fn container_spec_runs_as_named_user_with_groups_no_caps_and_seccomp() -> TestResult {
    let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = busybox_rootfs(bundle.path());
    let files_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pod_file = |name: &str, text: &str| {
        let p = files_dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        Some(p)
    };
    let files = PodFiles {
        hostname: pod_file("hostname", "spec-run-host\n"),
        hosts: pod_file("hosts", "127.0.0.1 localhost spec-run-host\n"),
        resolv_conf: pod_file("resolv.conf", "nameserver 127.0.0.1\n"),
        shm: None,
    };
    let script = "id -u; id -g; id -G; \
        grep -E '^(Seccomp|CapEff|NoNewPrivs):' /proc/self/status; \
        echo oom=$(cat /proc/self/oom_score_adj); \
        cat /etc/hosts; \
        if mount -t tmpfs none /mnt 2>/dev/null; then echo MOUNTED; else echo MOUNT-REFUSED; fi";
    let config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "checker".into(),
            attempt: 0,
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_shares: 512,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                memory_limit_in_bytes: 64 << 20,
                oom_score_adj: 500,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                capabilities: Some(Capability {
                    add_capabilities: vec![],
                    drop_capabilities: vec!["ALL".into()],
                    add_ambient_capabilities: vec![],
                }),
                run_as_username: "app".into(),
                supplemental_groups: vec![5000],
                no_new_privs: true,
                seccomp: Some(SecurityProfile {
                    profile_type: ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let image = ImageConfig {
        env: vec!["PATH=/bin".into()],
        ..Default::default()
    };
    let pod = pod_config();
    let spec = container_spec(&ContainerSpecInput {
        sandbox_id: "sb-spec-run",
        pod: &pod,
        config: &config,
        image: &image,
        rootfs: &rootfs,
        namespaces: all_new(),
        cgroups_path: cgroups_path(&unique_id("ctr")),
        pod_files: &files,
    })
    .map_err(|e| e.to_string())?;
    let out = run_bundle(bundle.path(), &spec)?;
    let text = output_text(&out);
    if !out.status.success() {
        return Err(format!("container failed: {text}"));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    if lines.len() < 3 || lines[0] != "1000" || lines[1] != "1000" {
        return Err(format!("uid/gid not 1000:1000: {text}"));
    }
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort_unstable();
    if groups != ["10", "1000", "29", "5000"] {
        return Err(format!(
            "groups {groups:?}, want 1000 10 29 5000 (CVE-2023-25173): {text}"
        ));
    }
    for want in [
        "Seccomp:\t2",
        "CapEff:\t0000000000000000",
        "NoNewPrivs:\t1",
        "oom=500",
        "spec-run-host",
        "MOUNT-REFUSED",
    ] {
        if !stdout.contains(want) {
            return Err(format!("{want:?} missing: {text}"));
        }
    }
    Ok(())
}

/// unshare(CLONE_NEWUSER) needs no capability, so only the filter can refuse it: unconfined,
/// root with the default capabilities gets a user namespace; under RuntimeDefault (no
/// CAP_SYS_ADMIN) the same command is refused.
fn container_spec_runtime_default_seccomp_refuses_unshare_that_caps_allow() -> TestResult {
    let run = |profile: ProfileType| -> Result<String, String> {
        let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
        let rootfs = busybox_rootfs(bundle.path());
        symlink("busybox", rootfs.join("bin/unshare")).map_err(|e| e.to_string())?;
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "unshare-checker".into(),
                attempt: 0,
            }),
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "id -u; if unshare -U true; then echo UNSHARED; else echo UNSHARE-REFUSED; fi"
                    .into(),
            ],
            linux: Some(LinuxContainerConfig {
                resources: None,
                security_context: Some(LinuxContainerSecurityContext {
                    seccomp: Some(SecurityProfile {
                        profile_type: profile as i32,
                        localhost_ref: String::new(),
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let image = ImageConfig::default();
        let pod = pod_config();
        let spec = container_spec(&ContainerSpecInput {
            sandbox_id: "sb-spec-run",
            pod: &pod,
            config: &config,
            image: &image,
            rootfs: &rootfs,
            namespaces: all_new(),
            cgroups_path: cgroups_path(&unique_id("root")),
            pod_files: &PodFiles::default(),
        })
        .map_err(|e| e.to_string())?;
        let out = run_bundle(bundle.path(), &spec)?;
        if !out.status.success() {
            return Err(format!("container failed: {}", output_text(&out)));
        }
        Ok(output_text(&out))
    };
    let unconfined = run(ProfileType::Unconfined)?;
    if !unconfined.contains("UNSHARED") {
        return Err(format!(
            "control: unconfined root could not create a user namespace: {unconfined}"
        ));
    }
    let confined = run(ProfileType::RuntimeDefault)?;
    if !confined.contains("UNSHARE-REFUSED") {
        return Err(format!("RuntimeDefault let unshare through: {confined}"));
    }
    Ok(())
}

/// The pod's infra spec (read-only root, 65535:65535, no capability, RuntimeDefault seccomp,
/// own namespaces and hostname) runs its process to a clean exit.
fn pod_spec_infra_process_runs_and_exits_zero() -> TestResult {
    let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = busybox_rootfs(bundle.path());
    let pod = pod_config();
    let spec = pod_spec(&PodSpecInput {
        sandbox_id: "sb-spec-run",
        config: &pod,
        rootfs: &rootfs,
        args: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "test \"$(busybox id -u):$(busybox id -g)\" = 65535:65535 && \
             test \"$(busybox hostname)\" = spec-run-host && \
             ! busybox touch /x 2>/dev/null"
                .into(),
        ],
        namespaces: all_new(),
        cgroups_path: cgroups_path(&unique_id("pod")),
    })
    .map_err(|e| e.to_string())?;
    let out = run_bundle(bundle.path(), &spec)?;
    if !out.status.success() {
        return Err(format!("infra process failed: {}", output_text(&out)));
    }
    let bundle2 = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs2 = busybox_rootfs(bundle2.path());
    let spec = pod_spec(&PodSpecInput {
        sandbox_id: "sb-spec-run",
        config: &pod,
        rootfs: &rootfs2,
        args: vec!["/bin/busybox".into(), "true".into()],
        namespaces: all_new(),
        cgroups_path: cgroups_path(&unique_id("pod")),
    })
    .map_err(|e| e.to_string())?;
    let out = run_bundle(bundle2.path(), &spec)?;
    if !out.status.success() {
        return Err(format!("busybox true failed: {}", output_text(&out)));
    }
    Ok(())
}

/// The pod's shm dir is the container's /dev/shm, a kubelet mount replaces /etc/hosts and is
/// read-only, a requested device node exists and works, the rest of the rootfs is writable.
fn container_spec_pod_shm_cri_mounts_and_devices_work() -> TestResult {
    let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = busybox_rootfs(bundle.path());
    for applet in ["head", "wc", "touch", "echo"] {
        symlink("busybox", rootfs.join("bin").join(applet)).map_err(|e| e.to_string())?;
    }
    let host = tempfile::tempdir().map_err(|e| e.to_string())?;
    let shm = host.path().join("shm");
    std::fs::create_dir(&shm).map_err(|e| e.to_string())?;
    std::fs::write(shm.join("from-pod"), "shared").map_err(|e| e.to_string())?;
    let hosts = host.path().join("kubelet-hosts");
    std::fs::write(&hosts, "10.0.0.1 from-kubelet\n").map_err(|e| e.to_string())?;
    let data = host.path().join("data");
    std::fs::create_dir(&data).map_err(|e| e.to_string())?;
    std::fs::write(data.join("f"), "data").map_err(|e| e.to_string())?;
    let files = PodFiles {
        hosts: Some(host.path().join("unused-hosts")),
        shm: Some(shm.clone()),
        ..Default::default()
    };
    std::fs::write(host.path().join("unused-hosts"), "pod hosts\n").map_err(|e| e.to_string())?;
    let script = "cat /dev/shm/from-pod; echo; cat /etc/hosts; cat /data/f; echo; \
        if touch /data/new 2>/dev/null; then echo DATA-WRITABLE; else echo DATA-RO; fi; \
        head -c 5 /dev/myzero | wc -c; touch /tmp/ok && echo ROOT-RW; \
        echo hi > /dev/shm/from-container";
    let config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "mounts".into(),
            attempt: 0,
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        mounts: vec![
            berth_api::runtime::v1::Mount {
                container_path: "/etc/hosts".into(),
                host_path: hosts.display().to_string(),
                ..Default::default()
            },
            berth_api::runtime::v1::Mount {
                container_path: "/data".into(),
                host_path: data.display().to_string(),
                readonly: true,
                ..Default::default()
            },
        ],
        devices: vec![berth_api::runtime::v1::Device {
            container_path: "/dev/myzero".into(),
            host_path: "/dev/zero".into(),
            permissions: "rw".into(),
        }],
        ..Default::default()
    };
    std::fs::create_dir(rootfs.join("data")).map_err(|e| e.to_string())?;
    let image = ImageConfig::default();
    let pod = pod_config();
    let spec = container_spec(&ContainerSpecInput {
        sandbox_id: "sb-spec-run",
        pod: &pod,
        config: &config,
        image: &image,
        rootfs: &rootfs,
        namespaces: all_new(),
        cgroups_path: cgroups_path(&unique_id("mounts")),
        pod_files: &files,
    })
    .map_err(|e| e.to_string())?;
    let out = run_bundle(bundle.path(), &spec)?;
    let text = output_text(&out);
    if !out.status.success() {
        return Err(format!("container failed: {text}"));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in ["shared", "from-kubelet", "data", "DATA-RO", "5", "ROOT-RW"] {
        if !stdout.contains(want) {
            return Err(format!("{want:?} missing: {text}"));
        }
    }
    if stdout.contains("pod hosts") {
        return Err(format!(
            "the kubelet's /etc/hosts did not replace the pod's: {text}"
        ));
    }
    match std::fs::read_to_string(shm.join("from-container")) {
        Ok(t) if t == "hi\n" => Ok(()),
        other => Err(format!(
            "container's /dev/shm is not the pod's: {other:?}: {text}"
        )),
    }
}

/// A privileged container (in a privileged pod) holds every capability, has no filter and can
/// mount.
fn privileged_container_spec_can_mount() -> TestResult {
    let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = busybox_rootfs(bundle.path());
    let mut pod = pod_config();
    if let Some(sc) = pod.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "privileged".into(),
            attempt: 0,
        }),
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "grep -E '^(Seccomp|CapEff):' /proc/self/status; mount -t tmpfs none /mnt && echo MOUNTED"
                .into(),
        ],
        linux: Some(LinuxContainerConfig {
            resources: None,
            security_context: Some(LinuxContainerSecurityContext {
                privileged: true,
                seccomp: Some(SecurityProfile::default()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let image = ImageConfig::default();
    let spec = container_spec(&ContainerSpecInput {
        sandbox_id: "sb-spec-run",
        pod: &pod,
        config: &config,
        image: &image,
        rootfs: &rootfs,
        namespaces: all_new(),
        cgroups_path: cgroups_path(&unique_id("priv")),
        pod_files: &PodFiles::default(),
    })
    .map_err(|e| e.to_string())?;
    let out = run_bundle(bundle.path(), &spec)?;
    let text = output_text(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("MOUNTED") || !stdout.contains("Seccomp:\t0") {
        return Err(format!("privileged container: {text}"));
    }
    Ok(())
}

type TestFn = fn() -> TestResult;

fn main() {
    let args = Arguments::from_args();
    let missing = missing_prerequisite();
    let tests: &[(&str, TestFn)] = &[
        (
            "container_spec_runs_as_named_user_with_groups_no_caps_and_seccomp",
            container_spec_runs_as_named_user_with_groups_no_caps_and_seccomp,
        ),
        (
            "container_spec_runtime_default_seccomp_refuses_unshare_that_caps_allow",
            container_spec_runtime_default_seccomp_refuses_unshare_that_caps_allow,
        ),
        (
            "container_spec_pod_shm_cri_mounts_and_devices_work",
            container_spec_pod_shm_cri_mounts_and_devices_work,
        ),
        (
            "privileged_container_spec_can_mount",
            privileged_container_spec_can_mount,
        ),
        (
            "pod_spec_infra_process_runs_and_exits_zero",
            pod_spec_infra_process_runs_and_exits_zero,
        ),
    ];
    let trials = berth_test_support::trials(tests, missing.clone(), "CI");
    let conclusion = libtest_mimic::run(&args, trials);
    remove_test_cgroups();
    conclusion.exit();
}
