//! Root end-to-end tests of pods and containers: berthd driven over its socket with the
//! CRI client, running real busybox containers (image pulled from a loopback
//! docker-registry) in real pods networked by Debian's CNI bridge plugin.
//!
//! Skipped with the reason when not root or a tool is missing; with CI set, a missing
//! prerequisite fails the run instead.

#[path = "pods/streaming.rs"]
mod streaming;
mod support;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use berth_api::runtime::v1::runtime_service_client::RuntimeServiceClient;
use berth_api::runtime::v1::*;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use support::*;
use tonic::transport::Channel;

type TestResult = Result<(), Failed>;
type Rt = RuntimeServiceClient<Channel>;

/// The registry and network every test shares (built once).
struct Shared {
    registry: Registry,
    network: Network,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| Shared {
        registry: Registry::start(),
        network: Network::new("berthe2e0", 231),
    })
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> TestResult {
    if cond { Ok(()) } else { Err(msg().into()) }
}

fn pod_config(name: &str, logs: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("{name}-uid"),
            namespace: "berth-e2e".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        dns_config: Some(DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["berth-e2e.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        log_directory: logs.join(name).to_string_lossy().into_owned(),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}/0.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources::default()),
            security_context: Some(LinuxContainerSecurityContext {
                // What the kubelet sends for a pod that does not share its PID namespace.
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                seccomp: Some(SecurityProfile {
                    profile_type: security_profile::ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Pulls the test image through berthd; returns the image id.
async fn pull(b: &Berthd) -> Result<String, Failed> {
    pull_tag(b, "busybox").await
}

/// Pulls hack/images/build's `tag` through berthd; returns the image id.
async fn pull_tag(b: &Berthd, tag: &str) -> Result<String, Failed> {
    let resp = b
        .images()
        .await
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: shared().registry.image(tag),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    Ok(resp.into_inner().image_ref)
}

/// What every variant of the busybox image must show inside a container: its files,
/// with layer 2's whiteouts applied (etc/removed deleted, data/ made opaque).
const LAYERS_CHECK: &str = "test ! -e /etc/removed && test ! -e /data/old && cat /data/new";

fn pulled_images_run_with_whiteouts_users_and_setuid() -> TestResult {
    // zstd and uncompressed layers each in a fresh store, so that their own blobs are
    // unpacked (the variants share diff IDs, hence unpacked layers, with busybox).
    for tag in ["zstd", "plain"] {
        with_berthd("/berth-e2e-m", async |b, rt| {
            let image = pull_tag(b, tag).await?;
            let pod = pod_config(tag, &b.dir.join("logs"));
            let pod_id = run_pod(rt, pod.clone()).await?;
            let c = start_container(
                rt,
                &pod_id,
                &pod,
                container_config("c", &image, "exec sleep 1000"),
            )
            .await?;
            let out = exec_out(rt, &c, LAYERS_CHECK).await?;
            ensure(out == "new", || format!("{tag}: {out:?}"))?;
            stop_and_remove_pod(rt, &pod_id).await
        })?;
    }
    with_berthd("/berth-e2e-m", async |b, rt| {
        let image = pull_tag(b, "app").await?;
        let pod = pod_config("app", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        ensure(exec_out(rt, &c, LAYERS_CHECK).await? == "new", || {
            "layers".into()
        })?;
        // The image's User "app" is resolved in its own /etc/passwd and /etc/group.
        let id = exec_out(rt, &c, "busybox id").await?;
        ensure(
            id == "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)",
            || format!("id: {id:?}"),
        )?;
        let mode = exec_out(rt, &c, "busybox stat -c %a:%u /usr/bin/suid").await?;
        ensure(mode == "4755:0", || format!("setuid file: {mode:?}"))?;
        let s = status(rt, &c).await?;
        let user = s.user.and_then(|u| u.linux).ok_or("no user")?;
        ensure(
            user.uid == 1000 && user.gid == 1000 && user.supplemental_groups.contains(&2000),
            || format!("{user:?}"),
        )?;
        stop_and_remove_pod(rt, &pod_id).await
    })
}

async fn run_pod(rt: &mut Rt, config: PodSandboxConfig) -> Result<String, Failed> {
    Ok(rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id)
}

async fn start_container(
    rt: &mut Rt,
    pod_id: &str,
    pod: &PodSandboxConfig,
    config: ContainerConfig,
) -> Result<String, Failed> {
    let id = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await?;
    Ok(id)
}

async fn status(rt: &mut Rt, id: &str) -> Result<ContainerStatus, Failed> {
    Ok(rt
        .container_status(ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .ok_or("no status")?)
}

async fn wait_exited(rt: &mut Rt, id: &str) -> Result<ContainerStatus, Failed> {
    for _ in 0..200 {
        let s = status(rt, id).await?;
        if s.state() == ContainerState::ContainerExited {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("container {id} did not exit").into())
}

async fn exec(rt: &mut Rt, id: &str, cmd: &str) -> Result<ExecSyncResponse, Failed> {
    Ok(rt
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
            timeout: 10,
        })
        .await?
        .into_inner())
}

async fn exec_out(rt: &mut Rt, id: &str, cmd: &str) -> Result<String, Failed> {
    let r = exec(rt, id, cmd).await?;
    ensure(r.exit_code == 0, || {
        format!(
            "{cmd:?} exited {}: {}",
            r.exit_code,
            String::from_utf8_lossy(&r.stderr)
        )
    })?;
    Ok(String::from_utf8_lossy(&r.stdout).trim().to_string())
}

async fn stop_and_remove_pod(rt: &mut Rt, id: &str) -> TestResult {
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await?;
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: id.into(),
    })
    .await?;
    Ok(())
}

/// What a berthd has left on the node: mounts, netns pins, shims, IPs, cgroups.
fn leftovers(b: &Berthd, cgroup_parent: &str) -> Vec<String> {
    let mut out = mounts_below(&b.dir);
    for sub in ["netns", "shims", "pods", "containers"] {
        if let Ok(rd) = std::fs::read_dir(b.state().join(sub)) {
            out.extend(
                rd.flatten()
                    .map(|e| format!("{sub}/{}", e.file_name().to_string_lossy())),
            );
        }
    }
    out.extend(
        processes_mentioning(&b.state().to_string_lossy())
            .into_iter()
            .filter(|p| !p.contains("berthd")),
    );
    out.extend(
        shared()
            .network
            .allocated_ips()
            .into_iter()
            .map(|ip| format!("ip {ip}")),
    );
    for controller in ["memory", "pids", "cpu", "unified"] {
        let dir = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(cgroup_parent.trim_start_matches('/'));
        if let Ok(rd) = std::fs::read_dir(&dir) {
            out.extend(
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| format!("cgroup {}", e.path().display())),
            );
        }
    }
    out
}

fn with_berthd(
    cgroup_parent: &str,
    f: impl AsyncFnOnce(&mut Berthd, &mut Rt) -> TestResult,
) -> TestResult {
    with_berthd_config(cgroup_parent, "", f)
}

fn with_berthd_config(
    cgroup_parent: &str,
    extra_config: &str,
    f: impl AsyncFnOnce(&mut Berthd, &mut Rt) -> TestResult,
) -> TestResult {
    let s = shared();
    let mut b = Berthd::start_with(&s.network, &s.registry, cgroup_parent, extra_config);
    let _last_resort = ForceCleanup {
        dir: b.dir.clone(),
        cgroup_parent: cgroup_parent.to_string(),
    };
    let result = tokio().block_on(async {
        let mut rt = b.runtime().await;
        let result = f(&mut b, &mut rt).await;
        // A failed test leaves its pods: remove them so the next test starts clean.
        if result.is_err() {
            let mut rt = b.runtime().await;
            if let Ok(pods) = rt.list_pod_sandbox(ListPodSandboxRequest::default()).await {
                for p in pods.into_inner().items {
                    let _ = stop_and_remove_pod(&mut rt, &p.id).await;
                }
            }
        }
        result
    });
    if result.is_err() {
        eprintln!("--- berthd log ---\n{}", b.log());
    }
    remove_cgroup_parent(cgroup_parent);
    result
}

fn pod_with_two_containers_shares_network_ipc_and_logs() -> TestResult {
    with_berthd("/berth-e2e-a", async |b, rt| {
        let image = pull(b).await?;
        ensure(image.starts_with("sha256:"), || {
            format!("image ref {image}")
        })?;
        let logs = b.dir.join("logs");
        let pod = pod_config("web", &logs);
        let pod_id = run_pod(rt, pod.clone()).await?;
        let st = rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod_id.clone(),
                verbose: true,
            })
            .await?
            .into_inner();
        let ps = st.status.clone().ok_or("no pod status")?;
        ensure(ps.state() == PodSandboxState::SandboxReady, || {
            format!("{ps:?}")
        })?;
        let ip = ps.network.clone().unwrap_or_default().ip;
        ensure(ip.starts_with("10.88.231."), || format!("pod ip {ip:?}"))?;

        let server = start_container(
            rt,
            &pod_id,
            &pod,
            container_config(
                "server",
                &image,
                "mkdir -p /www && echo hello-from-server > /www/index.html && \
                 echo shm-data > /dev/shm/marker && echo started && \
                 exec busybox httpd -f -p 8080 -h /www",
            ),
        )
        .await?;
        let client = start_container(
            rt,
            &pod_id,
            &pod,
            container_config(
                "client",
                &image,
                "echo out-line; echo err-line >&2; exec sleep 1000",
            ),
        )
        .await?;

        // The network is shared: localhost reaches the other container.
        let mut page = String::new();
        for _ in 0..50 {
            if let Ok(out) =
                exec_out(rt, &client, "busybox wget -q -O - http://127.0.0.1:8080/").await
            {
                page = out;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure(page == "hello-from-server", || format!("page {page:?}"))?;
        // IPC (and the pod's /dev/shm) are shared; UTS carries the pod's hostname.
        let ipc_a = exec_out(rt, &server, "busybox readlink /proc/self/ns/ipc").await?;
        let ipc_b = exec_out(rt, &client, "busybox readlink /proc/self/ns/ipc").await?;
        ensure(ipc_a == ipc_b, || format!("ipc {ipc_a} vs {ipc_b}"))?;
        let shm = exec_out(rt, &client, "cat /dev/shm/marker").await?;
        ensure(shm == "shm-data", || format!("shm {shm:?}"))?;
        let host = exec_out(rt, &client, "busybox hostname").await?;
        ensure(host == "web", || format!("hostname {host:?}"))?;
        let resolv = exec_out(rt, &client, "cat /etc/resolv.conf").await?;
        ensure(
            resolv.contains("nameserver 10.96.0.10")
                && resolv.contains("search berth-e2e.svc.cluster.local")
                && resolv.contains("options ndots:5"),
            || format!("resolv.conf {resolv:?}"),
        )?;
        // Each container has its own PID namespace by default.
        let pid1 = exec_out(rt, &client, "cat /proc/1/cmdline | tr '\\0' ' '").await?;
        ensure(pid1.contains("sleep 1000"), || format!("pid 1 is {pid1:?}"))?;

        // The CRI log holds stdout and stderr records.
        let cs = status(rt, &client).await?;
        ensure(cs.state() == ContainerState::ContainerRunning, || {
            format!("{cs:?}")
        })?;
        ensure(cs.started_at > 0 && cs.created_at > 0, || format!("{cs:?}"))?;
        let user = cs
            .user
            .clone()
            .and_then(|u| u.linux)
            .ok_or("no user in status")?;
        ensure(user.uid == 0 && user.gid == 0, || format!("{user:?}"))?;
        let log_path = logs.join("web/client/0.log");
        ensure(cs.log_path == log_path.to_string_lossy(), || {
            cs.log_path.clone()
        })?;
        let log = std::fs::read_to_string(&log_path)?;
        ensure(
            log.contains(" stdout F out-line") && log.contains(" stderr F err-line"),
            || format!("log {log:?}"),
        )?;

        let list = rt
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod_id.clone(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        ensure(list.containers.len() == 2, || format!("{list:?}"))?;

        stop_and_remove_pod(rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-a");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

fn exit_codes_reasons_and_oom_kill() -> TestResult {
    with_berthd("/berth-e2e-b", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("exits", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let failing = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("fail", &image, "exit 3"),
        )
        .await?;
        let ok = start_container(rt, &pod_id, &pod, container_config("ok", &image, "true")).await?;
        let mut oom_config =
            container_config("oom", &image, "x=a; while true; do x=$x$x$x$x; done");
        oom_config.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
            memory_limit_in_bytes: 32 << 20,
            ..Default::default()
        });
        let oom = start_container(rt, &pod_id, &pod, oom_config).await?;

        let s = wait_exited(rt, &failing).await?;
        ensure(s.exit_code == 3 && s.reason == "Error", || format!("{s:?}"))?;
        ensure(s.finished_at >= s.started_at, || format!("{s:?}"))?;
        let s = wait_exited(rt, &ok).await?;
        ensure(s.exit_code == 0 && s.reason == "Completed", || {
            format!("{s:?}")
        })?;
        let s = wait_exited(rt, &oom).await?;
        ensure(s.reason == "OOMKilled" && s.exit_code == 137, || {
            format!("{s:?}")
        })?;
        stop_and_remove_pod(rt, &pod_id).await
    })
}

fn exec_sync_exit_code_output_and_timeout() -> TestResult {
    with_berthd("/berth-e2e-c", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("execs", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        let r = exec(rt, &c, "echo to-out; echo to-err >&2; exit 7").await?;
        ensure(
            r.exit_code == 7 && r.stdout == b"to-out\n" && r.stderr == b"to-err\n",
            || format!("{r:?}"),
        )?;
        let started = std::time::Instant::now();
        let err = rt
            .exec_sync(ExecSyncRequest {
                container_id: c.clone(),
                cmd: vec!["/bin/busybox".into(), "sleep".into(), "30".into()],
                timeout: 1,
            })
            .await
            .unwrap_err();
        ensure(err.code() == tonic::Code::DeadlineExceeded, || {
            format!("{err:?}")
        })?;
        ensure(started.elapsed() < Duration::from_secs(20), || {
            "timeout not applied".into()
        })?;
        // ExecSync in an unknown container is NotFound.
        let err = rt
            .exec_sync(ExecSyncRequest {
                container_id: "nope".into(),
                cmd: vec!["true".into()],
                timeout: 1,
            })
            .await
            .unwrap_err();
        ensure(err.code() == tonic::Code::NotFound, || format!("{err:?}"))?;
        stop_and_remove_pod(rt, &pod_id).await
    })
}

fn stop_and_remove_are_idempotent_and_bad_requests_fail_with_codes() -> TestResult {
    with_berthd("/berth-e2e-d", async |b, rt| {
        let image = pull(b).await?;
        for id in ["unknown", "0123456789abcdef"] {
            rt.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await?;
            rt.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await?;
            rt.stop_container(StopContainerRequest {
                container_id: id.into(),
                timeout: 1,
            })
            .await?;
            rt.remove_container(RemoveContainerRequest {
                container_id: id.into(),
            })
            .await?;
            let err = rt
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id.into(),
                    verbose: false,
                })
                .await
                .unwrap_err();
            ensure(
                err.code() == tonic::Code::NotFound && err.message().contains(id),
                || format!("{err:?}"),
            )?;
            let err = rt
                .container_status(ContainerStatusRequest {
                    container_id: id.into(),
                    verbose: false,
                })
                .await
                .unwrap_err();
            ensure(
                err.code() == tonic::Code::NotFound && err.message().contains(id),
                || format!("{err:?}"),
            )?;
        }
        let logs = b.dir.join("logs");
        let pod = pod_config("dup", &logs);
        let pod_id = run_pod(rt, pod.clone()).await?;
        let err = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_err();
        ensure(
            err.code() == tonic::Code::AlreadyExists && err.message().contains(&pod_id),
            || format!("{err:?}"),
        )?;

        // A host-wide sysctl is refused, naming it, and leaves nothing behind.
        let mut bad = pod_config("sysctl", &logs);
        bad.linux.as_mut().unwrap().sysctls =
            HashMap::from([("kernel.core_pattern".to_string(), "|/tmp/x".to_string())]);
        let err = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(bad),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_err();
        ensure(
            err.code() == tonic::Code::InvalidArgument
                && err.message().contains("kernel.core_pattern"),
            || format!("{err:?}"),
        )?;
        // An image that is not there: NotFound naming it, nothing left.
        let err = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(container_config("x", "example.invalid/none:1", "true")),
                sandbox_config: Some(pod.clone()),
            })
            .await
            .unwrap_err();
        ensure(
            err.code() == tonic::Code::NotFound && err.message().contains("example.invalid/none:1"),
            || format!("{err:?}"),
        )?;
        // A log path that climbs out of the pod's log directory is refused.
        let mut escaping = container_config("escape", &image, "true");
        escaping.log_path = "../../../etc/cron.d/berth".into();
        let err = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(escaping),
                sandbox_config: Some(pod.clone()),
            })
            .await
            .unwrap_err();
        ensure(
            err.code() == tonic::Code::InvalidArgument
                && err.message().contains("../../../etc/cron.d/berth"),
            || format!("{err:?}"),
        )?;
        // A command the image lacks fails at create, undone completely.
        let mut missing = container_config("missing", &image, "");
        missing.command = vec!["/no/such/binary".into()];
        let err = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(missing),
                sandbox_config: Some(pod.clone()),
            })
            .await;
        if let Err(err) = &err {
            ensure(err.message().contains("/no/such/binary"), || {
                format!("{err:?}")
            })?;
        }
        let n = rt
            .list_containers(ListContainersRequest::default())
            .await?
            .into_inner()
            .containers
            .len();
        let started_missing = err.is_ok();
        // berth-oci (like runc) reports a missing binary at create or at start.
        ensure(n == usize::from(started_missing), || {
            format!("{n} containers")
        })?;
        // The duplicate container name is refused.
        let c = container_config("same", &image, "exec sleep 100");
        start_container(rt, &pod_id, &pod, c.clone()).await?;
        let err = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(c),
                sandbox_config: Some(pod.clone()),
            })
            .await
            .unwrap_err();
        ensure(err.code() == tonic::Code::AlreadyExists, || {
            format!("{err:?}")
        })?;
        stop_and_remove_pod(rt, &pod_id).await?;
        stop_and_remove_pod(rt, &pod_id).await?;
        let pods = rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await?
            .into_inner()
            .items;
        ensure(pods.is_empty(), || format!("{pods:?}"))?;
        let left = leftovers(b, "/berth-e2e-d");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

