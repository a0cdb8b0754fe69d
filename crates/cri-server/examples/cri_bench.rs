//! cri_bench: times the pod and container lifecycle RPCs of any CRI runtime on a unix socket
//! (berthd, containerd's CRI plugin, ...); hack/bench/pods drives it against two side by side.
//!
//!   cri_bench --socket PATH --image REF [--iterations N] [--label NAME] [--pull]
//!   cri_bench --socket PATH --image REF --up N      # leave N pods running (one container each)
//!   cri_bench --socket PATH --down                  # stop and remove every pod cri_bench made
//!   cri_bench --socket PATH --image REF --exec N    # exec latency in one running container
//!
//! Each iteration is one pod's life as a kubelet drives it: RunPodSandbox (CNI network, PID
//! namespace per container), PodSandboxStatus, then one container in it: CreateContainer
//! (`sh -c 'sleep 3600'`), StartContainer, ContainerStatus, StopContainer, RemoveContainer;
//! then StopPodSandbox, RemovePodSandbox. Every RPC is timed alone (the awaited call, no
//! work of the client's in between). One JSON line per iteration goes to stdout (milliseconds
//! per step); medians and lifecycle sums go to stderr. `--pull` pulls the image first, untimed;
//! the image must be present otherwise.
//!
//! `--exec N` (hack/bench/exec) starts one pod with one container, untimed, then times N
//! ExecSync calls of `/bin/busybox true` and N SPDY exec round trips of the same command: the
//! Exec RPC, connecting to the URL it returns, the SPDY/3.1 upgrade with `v4.channel.k8s.io`,
//! opening the error and stdout streams, and reading until the exit status has arrived on the
//! error stream. The two kinds alternate, after `--warmup` untimed calls of each. One JSON line
//! per call goes to stdout (`{"label":..,"measure":"exec_sync"|"spdy_exec","ms":..}`); the pod
//! is removed at the end.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use berth_api::runtime::v1::image_service_client::ImageServiceClient;
use berth_api::runtime::v1::runtime_service_client::RuntimeServiceClient;
use berth_api::runtime::v1::*;
use berth_cri_server::streaming::client as stream_client;
use clap::Parser;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// Label on every pod cri_bench makes; `--down` removes the pods that carry it.
const BENCH_LABEL: &str = "berth.bench";

/// The timed steps, in the order they run.
const STEPS: [&str; 9] = [
    "run_pod",
    "pod_status",
    "create_container",
    "start_container",
    "container_status",
    "stop_container",
    "remove_container",
    "stop_pod",
    "remove_pod",
];
const POD_STEPS: [&str; 4] = ["run_pod", "pod_status", "stop_pod", "remove_pod"];
const CONTAINER_STEPS: [&str; 5] = [
    "create_container",
    "start_container",
    "container_status",
    "stop_container",
    "remove_container",
];

#[derive(Parser)]
#[command(about = "times CRI pod and container lifecycles against one runtime socket")]
struct Args {
    /// The runtime's CRI socket.
    #[arg(long)]
    socket: PathBuf,
    /// Image the containers run (must hold /bin/sh with a sleep applet or binary).
    #[arg(long, default_value = "")]
    image: String,
    /// Pod lifecycles to time.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Name for this runtime in the output.
    #[arg(long, default_value = "runtime")]
    label: String,
    /// Pull the image (untimed) before anything else.
    #[arg(long)]
    pull: bool,
    /// StopContainer timeout in seconds (0: SIGKILL at once, as sleep as PID 1 ignores SIGTERM).
    #[arg(long, default_value_t = 0)]
    stop_timeout: i64,
    /// Directory for the pods' log directories (the kubelet's /var/log/pods).
    #[arg(long, default_value = "/tmp/berth-bench-logs")]
    log_dir: PathBuf,
    /// Start this many pods, each with a running container, and leave them running.
    #[arg(long)]
    up: Option<usize>,
    /// Stop and remove every pod cri_bench started on this runtime, then exit.
    #[arg(long)]
    down: bool,
    /// Time this many ExecSync calls and as many SPDY exec round trips in one container.
    #[arg(long)]
    exec: Option<usize>,
    /// Untimed exec calls of each kind before the timed ones (with --exec).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
}

type Rt = RuntimeServiceClient<Channel>;

async fn channel(socket: PathBuf) -> Result<Channel> {
    // Any authority will do: the connector ignores the URI, and neither tonic nor
    // grpc-go servers check it.
    Endpoint::try_from("http://localhost")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .context("connect to the runtime socket")
}

