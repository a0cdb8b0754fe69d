//! End-to-end tests of the berthd binary: each starts berthd as a child process on a
//! socket in a temp dir and talks CRI to it with the generated tonic clients.
//! No root needed, except that the root-ownership check of the socket runs only as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_api::runtime::v1::runtime_service_client::RuntimeServiceClient;
use berth_api::runtime::v1::{
    CgroupDriver, CheckpointContainerRequest, NetworkConfig, RuntimeConfig, RuntimeConfigRequest,
    StatusRequest, StatusResponse, StreamPodSandboxMetricsRequest, UpdateRuntimeConfigRequest,
    VersionRequest,
};
use hyper_util::rt::TokioIo;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint, Uri};

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

/// A running berthd and the temp dir holding its config, socket and logs.
struct Berthd {
    child: Child,
    dir: TempDir,
}

impl Berthd {
    /// Starts berthd with `config` as its config file and waits until it accepts.
    fn start(config: &str) -> Berthd {
        let dir = tempfile::tempdir().unwrap();
        let berthd = Berthd {
            child: spawn(dir.path(), config),
            dir,
        };
        berthd.wait_ready();
        berthd
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/berth.sock")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "berthd did not listen in time; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    async fn channel(&self) -> Channel {
        let socket = self.socket();
        // The URI is required by tonic but unused: every connection goes to the socket.
        Endpoint::try_from("http://[::1]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .expect("connect to berthd")
    }

    async fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel().await)
    }

    fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "berthd ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, config: &str) -> Child {
    spawn_with_env(dir, config, &[])
}

fn spawn_with_env(dir: &Path, config: &str, env: &[(&str, &Path)]) -> Child {
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    Command::new(BERTHD)
        .arg("--config")
        .arg(&config_path)
        .arg("--socket")
        .arg(dir.join("run/berth.sock"))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--state")
        .arg(dir.join("run"))
        .args(["--log-level", &log_level(config)])
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn berthd")
}

/// Debug logs (to check the call logging) unless the config sets its own level.
fn log_level(config: &str) -> String {
    if config.contains("log_level") {
        // Flags override the file: pass the file's value back.
        let value: toml::Value = toml::from_str(config).unwrap();
        value["log_level"].as_str().unwrap().to_string()
    } else {
        "debug".to_string()
    }
}

