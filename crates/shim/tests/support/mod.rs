//! Pieces of the shim's root tests: busybox bundles (after crates/executor/tests/support),
//! and a container run through berth-shim + berth-oci.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_shim::client::{Client, ShimOptions, Started};
use serde_json::{Value, json};

pub const BUSYBOX: &str = "/bin/busybox";

pub fn shim_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth-shim"))
}

/// berth-oci from the same target directory (`cargo build -p berth-executor`), or
/// $BERTH_SHIM_TEST_RUNTIME (e.g. runc).
pub fn runtime() -> PathBuf {
    std::env::var_os("BERTH_SHIM_TEST_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| shim_binary().with_file_name("berth-oci"))
}

/// Why this machine cannot run the root tests, or None.
pub fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    if !Path::new(BUSYBOX).exists() {
        return Some(format!("needs {BUSYBOX} (Debian package busybox-static)"));
    }
    if !runtime().exists() {
        return Some(format!(
            "needs the runtime at {} (cargo build -p berth-executor)",
            runtime().display()
        ));
    }
    None
}

pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-bundle-")
            .tempdir()
            .expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        let config = json!({
            "ociVersion": "1.2.0",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "berth-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": ["/proc/kcore", "/proc/keys"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        Bundle { dir, config }
    }

    pub fn write(&self) -> &Path {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
        self.dir.path()
    }
}

/// A container supervised by a berth-shim: bundle, runtime root, shim state dir, log.
pub struct Ctr {
    pub id: String,
    pub bundle: Bundle,
    pub dir: tempfile::TempDir,
    pub started: Started,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn unique_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

impl Ctr {
    pub fn options(id: &str, bundle: &Bundle, dir: &Path, stdin: bool) -> ShimOptions {
        ShimOptions {
            binary: shim_binary(),
            id: id.to_owned(),
            bundle: bundle.write().to_owned(),
            state_dir: dir.join("state"),
            log_path: Some(dir.join("log/0.log")),
            runtime: Some(runtime()),
            runtime_root: Some(dir.join("root")),
            stdin,
            extra_args: Vec::new(),
        }
    }

    /// Creates (not starts) the container through a new shim.
    pub fn create(bundle: Bundle, stdin: bool) -> Result<Ctr, String> {
        Ctr::create_with(bundle, stdin, |_| {})
    }

    /// Creates the container with the shim's options adjusted by `tweak`.
    pub fn create_with(
        bundle: Bundle,
        stdin: bool,
        tweak: impl FnOnce(&mut ShimOptions),
    ) -> Result<Ctr, String> {
        let id = unique_id("shim");
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut o = Ctr::options(&id, &bundle, dir.path(), stdin);
        tweak(&mut o);
        let started = berth_shim::client::start_shim(&o).map_err(|e| format!("start shim: {e}"))?;
        Ok(Ctr {
            id,
            bundle,
            dir,
            started,
        })
    }

    /// Creates and starts `sh -c script`, with the bundle adjusted by `tweak`.
    pub fn run_sh(
        script: &str,
        stdin: bool,
        tweak: impl FnOnce(&mut Bundle),
    ) -> Result<Ctr, String> {
        let mut b = Bundle::new(&["sh", "-c", script]);
        tweak(&mut b);
        let c = Ctr::create(b, stdin)?;
        c.client()?.start().map_err(|e| format!("start: {e}"))?;
        Ok(c)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log/0.log")
    }

    pub fn client(&self) -> Result<Client, String> {
        Client::connect(&self.state_dir()).map_err(|e| e.to_string())
    }

    /// The log with each record's timestamp checked and removed.
    pub fn log_records(&self) -> Result<Vec<String>, String> {
        log_records(&self.log_path())
    }
}

pub fn log_records(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let mut out = Vec::new();
    for rec in text.split_inclusive('\n') {
        let (ts, rest) = rec
            .split_once(' ')
            .ok_or_else(|| format!("record without timestamp: {rec:?}"))?;
        humantime::parse_rfc3339(ts).map_err(|e| format!("timestamp {ts:?}: {e}"))?;
        if ts.len() != 30 || !ts.ends_with('Z') {
            return Err(format!("timestamp not RFC3339 nanos UTC: {ts:?}"));
        }
        out.push(rest.to_owned());
    }
    Ok(out)
}

impl Drop for Ctr {
    fn drop(&mut self) {
        if let Ok(mut c) = self.client() {
            let _ = c.kill(9, true);
            let _ = c.wait(None);
        }
        if let Ok(mut c) = self.client() {
            let _ = c.delete(true);
        }
        // The shim may be gone (a test shut it down): delete through the runtime.
        let _ = Command::new(runtime())
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .args(["delete", "--force", &self.id])
            .output();
        let shim = self.started.shim_pid;
        wait_until(|| !alive(shim));
        if alive(shim) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(shim),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Running or sleeping, not gone and not a zombie.
pub fn alive(pid: i32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z' && s != 'X')
}

pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

pub fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Children of `parent`.
pub fn children(parent: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if ppid(pid) == Some(parent) {
            v.push(pid);
        }
    }
    v
}

/// Children of `parent` that are zombies.
pub fn zombie_children(parent: i32) -> Vec<i32> {
    children(parent)
        .into_iter()
        .filter(|&p| proc_state(p) == Some('Z'))
        .collect()
}

/// Polls `f` for up to 10 seconds.
pub fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}
