//! Root tests: pinned network namespaces wired by Debian's CNI plugins (bridge, host-local,
//! portmap, loopback in /usr/lib/cni) through berth_sandbox::cni.
//!
//! Each test has a bridge and a subnet of its own (berthtest<N>, 10.88.<77+N>.0/24), temp
//! conf, cache, IPAM and pin dirs, and removes whatever it made, failed or not.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_sandbox::cni::{self, Attachment, Cni, PortMapping};
use berth_sandbox::netns::{self, NetNs};
use libtest_mimic::Arguments;
use serde_json::json;

type TestResult = Result<(), String>;

const PLUGIN_DIR: &str = "/usr/lib/cni";

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn ensure(ok: bool, why: impl FnOnce() -> String) -> TestResult {
    if ok { Ok(()) } else { Err(why()) }
}

fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root".into());
    }
    for plugin in ["bridge", "host-local", "portmap", "loopback"] {
        if !Path::new(PLUGIN_DIR).join(plugin).exists() {
            return Some(format!(
                "{PLUGIN_DIR}/{plugin} missing (apt-get install containernetworking-plugins)"
            ));
        }
    }
    for tool in ["ip", "iptables-save"] {
        let found = Command::new(tool)
            .arg(if tool == "ip" { "-V" } else { "--version" })
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "{tool} missing (apt-get install iproute2 iptables)"
            ));
        }
    }
    None
}

/// One test's network: a conflist of bridge (+host-local), portmap and loopback.
struct Net {
    name: String,
    bridge: String,
    prefix: String,
    dir: tempfile::TempDir,
}

impl Net {
    fn new(n: u8) -> Result<Net, String> {
        let net = Net {
            name: format!("berthtest-net{n}"),
            bridge: format!("berthtest{n}"),
            prefix: format!("10.88.{}", 77 + n),
            dir: tempfile::tempdir().map_err(e2s)?,
        };
        for sub in ["conf", "cache", "ipam", "netns", "bin"] {
            std::fs::create_dir(net.dir.path().join(sub)).map_err(e2s)?;
        }
        // A previous run killed midway may have left the bridge.
        del_link(&net.bridge);
        Ok(net)
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }
    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }
    fn netns_dir(&self) -> PathBuf {
        self.dir.path().join("netns")
    }
    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn conflist(&self, extra: &[serde_json::Value]) -> serde_json::Value {
        let mut plugins = vec![
            json!({
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": self.ipam_dir(),
                    "ranges": [[{"subnet": format!("{}.0/24", self.prefix)}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            }),
            json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
            json!({"type": "loopback"}),
        ];
        plugins.extend(extra.iter().cloned());
        json!({"cniVersion": "1.0.0", "name": self.name, "plugins": plugins})
    }

    fn write_conf(&self, file: &str, conf: &serde_json::Value) -> TestResult {
        std::fs::write(self.conf_dir().join(file), conf.to_string()).map_err(e2s)
    }

    fn cni(&self) -> Cni {
        Cni::new(
            self.conf_dir(),
            vec![PathBuf::from(PLUGIN_DIR), self.bin_dir()],
            self.cache_dir(),
        )
        .with_timeout(Duration::from_secs(30))
    }

    /// The addresses host-local holds for this network.
    fn allocated(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.ipam_dir().join(&self.name)) else {
            return Vec::new();
        };
        let mut ips: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<IpAddr>().is_ok())
            .collect();
        ips.sort();
        ips
    }

    fn pod(&self, id: &str) -> Result<(NetNs, Attachment), String> {
        let ns = NetNs::create(&self.netns_dir(), id).map_err(e2s)?;
        let att = Attachment::new(id, ns.path()).with_pod("berth-test", id, &format!("uid-{id}"));
        Ok((ns, att))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.netns_dir()) {
            for e in entries.flatten() {
                let _ = netns::remove(&e.path());
            }
        }
        del_link(&self.bridge);
    }
}

