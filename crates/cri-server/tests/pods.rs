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

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
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
    let resp = b
        .images()
        .await
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: shared().registry.busybox(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
    Ok(resp.into_inner().image_ref)
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
    let s = shared();
    let mut b = Berthd::start(&s.network, &s.registry, cgroup_parent);
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

/// Removes the test's (by then empty) cgroup parent from every hierarchy.
fn remove_cgroup_parent(parent: &str) {
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let _ = std::fs::remove_dir(h.path().join(parent.trim_start_matches('/')));
        }
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(parent.trim_start_matches('/')));
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
        // Each container has its own PID namespace by default.
        let pid1 = exec_out(rt, &client, "cat /proc/1/cmdline | tr '\\0' ' '").await?;
        ensure(pid1.contains("sleep 1000"), || format!("pid 1 is {pid1:?}"))?;

        // The CRI log holds stdout and stderr records.
        let cs = status(rt, &client).await?;
        ensure(cs.state() == ContainerState::ContainerRunning, || {
            format!("{cs:?}")
        })?;
        ensure(cs.started_at > 0 && cs.created_at > 0, || format!("{cs:?}"))?;
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
            ..Default::default()
        });
        let host_id = run_pod(rt, host.clone()).await?;
        let c = start_container(
            rt,
            &host_id,
            &host,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        let inside = exec_out(rt, &c, "busybox readlink /proc/self/ns/net").await?;
        let outside = std::fs::read_link("/proc/self/ns/net")?
            .to_string_lossy()
            .into_owned();
        ensure(inside == outside, || {
            format!("netns {inside} vs host {outside}")
        })?;

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
            "twenty_pods_in_parallel_all_come_up",
            twenty_pods_in_parallel_all_come_up,
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
    let mut trials: Vec<Trial> = tests
        .iter()
        .map(|&(name, f)| {
            let missing = missing.clone();
            Trial::ignorable_test(name, move || match missing {
                None => f().map(|()| Completion::Completed),
                Some(reason) if std::env::var_os("CI").is_some() => {
                    Err(format!("prerequisite missing (CI is set): {reason}").into())
                }
                Some(reason) => Ok(Completion::ignored_with(reason)),
            })
        })
        .collect();
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
    if missing.is_none() {
        // The shared bridge outlives every test; statics are never dropped.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &shared().network.bridge])
            .status();
    }
    conclusion.exit();
}