fn host_network_pod_and_port_mapping() -> TestResult {
    with_berthd("/berth-e2e-e", async |b, rt| {
        let image = pull(b).await?;
        let logs = b.dir.join("logs");
        let mut host = pod_config("hostnet", &logs);
        host.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options = Some(NamespaceOption {
            network: NamespaceMode::Node as i32,
            pid: NamespaceMode::Node as i32,
            ipc: NamespaceMode::Node as i32,
            ..Default::default()
        });
        let host_id = run_pod(rt, host.clone()).await?;
        // hostNetwork + hostPID + hostIPC: the kubelet sends NODE for the container too.
        let mut hc = container_config("c", &image, "exec sleep 1000");
        hc.linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options = Some(NamespaceOption {
            network: NamespaceMode::Node as i32,
            pid: NamespaceMode::Node as i32,
            ipc: NamespaceMode::Node as i32,
            ..Default::default()
        });
        let c = start_container(rt, &host_id, &host, hc).await?;
        for ns in ["net", "pid", "ipc", "uts"] {
            let inside = exec_out(rt, &c, &format!("busybox readlink /proc/self/ns/{ns}")).await?;
            let outside = std::fs::read_link(format!("/proc/self/ns/{ns}"))?
                .to_string_lossy()
                .into_owned();
            ensure(inside == outside, || {
                format!("{ns} namespace {inside} vs host {outside}")
            })?;
        }

        let mut mapped = pod_config("mapped", &logs);
        mapped.port_mappings = vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: 8080,
            host_port: 18231,
            host_ip: String::new(),
        }];
        let pod_id = run_pod(rt, mapped.clone()).await?;
        start_container(
            rt,
            &pod_id,
            &mapped,
            container_config("srv", &image, "mkdir /www && echo mapped-ok > /www/index.html && exec busybox httpd -f -p 8080 -h /www"),
        )
        .await?;
        let url = format!("{}:18231", shared().network.gateway);
        let mut got = String::new();
        for _ in 0..50 {
            if let Ok(body) = http_get(&url) {
                got = body;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure(got.contains("mapped-ok"), || format!("GET {url}: {got:?}"))?;
        stop_and_remove_pod(rt, &pod_id).await?;
        stop_and_remove_pod(rt, &host_id).await?;
        let left = leftovers(b, "/berth-e2e-e");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

fn http_get(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn container_events_arrive_in_order() -> TestResult {
    with_berthd("/berth-e2e-f", async |b, rt| {
        let image = pull(b).await?;
        let mut events = rt
            .get_container_events(GetEventsRequest {})
            .await?
            .into_inner();
        let pod = pod_config("events", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        rt.stop_container(StopContainerRequest {
            container_id: c.clone(),
            timeout: 2,
        })
        .await?;
        rt.remove_container(RemoveContainerRequest {
            container_id: c.clone(),
        })
        .await?;
        let mut kinds = Vec::new();
        while kinds.len() < 4 {
            let e = tokio::time::timeout(Duration::from_secs(10), events.message())
                .await
                .map_err(|_| format!("events so far: {kinds:?}"))??
                .ok_or("event stream ended")?;
            ensure(e.container_id == c, || format!("{e:?}"))?;
            kinds.push(e.container_event_type());
        }
        use ContainerEventType::*;
        ensure(
            kinds
                == [
                    ContainerCreatedEvent,
                    ContainerStartedEvent,
                    ContainerStoppedEvent,
                    ContainerDeletedEvent,
                ],
            || format!("{kinds:?}"),
        )?;
        stop_and_remove_pod(rt, &pod_id).await
    })
}

fn restart_recovers_pods_containers_and_exits() -> TestResult {
    with_berthd("/berth-e2e-g", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("survivor", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let long = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("long", &image, "exec sleep 1000"),
        )
        .await?;
        let short = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("short", &image, "sleep 1; exit 5"),
        )
        .await?;
        b.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        b.spawn();
        let mut rt = b.runtime().await;
        let pods = rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await?
            .into_inner()
            .items;
        ensure(
            pods.len() == 1
                && pods[0].id == pod_id
                && pods[0].state() == PodSandboxState::SandboxReady,
            || format!("{pods:?}"),
        )?;
        let s = status(&mut rt, &long).await?;
        ensure(s.state() == ContainerState::ContainerRunning, || {
            format!("{s:?}")
        })?;
        let s = status(&mut rt, &short).await?;
        ensure(
            s.state() == ContainerState::ContainerExited && s.exit_code == 5,
            || format!("{s:?}"),
        )?;
        // Still controllable: exec, then stop.
        let out = exec_out(&mut rt, &long, "echo alive").await?;
        ensure(out == "alive", || out.clone())?;
        stop_and_remove_pod(&mut rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-g");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

/// An upgrade as docs/node.md describes it: berth installed with hack/install, a pod
/// running, the binaries replaced by a second hack/install (by rename: the running shims
/// keep their old copy), berthd stopped with SIGTERM alone (the unit's KillMode=process)
/// and started from the new binary. The pod and its container are still controllable,
/// and a container started afterwards runs under the new shim.
fn upgrade_by_reinstall_and_restart_keeps_pods_controllable() -> TestResult {
    let destdir = tempfile::tempdir()?;
    let install = || -> TestResult {
        let bin_dir = Path::new(BERTHD).parent().unwrap();
        let out = std::process::Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/install"))
            .arg("--bin-dir")
            .arg(bin_dir)
            .arg("--destdir")
            .arg(destdir.path())
            .env_remove("DESTDIR")
            .output()?;
        ensure(out.status.success(), || {
            format!("hack/install: {}", String::from_utf8_lossy(&out.stderr))
        })
    };
    install()?;
    let installed = destdir.path().join("usr/local/bin");
    with_berthd("/berth-e2e-u", async |b, _rt| {
        // Run the installed berthd (and so the shim and berth-oci beside it).
        b.kill();
        b.binary = installed.join("berthd");
        b.spawn();
        let mut rt0 = b.runtime().await;
        let image = pull(b).await?;
        let pod = pod_config("upgraded", &b.dir.join("logs"));
        let pod_id = run_pod(&mut rt0, pod.clone()).await?;
        let long = start_container(
            &mut rt0,
            &pod_id,
            &pod,
            container_config("long", &image, "exec sleep 1000"),
        )
        .await?;
        let ino = |name: &str| std::fs::metadata(installed.join(name)).map(|m| m.ino());
        let before = (ino("berthd")?, ino("berth-shim")?);

        install()?;
        let after = (ino("berthd")?, ino("berth-shim")?);
        ensure(before.0 != after.0 && before.1 != after.1, || {
            format!("binaries not replaced: {before:?} {after:?}")
        })?;
        // The running shims still run the binary they started with, now unlinked.
        let shims: Vec<String> = processes_mentioning(&b.state().to_string_lossy())
            .into_iter()
            .filter(|p| p.contains("berth-shim"))
            .collect();
        ensure(!shims.is_empty(), || "no shim running".into())?;
        for shim in &shims {
            let pid = shim.split(':').next().unwrap();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
            ensure(exe.to_string_lossy().ends_with(" (deleted)"), || {
                format!("shim {shim} runs {}", exe.display())
            })?;
        }

        b.terminate();
        b.spawn();
        let mut rt1 = b.runtime().await;
        let s = status(&mut rt1, &long).await?;
        ensure(s.state() == ContainerState::ContainerRunning, || {
            format!("{s:?}")
        })?;
        let out = exec_out(&mut rt1, &long, "echo alive").await?;
        ensure(out == "alive", || out.clone())?;
        let fresh = start_container(
            &mut rt1,
            &pod_id,
            &pod,
            container_config("fresh", &image, "exec sleep 1000"),
        )
        .await?;
        let out = exec_out(&mut rt1, &fresh, "echo new").await?;
        ensure(out == "new", || out.clone())?;
        stop_and_remove_pod(&mut rt1, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-u");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

fn configured_pause_image_is_pulled_and_runs_the_pod() -> TestResult {
    let pause = shared().registry.pause();
    let config = format!("pause_image = \"{pause}\"");
    with_berthd_config("/berth-e2e-i", &config, async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("paused", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let present = b
            .images()
            .await
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: pause.clone(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await?
            .into_inner()
            .image;
        ensure(present.is_some(), || format!("{pause} was not pulled"))?;
        let info = rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod_id.clone(),
                verbose: true,
            })
            .await?
            .into_inner()
            .info;
        let verbose: serde_json::Value = serde_json::from_str(&info["info"])?;
        let pid = verbose["pid"].as_i64().ok_or("no pid")?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        ensure(cmdline.contains("sleep 2147483647"), || {
            format!("infra runs {cmdline:?}")
        })?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        let host = exec_out(rt, &c, "busybox hostname").await?;
        ensure(host == "paused", || host.clone())?;
        stop_and_remove_pod(rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-i");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

fn http_get_path(addr: &str, path: &str) -> Result<(u16, String), Failed> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status line")?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // hyper sends a sized body (Content-Length), never chunked, for these.
    let body = body.to_string();
    Ok((code, body))
}

/// Parses Prometheus text: every sample line is `name{labels} value`, every family has
/// HELP and TYPE lines before its samples.
fn parse_metrics(text: &str) -> Result<HashMap<String, f64>, Failed> {
    let mut typed = std::collections::HashSet::new();
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap_or("").to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').ok_or(format!("bad line {line:?}"))?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("bad value in {line:?}"))?;
        let name = key.split('{').next().unwrap_or("");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.contains(*f))
            .unwrap_or(name);
        ensure(typed.contains(family), || {
            format!("{name} has no TYPE line")
        })?;
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metrics_count_a_pod_lifecycle() -> TestResult {
    let addr = format!("127.0.0.1:{}", free_port());
    let config = format!("metrics.address = \"{addr}\"");
    with_berthd_config("/berth-e2e-k", &config, async |b, rt| {
        let (code, body) = http_get_path(&addr, "/healthz")?;
        ensure(code == 200 && body.contains("ok"), || {
            format!("{code} {body}")
        })?;
        let before = parse_metrics(&http_get_path(&addr, "/metrics")?.1)?;
        let image = pull(b).await?;
        let pod = pod_config("metered", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        start_container(
            rt,
            &pod_id,
            &pod,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        let during = parse_metrics(&http_get_path(&addr, "/metrics")?.1)?;
        stop_and_remove_pod(rt, &pod_id).await?;
        let after = parse_metrics(&http_get_path(&addr, "/metrics")?.1)?;
        let get = |m: &HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
        let calls = |method: &str| {
            format!("berth_cri_requests_total{{method=\"runtime.v1.{method}\",code=\"OK\"}}")
        };
        for (method, n) in [
            ("RuntimeService/RunPodSandbox", 1.0),
            ("RuntimeService/CreateContainer", 1.0),
            ("RuntimeService/StartContainer", 1.0),
            ("RuntimeService/StopPodSandbox", 1.0),
            ("RuntimeService/RemovePodSandbox", 1.0),
            ("ImageService/PullImage", 1.0),
        ] {
            let k = calls(method);
            let moved = get(&after, &k) - get(&before, &k);
            ensure(moved == n, || format!("{k} moved by {moved}"))?;
        }
        let hist = "berth_cri_request_duration_seconds_count{method=\"runtime.v1.RuntimeService/RunPodSandbox\"}";
        ensure(get(&after, hist) - get(&before, hist) == 1.0, || {
            hist.into()
        })?;
        ensure(get(&during, "berth_pods{state=\"ready\"}") == 1.0, || {
            format!("{during:?}")
        })?;
        ensure(
            get(&during, "berth_containers{state=\"running\"}") == 1.0,
            || "running".into(),
        )?;
        ensure(get(&during, "berth_shims") == 2.0, || {
            "two shims (infra and container)".into()
        })?;
        ensure(get(&after, "berth_pods{state=\"ready\"}") == 0.0, || {
            "pod gone".into()
        })?;
        ensure(get(&after, "berth_shims") == 0.0, || "shims gone".into())?;
        let pulls = "berth_image_pulls_total{result=\"success\"}";
        ensure(get(&after, pulls) - get(&before, pulls) == 1.0, || {
            pulls.into()
        })?;
        ensure(
            get(&after, "berth_image_pull_bytes_total") > 100_000.0,
            || "pull bytes".into(),
        )?;
        ensure(get(&after, "process_resident_memory_bytes") > 1e6, || {
            "rss".into()
        })?;
        let (code, _) = http_get_path(&addr, "/nope")?;
        ensure(code == 404, || format!("/nope answered {code}"))
    })
}

fn failed_cni_add_undoes_the_pod() -> TestResult {
    let net = Network::failing("berthfail0", 232);
    let mut b = Berthd::start(&net, &shared().registry, "/berth-e2e-n");
    let _last_resort = ForceCleanup {
        dir: b.dir.clone(),
        cgroup_parent: "/berth-e2e-n".into(),
    };
    let result = tokio().block_on(async {
        let mut rt = b.runtime().await;
        let pod = pod_config("doomed", &b.dir.join("logs"));
        let err = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_err();
        ensure(
            err.message().contains("berth-test-fail refuses ADD"),
            || format!("{err:?}"),
        )?;
        let pods = rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await?
            .into_inner()
            .items;
        ensure(pods.is_empty(), || format!("{pods:?}"))?;
        // Nothing of it is left: no IP, netns, shim, infra process, mount or cgroup.
        let ips = net.allocated_ips();
        ensure(ips.is_empty(), || format!("IPs held: {ips:?}"))?;
        let mut left = mounts_below(&b.dir);
        for sub in ["netns", "shims", "pods"] {
            if let Ok(rd) = std::fs::read_dir(b.state().join(sub)) {
                left.extend(
                    rd.flatten()
                        .map(|e| format!("{sub}/{}", e.file_name().to_string_lossy())),
                );
            }
        }
        left.extend(
            processes_mentioning(&b.state().to_string_lossy())
                .into_iter()
                .filter(|p| !p.contains("berthd")),
        );
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))?;
        // The name is free again: a retry is not AlreadyExists.
        let err = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_err();
        ensure(err.code() != tonic::Code::AlreadyExists, || {
            format!("{err:?}")
        })
    });
    if result.is_err() {
        eprintln!("--- berthd log ---\n{}", b.log());
    }
    b.kill();
    remove_cgroup_parent("/berth-e2e-n");
    result
}

fn twenty_pods_in_parallel_all_come_up() -> TestResult {
    with_berthd("/berth-e2e-h", async |b, _rt| {
        let logs = b.dir.join("logs");
        let mut tasks = Vec::new();
        for i in 0..20 {
            let channel = b.channel().await;
            let config = pod_config(&format!("par{i}"), &logs);
            tasks.push(tokio::spawn(async move {
                let mut rt = RuntimeServiceClient::new(channel);
                run_pod(&mut rt, config)
                    .await
                    .map_err(|e| e.message().unwrap_or_default().to_string())
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await?.map_err(Failed::from)?);
        }
        let mut rt = b.runtime().await;
        let pods = rt
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await?
            .into_inner()
            .items;
        let mut streamed = rt
            .stream_pod_sandboxes(StreamPodSandboxesRequest::default())
            .await?
            .into_inner();
        let mut n = 0;
        while let Some(m) = streamed.message().await? {
            n += m.pod_sandboxes.len();
        }
        ensure(n == 20, || format!("StreamPodSandboxes gave {n} pods"))?;
        let ready = pods
            .iter()
            .filter(|p| p.state() == PodSandboxState::SandboxReady)
            .count();
        ensure(ready == 20, || format!("{ready} of 20 ready"))?;
        let mut ips: Vec<String> = Vec::new();
        for id in &ids {
            let s = rt
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: id.clone(),
                    verbose: false,
                })
                .await?
                .into_inner();
            ips.push(
                s.status
                    .and_then(|s| s.network)
                    .map(|n| n.ip)
                    .unwrap_or_default(),
            );
        }
        ips.sort();
        ips.dedup();
        ensure(ips.len() == 20, || format!("ips {ips:?}"))?;
        for id in &ids {
            stop_and_remove_pod(&mut rt, id).await?;
        }
        let left = leftovers(b, "/berth-e2e-h");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

async fn container_stats(rt: &mut Rt, id: &str) -> Result<ContainerStats, Failed> {
    Ok(rt
        .container_stats(ContainerStatsRequest {
            container_id: id.into(),
        })
        .await?
        .into_inner()
        .stats
        .ok_or("no container stats")?)
}

fn value(v: &Option<UInt64Value>) -> u64 {
    v.as_ref().map_or(0, |v| v.value)
}

fn stats_are_non_zero() -> TestResult {
    with_berthd("/berth-e2e-i", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("stats", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        // Holds a few MB in a shell variable, then burns cpu.
        let burner = start_container(
            rt,
            &pod_id,
            &pod,
            container_config(
                "burner",
                &image,
                "x=$(busybox head -c 4000000 /dev/zero | busybox tr '\\0' a); \
                 while :; do :; done",
            ),
        )
        .await?;
        let idle = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("idle", &image, "exec sleep 1000"),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let first = container_stats(rt, &burner).await?;
        let attrs = first.attributes.clone().unwrap_or_default();
        ensure(
            attrs.id == burner && attrs.metadata.as_ref().is_some_and(|m| m.name == "burner"),
            || format!("attributes {attrs:?}"),
        )?;
        let cpu = first.cpu.ok_or("no cpu")?;
        ensure(value(&cpu.usage_core_nano_seconds) > 0, || {
            format!("first cpu {cpu:?}")
        })?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let second = container_stats(rt, &burner).await?;
        let cpu2 = second.cpu.ok_or("no cpu")?;
        ensure(value(&cpu2.usage_nano_cores) > 0, || {
            format!("second cpu {cpu2:?} (first {cpu:?})")
        })?;
        ensure(
            value(&cpu2.usage_core_nano_seconds) > value(&cpu.usage_core_nano_seconds),
            || format!("cpu did not grow: {cpu:?} then {cpu2:?}"),
        )?;
        let mem = second.memory.ok_or("no memory")?;
        ensure(
            value(&mem.working_set_bytes) > 0 && value(&mem.usage_bytes) > 0,
            || format!("memory {mem:?}"),
        )?;

        // The writable layer grows with what the container writes.
        let before = container_stats(rt, &idle).await?;
        let layer = before.writable_layer.clone().ok_or("no writable layer")?;
        ensure(
            layer
                .fs_id
                .as_ref()
                .is_some_and(|f| f.mountpoint.ends_with("snapshots")),
            || format!("layer {layer:?}"),
        )?;
        exec_out(
            rt,
            &idle,
            "busybox dd if=/dev/zero of=/written bs=1024 count=256 2>/dev/null && echo ok",
        )
        .await?;
        let after = container_stats(rt, &idle).await?;
        let grown = after.writable_layer.clone().ok_or("no writable layer")?;
        ensure(
            value(&grown.used_bytes) >= value(&layer.used_bytes) + (256 << 10)
                && value(&grown.inodes_used) > value(&layer.inodes_used),
            || format!("writable layer {layer:?} then {grown:?}"),
        )?;

        // Traffic out of the pod: a connection to the bridge's gateway (refused or not).
        let gw = shared().network.gateway.clone();
        exec(
            rt,
            &idle,
            &format!("busybox wget -T 2 -q -O - http://{gw}:1/ || true"),
        )
        .await?;

        // A second pod, with a cgroup parent of its own (as the kubelet gives): its stats come
        // from that parent.
        let mut other = pod_config("stats-other", &b.dir.join("logs"));
        other.linux.as_mut().unwrap().cgroup_parent = "/berth-e2e-i/given".into();
        let other_id = run_pod(rt, other.clone()).await?;
        start_container(
            rt,
            &other_id,
            &other,
            container_config("other", &image, "exec sleep 1000"),
        )
        .await?;

        let list = rt
            .list_container_stats(ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    pod_sandbox_id: pod_id.clone(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        let mut ids: Vec<_> = list
            .stats
            .iter()
            .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
            .collect();
        ids.sort();
        let mut want = vec![burner.clone(), idle.clone()];
        want.sort();
        ensure(ids == want, || format!("listed {ids:?}, want {want:?}"))?;
        let all = rt
            .list_container_stats(ListContainerStatsRequest::default())
            .await?
            .into_inner();
        ensure(all.stats.len() == 3, || format!("all: {}", all.stats.len()))?;

        let ps = rt
            .pod_sandbox_stats(PodSandboxStatsRequest {
                pod_sandbox_id: pod_id.clone(),
            })
            .await?
            .into_inner()
            .stats
            .ok_or("no pod stats")?;
        let linux = ps.linux.clone().ok_or("no linux pod stats")?;
        let net = linux.network.clone().ok_or("no network")?;
        let eth0 = net
            .default_interface
            .clone()
            .ok_or("no default interface")?;
        ensure(
            eth0.name == "eth0" && (value(&eth0.rx_bytes) > 0 || value(&eth0.tx_bytes) > 0),
            || format!("network {net:?}"),
        )?;
        let procs = linux.process.ok_or("no process usage")?;
        ensure(value(&procs.process_count) >= 3, || {
            format!("process {procs:?}")
        })?;
        let pcpu = linux.cpu.ok_or("no pod cpu")?;
        ensure(value(&pcpu.usage_core_nano_seconds) > 0, || {
            format!("pod cpu {pcpu:?}")
        })?;
        ensure(linux.containers.len() == 2, || {
            format!("pod containers {}", linux.containers.len())
        })?;

        let others = rt
            .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
                filter: Some(PodSandboxStatsFilter {
                    label_selector: HashMap::from([("app".to_string(), "stats-other".to_string())]),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        ensure(others.stats.len() == 1, || format!("{others:?}"))?;
        let ol = others.stats[0].linux.clone().ok_or("no linux")?;
        ensure(
            value(&ol.process.unwrap_or_default().process_count) >= 2
                && value(&ol.memory.unwrap_or_default().usage_bytes) > 0,
            || format!("given-parent pod {ol:?}"),
        )?;

        // Unknown ids name themselves.
        let e = rt
            .container_stats(ContainerStatsRequest {
                container_id: "nope".into(),
            })
            .await
            .unwrap_err();
        ensure(
            e.code() == tonic::Code::NotFound && e.message().contains("nope"),
            || format!("{e:?}"),
        )?;
        let e = rt
            .pod_sandbox_stats(PodSandboxStatsRequest {
                pod_sandbox_id: "nope".into(),
            })
            .await
            .unwrap_err();
        ensure(e.code() == tonic::Code::NotFound, || format!("{e:?}"))?;

        stop_and_remove_pod(rt, &pod_id).await?;
        stop_and_remove_pod(rt, &other_id).await?;
        remove_cgroup_parent("/berth-e2e-i/given");
        let left = leftovers(b, "/berth-e2e-i");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

/// The first value under `key` anywhere in `v`.
fn find_key(v: &serde_json::Value, key: &str) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => m.get(key).cloned().unwrap_or_else(|| {
            m.values()
                .map(|x| find_key(x, key))
                .find(|x| !x.is_null())
                .unwrap_or_default()
        }),
        serde_json::Value::Array(a) => a
            .iter()
            .map(|x| find_key(x, key))
            .find(|x| !x.is_null())
            .unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

fn update_container_resources_applies_limits() -> TestResult {
    with_berthd("/berth-e2e-j", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("resize", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("resized", &image, "exec sleep 1000"),
        )
        .await?;
        let limit: i64 = 96 << 20;
        rt.update_container_resources(UpdateContainerResourcesRequest {
            container_id: c.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: limit,
                cpu_quota: 50_000,
                cpu_period: 100_000,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
        let host = Path::new("/sys/fs/cgroup/memory/berth-e2e-j").join(&c);
        let on_host = std::fs::read_to_string(host.join("memory.limit_in_bytes"))?;
        ensure(on_host.trim() == limit.to_string(), || {
            format!("host memory.limit_in_bytes {on_host:?}")
        })?;
        let quota = std::fs::read_to_string(
            Path::new("/sys/fs/cgroup/cpu/berth-e2e-j")
                .join(&c)
                .join("cpu.cfs_quota_us"),
        )?;
        ensure(quota.trim() == "50000", || {
            format!("cpu.cfs_quota_us {quota:?}")
        })?;
        // The container sees its own cgroup's limit.
        let inside = exec_out(rt, &c, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes").await?;
        ensure(inside == limit.to_string(), || {
            format!("memory.limit_in_bytes inside {inside:?}")
        })?;
        let s = status(rt, &c).await?;
        let r = s
            .resources
            .and_then(|r| r.linux)
            .ok_or("no resources in status")?;
        ensure(
            r.memory_limit_in_bytes == limit && r.cpu_quota == 50_000,
            || format!("status resources {r:?}"),
        )?;
        // The bundle's config.json carries the new limit and keeps its device rules; so does
        // the runtime's own record of the container.
        let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(
            b.state().join("containers").join(&c).join("config.json"),
        )?)?;
        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(
            b.state().join("runtime").join(&c).join("state.json"),
        )?)?;
        for (what, res) in [
            ("bundle", &bundle["linux"]["resources"]),
            ("runtime state", &find_key(&state, "resources")),
        ] {
            ensure(
                res["memory"]["limit"] == limit
                    && res["devices"].as_array().is_some_and(|d| !d.is_empty()),
                || format!("{what} resources {res}"),
            )?;
        }
        let stats = container_stats(rt, &c).await?;
        let mem = stats.memory.ok_or("no memory")?;
        ensure(
            value(&mem.available_bytes) > 0 && value(&mem.available_bytes) <= limit as u64,
            || format!("available {mem:?}"),
        )?;

        // UpdatePodSandboxResources records the pod's new resources (the kubelet has resized
        // the pod cgroup itself).
        rt.update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: pod_id.clone(),
            overhead: None,
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 200 << 20,
                ..Default::default()
            }),
        })
        .await?;
        let info = rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: pod_id.clone(),
                verbose: true,
            })
            .await?
            .into_inner()
            .info;
        let info: serde_json::Value = serde_json::from_str(info.get("info").ok_or("no info")?)?;
        let recorded = &info["config"]["linux"]["resources"]["memory_limit_in_bytes"];
        ensure(*recorded == (200 << 20), || format!("pod info {info}"))?;
        let e = rt
            .update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest {
                pod_sandbox_id: "nope".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        ensure(e.code() == tonic::Code::NotFound, || format!("{e:?}"))?;

        // Unknown and exited containers are refused with their codes.
        let e = rt
            .update_container_resources(UpdateContainerResourcesRequest {
                container_id: "nope".into(),
                linux: Some(LinuxContainerResources::default()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        ensure(
            e.code() == tonic::Code::NotFound && e.message().contains("nope"),
            || format!("{e:?}"),
        )?;
        rt.stop_container(StopContainerRequest {
            container_id: c.clone(),
            timeout: 0,
        })
        .await?;
        let e = rt
            .update_container_resources(UpdateContainerResourcesRequest {
                container_id: c.clone(),
                linux: Some(LinuxContainerResources {
                    memory_limit_in_bytes: limit,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        ensure(
            e.code() == tonic::Code::FailedPrecondition && e.message().contains(&c),
            || format!("{e:?}"),
        )?;
        // An exited container has no cgroup: its stats are its attributes and writable layer,
        // and ListContainerStats leaves it out (as containerd, whose stats come from tasks).
        let gone = container_stats(rt, &c).await?;
        ensure(
            gone.cpu.is_none() && gone.memory.is_none() && gone.writable_layer.is_some(),
            || format!("exited container stats {gone:?}"),
        )?;
        let listed = rt
            .list_container_stats(ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    id: c.clone(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        ensure(listed.stats.is_empty(), || format!("{listed:?}"))?;
        stop_and_remove_pod(rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-j");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

fn main() {
    let mut args = Arguments::from_args();
    // The tests share one bridge network and check its IPAM for leaks: one at a time.
    args.test_threads = Some(1);
    let missing = missing_prerequisite();
    type TestFn = fn() -> TestResult;
    let tests: &[(&str, TestFn)] = &[
        (
            "pod_with_two_containers_shares_network_ipc_and_logs",
            pod_with_two_containers_shares_network_ipc_and_logs,
        ),
        (
            "exit_codes_reasons_and_oom_kill",
            exit_codes_reasons_and_oom_kill,
        ),
        (
            "exec_sync_exit_code_output_and_timeout",
            exec_sync_exit_code_output_and_timeout,
        ),
        (
            "stop_and_remove_are_idempotent_and_bad_requests_fail_with_codes",
            stop_and_remove_are_idempotent_and_bad_requests_fail_with_codes,
        ),
        (
            "host_network_pod_and_port_mapping",
            host_network_pod_and_port_mapping,
        ),
        (
            "container_events_arrive_in_order",
            container_events_arrive_in_order,
        ),
        (
            "restart_recovers_pods_containers_and_exits",
            restart_recovers_pods_containers_and_exits,
        ),
        (
            "upgrade_by_reinstall_and_restart_keeps_pods_controllable",
            upgrade_by_reinstall_and_restart_keeps_pods_controllable,
        ),
        (
            "twenty_pods_in_parallel_all_come_up",
            twenty_pods_in_parallel_all_come_up,
        ),
        (
            "configured_pause_image_is_pulled_and_runs_the_pod",
            configured_pause_image_is_pulled_and_runs_the_pod,
        ),
        (
            "metrics_count_a_pod_lifecycle",
            metrics_count_a_pod_lifecycle,
        ),
        (
            "failed_cni_add_undoes_the_pod",
            failed_cni_add_undoes_the_pod,
        ),
        (
            "pulled_images_run_with_whiteouts_users_and_setuid",
            pulled_images_run_with_whiteouts_users_and_setuid,
        ),
        ("stats_are_non_zero", stats_are_non_zero),
        (
            "update_container_resources_applies_limits",
            update_container_resources_applies_limits,
        ),
        (
            "exec_over_spdy_and_websocket_streams_io_and_exit_status",
            streaming::exec_over_spdy_and_websocket_streams_io_and_exit_status,
        ),
        (
            "attach_sees_output_sends_input_and_leaves_the_container_running",
            streaming::attach_sees_output_sends_input_and_leaves_the_container_running,
        ),
        (
            "port_forward_carries_http_into_the_pod_network",
            streaming::port_forward_carries_http_into_the_pod_network,
        ),
    ];
    let mut trials = berth_test_support::trials(tests, missing.clone(), "CI");
    // An interoperability check with upstream crictl, which berth does not ship: it runs
    // when BERTH_CRICTL names a crictl binary, and says why it was skipped otherwise.
    let crictl = std::env::var_os("BERTH_CRICTL").map(std::path::PathBuf::from);
    let missing_for_crictl = missing.clone();
    trials.push(Trial::ignorable_test(
        "crictl_exec_attach_and_port_forward_interoperate",
        move || match (missing_for_crictl, crictl) {
            (Some(reason), _) => Ok(Completion::ignored_with(reason)),
            (None, None) => Ok(Completion::ignored_with(
                "BERTH_CRICTL is not set to a crictl binary",
            )),
            (None, Some(bin)) => streaming::crictl_exec_attach_and_port_forward_interoperate(bin)
                .map(|()| Completion::Completed),
        },
    ));
    let conclusion = libtest_mimic::run(&args, trials);
    // The shared bridge and registry outlive every test: statics are never dropped.
    if let Some(shared) = SHARED.get() {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &shared.network.bridge])
            .stderr(std::process::Stdio::null())
            .status();
        shared.registry.stop();
    }
    conclusion.exit();
}