fn del_link(name: &str) {
    let _ = Command::new("ip")
        .args(["link", "del", name])
        .stderr(std::process::Stdio::null())
        .status();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `body`, then DELs every attachment it registered, whatever the outcome.
fn with_cleanup(body: impl AsyncFnOnce(&mut Vec<(Cni, Attachment)>) -> TestResult) -> TestResult {
    let rt = runtime();
    rt.block_on(async {
        let mut added = Vec::new();
        let result = body(&mut added).await;
        for (cni, att) in added.iter().rev() {
            if let Err(e) = cni.del(att).await {
                eprintln!("cleanup del of {}: {e}", att.container_id);
            }
        }
        result
    })
}

fn mounted(path: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = path.display().to_string();
    mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Runs `f` on a fresh thread inside the network namespace at `ns`.
fn in_netns<T: Send + 'static>(
    ns: &Path,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> std::thread::JoinHandle<Result<T, String>> {
    let ns = ns.to_path_buf();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&ns).map_err(e2s)?;
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {}: {e}", ns.display()))?;
        f()
    })
}

/// A TCP server inside `ns` on `port` that answers `reply` to every connection until
/// stopped (or 30 s pass).
fn serve(
    ns: &Path,
    port: u16,
    reply: &'static str,
) -> (Arc<AtomicBool>, std::sync::mpsc::Receiver<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stop2 = stop.clone();
    in_netns(ns, move || {
        let listener = TcpListener::bind(("0.0.0.0", port)).map_err(e2s)?;
        listener.set_nonblocking(true).map_err(e2s)?;
        let _ = ready_tx.send(());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.write_all(reply.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Ok(())
    });
    (stop, ready_rx)
}

fn fetch(addr: SocketAddr) -> Result<String, String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(e2s)?;
    let mut got = String::new();
    conn.read_to_string(&mut got)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    Ok(got)
}

fn nat_rules_naming(id: &str) -> Result<usize, String> {
    let out = Command::new("iptables-save")
        .args(["-t", "nat"])
        .output()
        .map_err(e2s)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(id))
        .count())
}

fn netns_is_pinned_and_removed_idempotently() -> TestResult {
    let dir = tempfile::tempdir().map_err(e2s)?;
    let ns = NetNs::create(dir.path(), "pod-a").map_err(e2s)?;
    let path = ns.path().to_path_buf();
    let result = (|| {
        ensure(mounted(&path), || {
            format!("{} not in mountinfo", path.display())
        })?;
        let host = std::fs::metadata("/proc/self/ns/net").map_err(e2s)?;
        let pinned = std::fs::metadata(&path).map_err(e2s)?;
        use std::os::unix::fs::MetadataExt;
        ensure(host.ino() != pinned.ino(), || {
            "pin is the host's netns".into()
        })?;
        // The calling thread did not move.
        let now = std::fs::metadata("/proc/thread-self/ns/net").map_err(e2s)?;
        ensure(now.ino() == host.ino(), || "caller's thread moved".into())?;
        NetNs::open(&path).map_err(e2s)?;
        let again = NetNs::create(dir.path(), "pod-a").unwrap_err().to_string();
        ensure(
            again.contains("already exists") && again.contains("pod-a"),
            || again.clone(),
        )
    })();
    ns.remove().map_err(e2s)?;
    result?;
    ensure(!mounted(&path), || "still mounted after remove".into())?;
    ensure(!path.exists(), || "pin file left".into())?;
    netns::remove(&path).map_err(e2s)?;
    ensure(NetNs::open(&path).is_err(), || {
        "open of a removed pin".into()
    })
}