/// What a kubelet sends for a plain pod: its own network (CNI), IPC and UTS shared by the
/// pod, a PID namespace per container, a log directory it made beforehand.
fn pod_config(args: &Args, name: &str) -> Result<PodSandboxConfig> {
    let uid = format!("{name}-uid");
    let log_directory = args.log_dir.join(name);
    std::fs::create_dir_all(log_directory.join("sleeper"))
        .with_context(|| format!("create {}", log_directory.display()))?;
    Ok(PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.clone(),
            namespace: "berth-bench".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_directory.to_string_lossy().into_owned(),
        labels: HashMap::from([(BENCH_LABEL.to_string(), args.label.clone())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/berth-bench/pod{uid}"),
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
    })
}

fn container_config(image: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "sleeper".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".into(), "-c".into(), "sleep 3600".into()],
        log_path: "sleeper/0.log".into(),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources::default()),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                // What the kubelet sends when neither the pod nor --seccomp-default asks.
                seccomp: Some(SecurityProfile {
                    profile_type: security_profile::ProfileType::Unconfined as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Awaits `call`, adds its wall time in milliseconds under `step`.
macro_rules! timed {
    ($times:expr, $step:expr, $call:expr) => {{
        let t0 = Instant::now();
        let out = $call.await;
        $times.insert($step, t0.elapsed().as_secs_f64() * 1e3);
        out.with_context(|| $step)?.into_inner()
    }};
}

/// Starts a pod with one running container; returns (pod id, container id).
async fn up_one(
    rt: &mut Rt,
    args: &Args,
    name: &str,
    times: &mut HashMap<&'static str, f64>,
) -> Result<(String, String)> {
    let config = pod_config(args, name)?;
    let pod_id = timed!(
        times,
        "run_pod",
        rt.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
    )
    .pod_sandbox_id;
    let status = timed!(
        times,
        "pod_status",
        rt.pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.clone(),
            verbose: false,
        })
    );
    if status.status.map(|s| s.state) != Some(PodSandboxState::SandboxReady as i32) {
        bail!("pod {pod_id} not ready after RunPodSandbox");
    }
    let container_id = timed!(
        times,
        "create_container",
        rt.create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container_config(&args.image)),
            sandbox_config: Some(config),
        })
    )
    .container_id;
    timed!(
        times,
        "start_container",
        rt.start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
    );
    let status = timed!(
        times,
        "container_status",
        rt.container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: false,
        })
    );
    if status.status.map(|s| s.state) != Some(ContainerState::ContainerRunning as i32) {
        bail!("container {container_id} not running after StartContainer");
    }
    Ok((pod_id, container_id))
}

/// One timed pod lifecycle with one container.
async fn lifecycle(rt: &mut Rt, args: &Args, name: &str) -> Result<HashMap<&'static str, f64>> {
    let mut times = HashMap::new();
    let (pod_id, container_id) = up_one(rt, args, name, &mut times).await?;
    timed!(
        times,
        "stop_container",
        rt.stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: args.stop_timeout,
        })
    );
    timed!(
        times,
        "remove_container",
        rt.remove_container(RemoveContainerRequest { container_id })
    );
    timed!(
        times,
        "stop_pod",
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
    );
    timed!(
        times,
        "remove_pod",
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
    );
    let _ = std::fs::remove_dir_all(args.log_dir.join(name));
    Ok(times)
}

/// Stops and removes every pod with the bench label (and their containers).
async fn down(rt: &mut Rt) -> Result<usize> {
    let pods = rt
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items;
    let mut n = 0;
    for pod in pods.iter().filter(|p| p.labels.contains_key(BENCH_LABEL)) {
        let containers = rt
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod.id.clone(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner()
            .containers;
        for c in containers {
            rt.stop_container(StopContainerRequest {
                container_id: c.id.clone(),
                timeout: 0,
            })
            .await?;
            rt.remove_container(RemoveContainerRequest { container_id: c.id })
                .await?;
        }
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await?;
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await?;
        n += 1;
    }
    Ok(n)
}

/// What every exec runs: a process that exits at once with status 0.
const EXEC_CMD: [&str; 2] = ["/bin/busybox", "true"];
const EXEC_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// One ExecSync of EXEC_CMD; fails unless it exits 0.
async fn exec_sync(rt: &mut Rt, container_id: &str) -> Result<()> {
    let resp = rt
        .exec_sync(ExecSyncRequest {
            container_id: container_id.into(),
            cmd: EXEC_CMD.iter().map(|s| s.to_string()).collect(),
            timeout: 0,
        })
        .await
        .context("ExecSync")?
        .into_inner();
    if resp.exit_code != 0 {
        bail!(
            "ExecSync exited {}: {}",
            resp.exit_code,
            String::from_utf8_lossy(&resp.stderr)
        );
    }
    Ok(())
}

/// One exec as the kubelet proxies `kubectl exec` (without stdin): the Exec RPC, then the
/// streaming URL over SPDY/3.1 with v4.channel.k8s.io, until the exit status has arrived.
async fn spdy_exec(rt: &mut Rt, container_id: &str) -> Result<()> {
    let url = rt
        .exec(ExecRequest {
            container_id: container_id.into(),
            cmd: EXEC_CMD.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: false,
            stdout: true,
            stderr: false,
        })
        .await
        .context("Exec")?
        .into_inner()
        .url;
    let up = stream_client::upgrade(
        &url,
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "SPDY/3.1"),
            ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ],
    )
    .await
    .with_context(|| format!("connect {url}"))?;
    if up.status != 101 {
        bail!("upgrade {url}: {} {}", up.status, up.body);
    }
    let mut s = stream_client::SpdyClient::new(up.stream);
    let error = s.open(&[("streamType", "error")]).await?;
    s.open(&[("streamType", "stdout")]).await?;
    // The status is the error stream's only message: berthd closes the stream after it,
    // containerd's server writes it and then resets the streams and closes the connection.
    s.read_until(EXEC_WAIT, |s| {
        s.fin.contains(&error) || s.reset.contains(&error) || s.eof
    })
    .await
    .map_err(|e| anyhow::anyhow!("exec {url}: {e}"))?;
    let status = s.text(error);
    if !status.contains("\"Success\"") {
        bail!("exec {url}: status {status:?}");
    }
    Ok(())
}