/// A CNI config dir holding a bridge conflist, and a bin dir whose plugins are the
/// given empty executables (only their presence is checked).
fn cni_dirs(plugins: &[&str]) -> (TempDir, TempDir) {
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(
        conf.path().join("10-berth.conflist"),
        r#"{
  "cniVersion": "1.0.0",
  "name": "berth-bridge",
  "plugins": [
    {"type": "bridge", "bridge": "berth0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]]}}
  ]
}"#,
    )
    .unwrap();
    let bin = tempfile::tempdir().unwrap();
    for plugin in plugins {
        let path = bin.path().join(plugin);
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (conf, bin)
}

fn cni_config(conf: &Path, bin: &Path) -> String {
    format!(
        "[cni]\nconf_dir = {:?}\nbin_dirs = [{:?}]\n",
        conf.display().to_string(),
        bin.display().to_string()
    )
}

fn network_condition(status: &StatusResponse) -> (bool, String, String) {
    let conditions = &status.status.as_ref().expect("status").conditions;
    let runtime = conditions
        .iter()
        .find(|c| c.r#type == "RuntimeReady")
        .unwrap();
    assert!(runtime.status, "RuntimeReady");
    let net = conditions
        .iter()
        .find(|c| c.r#type == "NetworkReady")
        .unwrap();
    (net.status, net.reason.clone(), net.message.clone())
}

#[tokio::test]
async fn version_names_berth_and_cri_v1() {
    let berthd = Berthd::start("");
    let v = berthd
        .runtime()
        .await
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.version, "0.1.0");
    assert_eq!(v.runtime_name, "berth");
    assert_eq!(v.runtime_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(v.runtime_api_version, "v1");
}

#[tokio::test]
async fn status_is_network_ready_with_bridge_conflist_and_plugins() {
    let (conf, bin) = cni_dirs(&["bridge", "host-local"]);
    let berthd = Berthd::start(&cni_config(conf.path(), bin.path()));
    let mut client = berthd.runtime().await;

    let status = client
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        network_condition(&status),
        (true, String::new(), String::new())
    );
    assert!(status.info.is_empty(), "info only when verbose");

    let verbose = client
        .status(StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let config: serde_json::Value = serde_json::from_str(&verbose.info["config"]).unwrap();
    assert_eq!(config["cni"]["conf_dir"], conf.path().display().to_string());
    assert_eq!(config["cgroup_driver"], "cgroupfs");
    let network: serde_json::Value = serde_json::from_str(&verbose.info["cniNetwork"]).unwrap();
    assert_eq!(network["name"], "berth-bridge");
}

#[tokio::test]
async fn status_is_network_not_ready_when_a_plugin_is_missing() {
    let (conf, bin) = cni_dirs(&["bridge"]);
    let berthd = Berthd::start(&cni_config(conf.path(), bin.path()));
    let status = berthd
        .runtime()
        .await
        .status(StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (ready, reason, message) = network_condition(&status);
    assert!(!ready);
    assert_eq!(reason, "NetworkPluginNotReady");
    assert!(message.contains("host-local"), "{message}");
}

#[tokio::test]
async fn status_is_network_not_ready_without_cni_config() {
    let conf = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let berthd = Berthd::start(&cni_config(conf.path(), bin.path()));
    let status = berthd
        .runtime()
        .await
        .status(StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (ready, reason, message) = network_condition(&status);
    assert!(!ready);
    assert_eq!(reason, "NetworkPluginNotReady");
    assert!(message.contains("no valid cni network config"), "{message}");
    assert!(
        message.contains(&conf.path().display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn runtime_config_reports_the_configured_cgroup_driver() {
    for (config, expected) in [
        ("", CgroupDriver::Cgroupfs),
        ("cgroup_driver = \"cgroupfs\"", CgroupDriver::Cgroupfs),
        ("cgroup_driver = \"systemd\"", CgroupDriver::Systemd),
    ] {
        let berthd = Berthd::start(config);
        let resp = berthd
            .runtime()
            .await
            .runtime_config(RuntimeConfigRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            resp.linux.expect("linux").cgroup_driver(),
            expected,
            "config {config:?}"
        );
    }
}

#[tokio::test]
async fn update_runtime_config_remembers_pod_cidr() {
    let berthd = Berthd::start("");
    let mut client = berthd.runtime().await;
    client
        .update_runtime_config(UpdateRuntimeConfigRequest {
            runtime_config: Some(RuntimeConfig {
                network_config: Some(NetworkConfig {
                    pod_cidr: "10.244.1.0/24".into(),
                }),
            }),
        })
        .await
        .unwrap();
    let status = client
        .status(StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.info["podCIDR"], "10.244.1.0/24");
}

#[tokio::test]
async fn unimplemented_rpcs_say_so_and_name_the_rpc() {
    let berthd = Berthd::start("");
    let channel = berthd.channel().await;

    let err = RuntimeServiceClient::new(channel.clone())
        .checkpoint_container(CheckpointContainerRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert_eq!(
        err.message(),
        "runtime.v1.RuntimeService/CheckpointContainer is not implemented yet"
    );

    let err = RuntimeServiceClient::new(channel)
        .stream_pod_sandbox_metrics(StreamPodSandboxMetricsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(
        err.message().contains("StreamPodSandboxMetrics"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn requests_up_to_16_mib_are_accepted_and_larger_refused() {
    let berthd = Berthd::start("log_level = \"info\"");
    let mut client = berthd.runtime().await;
    let ok = client
        .version(VersionRequest {
            version: "x".repeat(15 << 20),
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let err = client
        .version(VersionRequest {
            version: "x".repeat(17 << 20),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
}

#[tokio::test]
async fn calls_are_logged_in_a_span_named_for_the_method() {
    let berthd = Berthd::start("");
    berthd
        .runtime()
        .await
        .version(VersionRequest::default())
        .await
        .unwrap();
    let stderr = berthd.stderr();
    assert!(
        stderr.contains("runtime.v1.RuntimeService/Version") && stderr.contains("response"),
        "{stderr}"
    );
}

#[test]
fn flags_override_the_config_file() {
    let elsewhere = tempfile::tempdir().unwrap();
    let file_socket = elsewhere.path().join("from-file.sock");
    // Berthd::start passes --socket; the file's socket must lose.
    let berthd = Berthd::start(&format!(
        "socket = {:?}\n",
        file_socket.display().to_string()
    ));
    assert!(berthd.socket().exists());
    assert!(!file_socket.exists());
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_line() {
    let berthd = Berthd::start("log_format = \"json\"\nlog_level = \"debug\"\n");
    berthd
        .runtime()
        .await
        .version(VersionRequest::default())
        .await
        .unwrap();
    let stderr = berthd.stderr();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "response"
            && l["span"]["method"] == "runtime.v1.RuntimeService/Version"),
        "{stderr}"
    );
}

#[test]
fn unknown_config_key_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(
        dir.path(),
        "socket = \"/tmp/x.sock\"\ncgroup_drivr = \"systemd\"\n",
    );
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("cgroup_drivr"), "{stderr}");
}

#[test]
fn unknown_key_in_cni_table_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path(), "[cni]\nbin_dir = [\"/x\"]\n");
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("bin_dir"), "{stderr}");
}

#[test]
fn missing_explicit_config_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let out = Command::new(BERTHD)
        .arg("--config")
        .arg(&missing)
        .arg("--socket")
        .arg(dir.path().join("berth.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("absent.toml"), "{stderr}");
    assert!(!dir.path().join("berth.sock").exists());
}

#[test]
fn socket_is_mode_0660() {
    let berthd = Berthd::start("");
    let meta = std::fs::metadata(berthd.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660);
    if is_root() {
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "socket root-owned");
    } else {
        eprintln!("skipped: socket ownership check needs root");
    }
}

#[test]
fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    // A socket file nobody listens on, as left by a crashed berthd.
    drop(std::os::unix::net::UnixListener::bind(dir.path().join("run/berth.sock")).unwrap());
    let berthd = Berthd {
        child: spawn(dir.path(), ""),
        dir,
    };
    berthd.wait_ready();
}

/// berth.service is Type=notify: berthd sends READY=1 (and its pid) to $NOTIFY_SOCKET,
/// and only once its socket accepts.
#[test]
fn readiness_is_notified_to_systemd_once_serving() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&notify).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = spawn_with_env(dir.path(), "", &[("NOTIFY_SOCKET", notify.as_path())]);
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).expect("READY=1 within 20 s");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    let serving = std::os::unix::net::UnixStream::connect(dir.path().join("run/berth.sock"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        msg.contains("READY=1\n") && msg.contains(&format!("MAINPID={}", child.id())),
        "{msg:?}"
    );
    assert!(serving.is_ok(), "READY=1 came before the socket accepted");
}

#[test]
fn sigterm_removes_the_socket_and_exits_zero() {
    let berthd = Berthd::start("");
    let socket = berthd.socket();
    let dir = berthd.dir.path().to_path_buf();
    assert!(socket.exists());
    let status = berthd.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(!socket.exists(), "socket left behind");
    // The state dir itself is not torn down.
    assert!(dir.join("run").exists() || !dir.exists());
}

#[tokio::test]
async fn sigterm_does_not_wait_for_idle_client_connections() {
    // The kubelet keeps its connection open; shutdown must not wait out the grace period.
    let berthd = Berthd::start("");
    let mut client = berthd.runtime().await;
    client.version(VersionRequest::default()).await.unwrap();
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || berthd.terminate())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The connection is gone: a new call fails instead of hanging.
    assert!(client.version(VersionRequest::default()).await.is_err());
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