fn two_pods_get_distinct_ips_reach_each_other_and_del_frees_everything() -> TestResult {
    let net = Net::new(0)?;
    net.write_conf("10-test.conflist", &net.conflist(&[]))?;
    let cni = net.cni();
    ensure(matches!(cni.readiness(), cni::Readiness::Ready(_)), || {
        format!("{:?}", cni.readiness())
    })?;
    let (ns_a, att_a) = net.pod("berth-cni-a")?;
    let (ns_b, mut att_b) = net.pod("berth-cni-b")?;
    att_b.capabilities.port_mappings.push(PortMapping {
        host_port: 18080,
        container_port: 8080,
        protocol: "tcp".into(),
        host_ip: String::new(),
    });
    let gateway: IpAddr = format!("{}.1", net.prefix).parse().map_err(e2s)?;

    with_cleanup(async |added| {
        let a = cni.add(&att_a).await.map_err(e2s)?;
        added.push((cni.clone(), att_a.clone()));
        let b = cni.add(&att_b).await.map_err(e2s)?;
        added.push((cni.clone(), att_b.clone()));

        let (ip_a, ip_b) = (a.ips()[0], b.ips()[0]);
        ensure(ip_a != ip_b, || format!("same ip {ip_a}"))?;
        for ip in [ip_a, ip_b] {
            ensure(
                ip.to_string().starts_with(&format!("{}.", net.prefix)),
                || format!("{ip} outside {}.0/24", net.prefix),
            )?;
        }
        ensure(a.ips.iter().any(|i| i.gateway == Some(gateway)), || {
            format!("gateway of {:?}", a.ips)
        })?;
        let mut want = vec![ip_a.to_string(), ip_b.to_string()];
        want.sort();
        ensure(net.allocated() == want, || {
            format!("host-local holds {:?}, want {want:?}", net.allocated())
        })?;
        ensure(
            cni.cached("berth-cni-a")
                .map_err(e2s)?
                .is_some_and(|c| c.result.ips() == a.ips()),
            || "cached result of a differs".into(),
        )?;
        cni.check(&att_a).await.map_err(e2s)?;

        // a reaches b directly; the host reaches b through the port mapping.
        let (stop, ready) = serve(ns_b.path(), 8080, "hello from b");
        ready
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "listener in b never ready".to_string())?;
        let direct = in_netns(ns_a.path(), move || fetch(SocketAddr::new(ip_b, 8080)))
            .join()
            .map_err(|_| "client thread panicked".to_string())?;
        let mapped = fetch(SocketAddr::new(gateway, 18080));
        stop.store(true, Ordering::Relaxed);
        ensure(direct.as_deref() == Ok("hello from b"), || {
            format!("a -> b {ip_b}:8080: {direct:?}")
        })?;
        ensure(mapped.as_deref() == Ok("hello from b"), || {
            format!("host -> {gateway}:18080 (portmap): {mapped:?}")
        })?;
        ensure(nat_rules_naming("berth-cni-b")? > 0, || {
            "portmap wrote no nat rule naming the pod".into()
        })?;

        cni.del(&att_b).await.map_err(e2s)?;
        cni.del(&att_a).await.map_err(e2s)?;
        added.clear();
        ensure(net.allocated().is_empty(), || {
            format!("host-local still holds {:?}", net.allocated())
        })?;
        ensure(nat_rules_naming("berth-cni-b")? == 0, || {
            "portmap rules left after del".into()
        })?;
        let left: Vec<_> = std::fs::read_dir(net.cache_dir())
            .map_err(e2s)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        ensure(left.is_empty(), || format!("cache entries left: {left:?}"))?;
        // DEL is idempotent.
        cni.del(&att_a).await.map_err(e2s)?;
        Ok(())
    })?;

    for ns in [ns_a, ns_b] {
        let path = ns.path().to_path_buf();
        ns.remove().map_err(e2s)?;
        ensure(!mounted(&path) && !path.exists(), || {
            format!("{} still pinned", path.display())
        })?;
    }
    Ok(())
}

fn del_after_restart_uses_the_cached_config() -> TestResult {
    let net = Net::new(1)?;
    let changed = Net::new(2)?;
    net.write_conf("10-test.conflist", &net.conflist(&[]))?;
    let (_ns, att) = net.pod("berth-cni-restart")?;
    with_cleanup(async |added| {
        let first = net.cni().add(&att).await.map_err(e2s)?;
        added.push((net.cni(), att.clone()));
        ensure(net.allocated().len() == 1, || {
            format!("{:?}", net.allocated())
        })?;

        // The conf dir now holds another network; a new Cni is berthd after a restart.
        std::fs::remove_file(net.conf_dir().join("10-test.conflist")).map_err(e2s)?;
        net.write_conf("05-changed.conflist", &changed.conflist(&[]))?;
        let restarted = net.cni();
        let cached = restarted
            .cached("berth-cni-restart")
            .map_err(e2s)?
            .ok_or("nothing cached")?;
        ensure(cached.result.ips() == first.ips(), || {
            format!("cached ips {:?} != {:?}", cached.result.ips(), first.ips())
        })?;
        ensure(cached.network.name == net.name, || {
            cached.network.name.clone()
        })?;
        ensure(cached.attachment == att, || {
            format!("{:?}", cached.attachment)
        })?;

        restarted.del(&att).await.map_err(e2s)?;
        added.clear();
        ensure(net.allocated().is_empty(), || {
            format!(
                "the cached network's address is still held: {:?}",
                net.allocated()
            )
        })?;
        ensure(
            restarted
                .cached("berth-cni-restart")
                .map_err(e2s)?
                .is_none(),
            || "cache entry left".into(),
        )?;
        // Uncached now: a second DEL runs the changed network and still succeeds.
        restarted.del(&att).await.map_err(e2s)
    })
}