/// `--exec N`: one container, then alternating timed ExecSync and SPDY exec calls.
async fn exec_bench(rt: &mut Rt, args: &Args, tag: &str, n: usize) -> Result<()> {
    let name = format!("exec-{tag}");
    let (pod_id, container_id) = up_one(rt, args, &name, &mut HashMap::new()).await?;
    let result = async {
        for _ in 0..args.warmup {
            exec_sync(rt, &container_id).await?;
            spdy_exec(rt, &container_id).await?;
        }
        for _ in 0..n {
            let t0 = Instant::now();
            exec_sync(rt, &container_id).await?;
            let sync_ms = t0.elapsed().as_secs_f64() * 1e3;
            let t0 = Instant::now();
            spdy_exec(rt, &container_id).await?;
            let spdy_ms = t0.elapsed().as_secs_f64() * 1e3;
            for (measure, ms) in [("exec_sync", sync_ms), ("spdy_exec", spdy_ms)] {
                println!(
                    "{}",
                    serde_json::json!({"label": args.label, "measure": measure, "ms": ms})
                );
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let _ = rt
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 0,
        })
        .await;
    let _ = rt
        .remove_container(RemoveContainerRequest { container_id })
        .await;
    let _ = rt
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await;
    let _ = rt
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id,
        })
        .await;
    let _ = std::fs::remove_dir_all(args.log_dir.join(&name));
    result
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn sum_of(times: &HashMap<&'static str, f64>, steps: &[&str]) -> f64 {
    steps.iter().map(|s| times[s]).sum()
}

async fn run(args: Args) -> Result<()> {
    let channel = channel(args.socket.clone()).await?;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    if args.down {
        let n = down(&mut rt).await?;
        eprintln!("{}: removed {n} pods", args.label);
        return Ok(());
    }
    if args.image.is_empty() {
        bail!("--image is required");
    }
    if args.pull {
        ImageServiceClient::new(channel)
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: args.image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .context("PullImage")?;
    }
    let tag = format!("{}-{}", args.label, std::process::id());
    if let Some(n) = args.exec {
        return exec_bench(&mut rt, &args, &tag, n).await;
    }
    if let Some(count) = args.up {
        for i in 0..count {
            let mut times = HashMap::new();
            up_one(&mut rt, &args, &format!("hold-{tag}-{i}"), &mut times).await?;
        }
        return Ok(());
    }
    let mut all: Vec<HashMap<&'static str, f64>> = Vec::new();
    for i in 0..args.iterations {
        let times = lifecycle(&mut rt, &args, &format!("pod-{tag}-{i}")).await?;
        let mut line = serde_json::Map::new();
        line.insert("label".into(), args.label.clone().into());
        for step in STEPS {
            line.insert(step.into(), times[step].into());
        }
        println!("{}", serde_json::Value::Object(line));
        all.push(times);
    }
    if all.is_empty() {
        return Ok(());
    }
    eprintln!(
        "{}: medians of {} lifecycles (ms)",
        args.label, args.iterations
    );
    for step in STEPS {
        eprintln!(
            "  {step:18} {:8.2}",
            median(all.iter().map(|t| t[step]).collect())
        );
    }
    eprintln!(
        "  {:18} {:8.2}",
        "pod lifecycle",
        median(all.iter().map(|t| sum_of(t, &POD_STEPS)).collect())
    );
    eprintln!(
        "  {:18} {:8.2}",
        "container lifecycle",
        median(all.iter().map(|t| sum_of(t, &CONTAINER_STEPS)).collect())
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}
