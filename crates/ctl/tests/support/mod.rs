//! A node for berthctl's root end-to-end tests: the real berthd (with berth-shim and
//! berth-oci, all beside berthctl in the target dir), a CNI bridge network from Debian's
//! containernetworking-plugins, and a loopback docker-registry serving the images of
//! hack/images/build. The same approach as crates/cri-server/tests/support, without the
//! gRPC client: these tests drive berthctl as a process.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use berth_test_support::node::*;

pub const BERTHCTL: &str = env!("CARGO_BIN_EXE_berthctl");

/// A binary built beside berthctl (berthd, berth-shim, berth-oci).
pub fn sibling(name: &str) -> PathBuf {
    PathBuf::from(BERTHCTL).with_file_name(name)
}

/// Why this machine cannot run the root end-to-end tests, or None.
pub fn missing_prerequisite() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root".into());
    }
    for bin in ["berthd", "berth-shim", "berth-oci"] {
        if !sibling(bin).exists() {
            return Some(format!(
                "needs {bin} beside berthctl in {} (cargo build --workspace)",
                sibling(bin).parent().unwrap().display()
            ));
        }
    }
    tools_missing()
}

/// A running berthd with its own root, state dir and socket, killed on drop.
pub struct Berthd {
    child: Child,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Berthd {
    pub fn start(net: &Network, registry: &Registry, cgroup_parent: &str) -> Berthd {
        // Short path: shim sockets live below the state dir.
        let tmp = tempfile::Builder::new()
            .prefix("c")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let config = format!(
            "cgroup_parent = \"{cgroup_parent}\"\n[cni]\nconf_dir = \"{}\"\nbin_dirs = [\"{CNI_BIN}\"]\n[registry]\nplain_http = [\"{}\"]\n",
            net.conf_dir.path().display(),
            registry.addr
        );
        let config_path = dir.join("config.toml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.join("berthd.log")).unwrap();
        let mut child = Command::new(sibling("berthd"))
            .arg("--config")
            .arg(&config_path)
            .arg("--socket")
            .arg(dir.join("s/berth.sock"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--state")
            .arg(dir.join("s"))
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(dir.join("s/berth.sock")).is_err() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "berthd exited ({st}); log:\n{}",
                    fs::read_to_string(dir.join("berthd.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "berthd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Berthd {
            child,
            dir,
            _tmp: tmp,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.dir.join("s/berth.sock").display())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("berthd.log")).unwrap_or_default()
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// berthctl's result: exit code, stdout, stderr.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs berthctl with `args` and `env`, killed after `limit`; no config file is read
/// unless the args name one.
pub fn berthctl(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Ran {
    let mut cmd = Command::new(BERTHCTL);
    cmd.env_remove("CONTAINER_RUNTIME_ENDPOINT")
        .env_remove("IMAGE_SERVICE_ENDPOINT")
        .envs(env.iter().copied());
    if !args.contains(&"--config") {
        cmd.args(["--config", "/nonexistent/crictl.yaml"]);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berthctl");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Debian's containerd (1.6, CRI plugin) with its own root, state and socket, the same CNI
/// network directory and registry as berthd, killed on drop. Nothing is installed: the
/// test uses /usr/bin/containerd when it is there.
pub struct Containerd {
    child: Child,
    pub dir: PathBuf,
    /// The OCI runtime its shims call, to force-delete what is left at the end.
    oci: PathBuf,
    _tmp: tempfile::TempDir,
}

pub const CONTAINERD: &str = "/usr/bin/containerd";

impl Containerd {
    /// `oci_runtime`: the runc-compatible binary its runc shim calls (None: runc).
    pub fn start(net: &Network, registry: &Registry, oci_runtime: Option<&Path>) -> Containerd {
        let oci = oci_runtime
            .unwrap_or(Path::new("/usr/sbin/runc"))
            .to_path_buf();
        let tmp = tempfile::Builder::new()
            .prefix("k")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path().to_path_buf();
        let hosts = dir.join("certs.d").join(&registry.addr);
        fs::create_dir_all(&hosts).unwrap();
        fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"http://{0}\"\n[host.\"http://{0}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                registry.addr
            ),
        )
        .unwrap();
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [{cri}]\n  sandbox_image = \"{reg}/test/pause:1\"\n  netns_mounts_under_state_dir = true\n\
             [{cri}.cni]\n  bin_dir = \"{CNI_BIN}\"\n  conf_dir = \"{conf}\"\n\
             [{cri}.registry]\n  config_path = \"{d}/certs.d\"\n{runtime}",
            runtime = match oci_runtime {
                Some(bin) => format!(
                    "[{cri}.containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
                     [{cri}.containerd.runtimes.runc.options]\n  BinaryName = \"{}\"\n  Root = \"{}/runc\"\n",
                    bin.display(),
                    dir.display()
                ),
                None => format!(
                    "[{cri}.containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
                     [{cri}.containerd.runtimes.runc.options]\n  Root = \"{}/runc\"\n",
                    dir.display()
                ),
            },
            d = dir.display(),
            reg = registry.addr,
            conf = net.conf_dir.path().display(),
        );
        let config_path = dir.join("config.toml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let mut child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(dir.join("containerd.sock")).is_err() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "containerd exited ({st}); log:\n{}",
                    fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "containerd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Containerd {
            child,
            dir,
            oci,
            _tmp: tmp,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.dir.join("containerd.sock").display())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Containers outlive containerd: delete them through the OCI runtime's state dir...
        let root = self.dir.join("runc/k8s.io");
        for e in fs::read_dir(&root).into_iter().flatten().flatten() {
            let _ = Command::new(&self.oci)
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(e.file_name())
                .stderr(Stdio::null())
                .status();
        }
        // ...and end the shims this containerd started (found by its socket address).
        let address = format!("-address {}", self.dir.join("containerd.sock").display());
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .contains(&address)
            {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        // Its overlay snapshots and shm mounts stay mounted after a SIGKILL.
        let prefix = self.dir.to_string_lossy().into_owned();
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
    }
}

/// berthctl running in the background (events, logs -f), its stdout collected; killed
/// on drop.
pub struct Background {
    child: Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Background {
    pub fn spawn(args: &[&str]) -> Background {
        let mut child = Command::new(BERTHCTL)
            .args(["--config", "/nonexistent/crictl.yaml"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn berthctl");
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Background { child, out }
    }

    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Whether it exited by itself within `limit`.
    pub fn exits_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                // Let the reader thread drain the pipe.
                std::thread::sleep(Duration::from_millis(100));
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
