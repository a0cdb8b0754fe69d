//! A node for root end-to-end tests: a real berthd (with berth-shim and berth-oci from the
//! same target dir), a real CNI bridge network from Debian's containernetworking-plugins,
//! and a real docker-registry on loopback serving the test images of hack/images/build.
#![allow(dead_code)]

pub use berth_cri_server::streaming::client as stream_client;
pub use berth_test_support::node::*;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_api::runtime::v1::image_service_client::ImageServiceClient;
use berth_api::runtime::v1::runtime_service_client::RuntimeServiceClient;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

pub const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");

/// Why this machine cannot run the root end-to-end tests, or None.
pub fn missing_prerequisite() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root".into());
    }
    let dir = Path::new(BERTHD).parent().unwrap();
    for bin in ["berth-shim", "berth-oci"] {
        if !dir.join(bin).exists() {
            return Some(format!(
                "needs {bin} beside berthd in {} (cargo build --workspace)",
                dir.display()
            ));
        }
    }
    tools_missing()
}

/// A running berthd with its own root, state dir and socket.
pub struct Berthd {
    child: Option<Child>,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    config: String,
    /// The berthd binary [`Berthd::spawn`] runs: BERTHD unless a test installed another.
    pub binary: PathBuf,
}

impl Berthd {
    /// Starts berthd wired to `net`, with `cgroup_parent` for pods the test gives none.
    /// The state dir path is kept short: shim sockets live below it.
    pub fn start(net: &Network, registry: &Registry, cgroup_parent: &str) -> Berthd {
        Berthd::start_with(net, registry, cgroup_parent, "")
    }

    /// As [`Berthd::start`], with more top-level config keys (TOML lines).
    pub fn start_with(
        net: &Network,
        registry: &Registry,
        cgroup_parent: &str,
        extra: &str,
    ) -> Berthd {
        let tmp = tempfile::Builder::new()
            .prefix("b")
            .tempdir_in("/tmp")
            .unwrap();
        let bin_dirs: Vec<String> = net
            .bin_dirs
            .iter()
            .map(|d| format!("\"{}\"", d.display()))
            .collect();
        let config = format!(
            "{extra}\ncgroup_parent = \"{cgroup_parent}\"\n[cni]\nconf_dir = \"{}\"\nbin_dirs = [{}]\n[registry]\nplain_http = [\"{}\"]\n",
            net.conf_dir.path().display(),
            bin_dirs.join(", "),
            registry.addr
        );
        let mut b = Berthd {
            child: None,
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
            config,
            binary: PathBuf::from(BERTHD),
        };
        b.spawn();
        b
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("s/berth.sock")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("s")
    }

    /// (Re)starts the berthd process and waits until it serves.
    pub fn spawn(&mut self) {
        let config_path = self.dir.join("config.toml");
        fs::write(&config_path, &self.config).unwrap();
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("berthd.log"))
            .unwrap();
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&config_path)
            .arg("--socket")
            .arg(self.socket())
            .arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.state())
            .args([
                "--log-level",
                "berth_cri_server=debug,berth_sandbox=debug,info",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("berthd exited ({st}); log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not listen; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs berthd (shims and containers live on).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs berthd and waits for it to exit, as `systemctl stop` does with the unit's
    /// KillMode=process (shims and containers live on).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(c.id() as i32).unwrap();
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let status = c.wait().unwrap();
            assert!(status.success(), "berthd exited {status} on SIGTERM");
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("berthd.log")).unwrap_or_default()
    }

    pub async fn channel(&self) -> Channel {
        let socket = self.socket();
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

    pub async fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel().await)
    }

    pub async fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel().await)
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
