//! A node for root end-to-end tests, shared by berthd's and berthctl's suites: a real CNI
//! bridge network from Debian's containernetworking-plugins, a real docker-registry on
//! loopback serving the test images of hack/images/build, and what finds and removes what
//! a test left behind.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CNI_BIN: &str = "/usr/lib/cni";

/// The first tool of a node test missing here (hack/setup installs them all), or None.
pub fn tools_missing() -> Option<String> {
    [
        "/usr/bin/docker-registry",
        "/usr/bin/skopeo",
        "/bin/busybox",
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/usr/lib/cni/portmap",
        "/usr/lib/cni/loopback",
        "/usr/sbin/iptables",
    ]
    .iter()
    .find(|tool| !Path::new(tool).exists())
    .map(|tool| format!("{tool} missing: run hack/setup"))
}

/// A docker-registry on a free loopback port holding the test images, killed on drop.
pub struct Registry {
    child: std::sync::Mutex<Child>,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts the registry and pushes hack/images/build's images as `test/<tag>:1`.
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        let config = dir.path().join("config.yml");
        fs::write(&config, yaml).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = Registry {
            child: std::sync::Mutex::new(child),
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reg.answers() {
            assert!(
                Instant::now() < deadline,
                "registry {} did not start",
                reg.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let layout = reg._dir.path().join("layout");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/images/build");
        assert!(
            Command::new(script)
                .arg(&layout)
                .status()
                .unwrap()
                .success()
        );
        for tag in ["busybox", "pause", "zstd", "plain", "app"] {
            let st = Command::new("/usr/bin/skopeo")
                .args([
                    "--insecure-policy",
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                ])
                .arg(format!("oci:{}:{tag}", layout.display()))
                .arg(format!("docker://{}/test/{tag}:1", reg.addr))
                .stdin(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "skopeo push {tag}");
        }
        reg
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(&self.addr) else {
            return false;
        };
        let _ = write!(s, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
        let mut out = String::new();
        s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1")
    }

    pub fn busybox(&self) -> String {
        format!("{}/test/busybox:1", self.addr)
    }

    pub fn pause(&self) -> String {
        self.image("pause")
    }

    /// `test/<tag>:1`, one of hack/images/build's tags.
    pub fn image(&self, tag: &str) -> String {
        format!("{}/test/{tag}:1", self.addr)
    }
}

impl Registry {
    /// Stops the registry (a shared one lives in a static, which is never dropped).
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CNI network: a bridge with host-local IPAM in its own data dir, portmap and
/// loopback. The bridge device is deleted on drop.
pub struct Network {
    pub conf_dir: tempfile::TempDir,
    pub ipam_dir: PathBuf,
    pub bridge: String,
    /// Where berthd looks for plugins: Debian's, and for [`Network::failing`] a test one.
    pub bin_dirs: Vec<PathBuf>,
    /// The bridge's (gateway) address: local to the host.
    pub gateway: String,
    pub subnet: String,
}

impl Network {
    pub fn new(bridge: &str, third_octet: u8) -> Network {
        Network::with_last_plugin(bridge, third_octet, serde_json::json!({"type": "loopback"}))
    }

    /// A network whose last plugin, `berth-test-fail`, fails every ADD (and succeeds at
    /// DEL): RunPodSandbox fails after the bridge plugin has allocated an IP.
    pub fn failing(bridge: &str, third_octet: u8) -> Network {
        let mut net = Network::with_last_plugin(
            bridge,
            third_octet,
            serde_json::json!({"type": "berth-test-fail"}),
        );
        let bin = net.conf_dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        let plugin = bin.join("berth-test-fail");
        fs::write(
            &plugin,
            "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then\n  echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"berth-test-fail refuses ADD\"}'\n  exit 1\nfi\nexit 0\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&plugin, fs::Permissions::from_mode(0o755)).unwrap();
        net.bin_dirs.push(bin);
        net
    }

    fn with_last_plugin(bridge: &str, third_octet: u8, last: serde_json::Value) -> Network {
        let conf_dir = tempfile::tempdir().unwrap();
        let ipam_dir = conf_dir.path().join("ipam");
        let subnet = format!("10.88.{third_octet}.0/24");
        let gateway = format!("10.88.{third_octet}.1");
        let conflist = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("berth-{bridge}"),
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": ipam_dir,
                        "ranges": [[{"subnet": subnet, "gateway": gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}]
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
                last
            ]
        });
        fs::write(
            conf_dir.path().join("10-berth.conflist"),
            conflist.to_string(),
        )
        .unwrap();
        Network {
            conf_dir,
            ipam_dir,
            bridge: bridge.to_string(),
            bin_dirs: vec![PathBuf::from(CNI_BIN)],
            gateway,
            subnet,
        }
    }

    /// IP reservations host-local holds (files named like addresses).
    pub fn allocated_ips(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(nets) = fs::read_dir(&self.ipam_dir) {
            for net in nets.flatten() {
                if let Ok(files) = fs::read_dir(net.path()) {
                    for f in files.flatten() {
                        let name = f.file_name().to_string_lossy().into_owned();
                        if name.parse::<std::net::IpAddr>().is_ok() {
                            out.push(name);
                        }
                    }
                }
            }
        }
        out
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

/// The last resort of a test that failed or panicked with pods running: on drop, kills
/// every process of its berthd (by state dir) and of its cgroup parent, unmounts what is
/// mounted below its dir and removes its cgroups. A test that passed leaves nothing for
/// it to do.
pub struct ForceCleanup {
    pub dir: PathBuf,
    pub cgroup_parent: String,
}

impl Drop for ForceCleanup {
    fn drop(&mut self) {
        let kill = |pid: &str| {
            let _ = Command::new("kill")
                .args(["-9", pid])
                .stderr(Stdio::null())
                .status();
        };
        for p in processes_mentioning(&self.dir.to_string_lossy()) {
            if let Some(pid) = p.split(':').next() {
                kill(pid);
            }
        }
        let parent = self.cgroup_parent.trim_start_matches('/');
        let mut cgroups = Vec::new();
        if let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                collect_dirs(&h.path().join(parent), &mut cgroups);
            }
        }
        collect_dirs(&Path::new("/sys/fs/cgroup").join(parent), &mut cgroups);
        for cg in &cgroups {
            for file in ["tasks", "cgroup.procs"] {
                if let Ok(pids) = fs::read_to_string(cg.join(file)) {
                    pids.lines().for_each(kill);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut mounts = mounts_below(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount")
                .args(["-l", &m])
                .stderr(Stdio::null())
                .status();
        }
        cgroups.sort_by_key(|c| std::cmp::Reverse(c.as_os_str().len()));
        for cg in cgroups {
            let _ = fs::remove_dir(cg);
        }
    }
}

/// `dir` and every directory below it.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// Mount points (from /proc/self/mountinfo) below `dir`.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Removes a test's (by then empty) cgroup parent from every hierarchy, v1 and v2.
pub fn remove_cgroup_parent(parent: &str) {
    let rel = parent.trim_start_matches('/');
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let _ = fs::remove_dir(h.path().join(rel));
        }
    }
    let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(rel));
}