fn failed_add_leaves_no_address_and_names_the_plugin() -> TestResult {
    let net = Net::new(3)?;
    let failing = net.bin_dir().join("berth-fail");
    std::fs::write(
        &failing,
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n\
         echo '{\"cniVersion\":\"1.0.0\",\"code\":99,\"msg\":\"injected failure\",\"details\":\"by the test\"}'\nexit 1\n",
    )
    .map_err(e2s)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).map_err(e2s)?;
    let (_ns, att) = net.pod("berth-cni-fail")?;

    with_cleanup(async |added| {
        let cni = net.cni();
        added.push((cni.clone(), att.clone()));
        // A plugin that fails with an error of its own.
        net.write_conf(
            "10-test.conflist",
            &net.conflist(&[json!({"type": "berth-fail"})]),
        )?;
        let err = cni
            .add(&att)
            .await
            .err()
            .ok_or("add succeeded")?
            .to_string();
        ensure(
            err.contains(&format!("plugin berth-fail of network {}", net.name))
                && err.contains("injected failure")
                && err.contains("code 99"),
            || err.clone(),
        )?;
        ensure(net.allocated().is_empty(), || {
            format!("after a failed add host-local holds {:?}", net.allocated())
        })?;
        ensure(cni.cached("berth-cni-fail").map_err(e2s)?.is_none(), || {
            "a failed add was cached".into()
        })?;

        // A plugin that is not installed.
        net.write_conf(
            "10-test.conflist",
            &net.conflist(&[json!({"type": "berth-no-such-plugin"})]),
        )?;
        let err = cni
            .add(&att)
            .await
            .err()
            .ok_or("add succeeded")?
            .to_string();
        ensure(
            err.contains("plugin berth-no-such-plugin of network"),
            || err.clone(),
        )?;
        ensure(net.allocated().is_empty(), || {
            format!("after a failed add host-local holds {:?}", net.allocated())
        })?;

        // A bad IPAM config: bridge fails, and says why.
        let mut conf = net.conflist(&[]);
        conf["plugins"][0]["ipam"]["ranges"] = json!([[{"subnet": "not-a-subnet"}]]);
        net.write_conf("10-test.conflist", &conf)?;
        let err = cni
            .add(&att)
            .await
            .err()
            .ok_or("add succeeded")?
            .to_string();
        ensure(err.contains("plugin bridge of network"), || err.clone())?;
        ensure(net.allocated().is_empty(), || {
            format!("{:?}", net.allocated())
        })?;
        // So that the cleanup DEL has a config it can run.
        net.write_conf("10-test.conflist", &net.conflist(&[]))
    })
}

type TestFn = fn() -> TestResult;

fn main() {
    let args = Arguments::from_args();
    let missing = missing_prerequisite();
    let tests: &[(&str, TestFn)] = &[
        (
            "netns_is_pinned_and_removed_idempotently",
            netns_is_pinned_and_removed_idempotently,
        ),
        (
            "two_pods_get_distinct_ips_reach_each_other_and_del_frees_everything",
            two_pods_get_distinct_ips_reach_each_other_and_del_frees_everything,
        ),
        (
            "del_after_restart_uses_the_cached_config",
            del_after_restart_uses_the_cached_config,
        ),
        (
            "failed_add_leaves_no_address_and_names_the_plugin",
            failed_add_leaves_no_address_and_names_the_plugin,
        ),
    ];
    let trials = berth_test_support::trials(tests, missing.clone(), "CI");
    libtest_mimic::run(&args, trials).exit();
}
