//! Root integration tests: real busybox containers through the berth-oci binary.
//!
//! harness = false (libtest-mimic): when the machine cannot run them (not root, no busybox),
//! every case is reported *ignored* with the reason; with the environment variable CI set that
//! is a failure instead, so CI can never pass without running them.

mod support;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::json;
use support::*;

type R = Result<(), Failed>;
type Case = (&'static str, fn() -> R);
type BadBundle = (&'static str, Box<dyn Fn(&mut Bundle)>, &'static str);

fn check(cond: bool, msg: impl Into<String>) -> R {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

fn main() {
    let args = Arguments::from_args();
    let missing = missing_prerequisite();
    let ci = std::env::var_os("CI").is_some();
    if let Some(why) = &missing {
        eprintln!("berth-oci root tests: {why}");
    }
    let trials = cases()
        .into_iter()
        .map(|(name, f)| {
            let ignored = missing.is_some() && !ci;
            let missing = missing.clone();
            Trial::test(name, move || match &missing {
                Some(why) if ci => Err(format!("prerequisite missing in CI: {why}").into()),
                _ => f(),
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Every case, named after its function.
macro_rules! cases {
    ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as fn() -> R)),*] };
}

fn cases() -> Vec<Case> {
    cases![
        run_prints_output_and_returns_exit_code,
        lifecycle_create_start_state_kill_delete,
        flags_after_the_id_and_numeric_or_named_signals,
        usage_errors_exit_2_help_and_version_exit_0,
        default_root_is_run_berth_oci,
        pid_namespace_makes_process_pid_1,
        uts_namespace_sets_hostname_and_domainname,
        network_namespace_has_only_loopback,
        ipc_and_cgroup_namespaces_are_new,
        user_namespace_maps_ids,
        time_namespace_applies_offsets,
        joins_existing_namespaces_by_path,
        mounts_tmpfs_bind_ro_rbind_rro,
        mounts_overlay,
        readonly_rootfs_refuses_writes,
        masked_and_readonly_paths,
        default_and_configured_devices,
        user_groups_and_umask,
        capabilities_sets_applied,
        rlimits_applied,
        oom_score_adj_raised_and_lowering_is_clamped,
        namespaced_sysctl_applied_host_sysctl_refused,
        hooks_run_in_order_and_poststart_failure_is_not_fatal,
        failing_prestart_hook_fails_create_and_cleans_up,
        console_socket_receives_pty_master,
        exec_into_running_container,
        pause_and_resume,
        kill_all_signals_every_process,
        delete_force_removes_running_container,
        seccomp_denies_syscall_with_errno,
        preserve_fds_passes_descriptors,
        missing_executable_fails_create,
        bad_bundles_name_the_field_and_leave_nothing,
        cve_2019_5736_runtime_binary_not_writable_from_container,
        cve_2024_21626_leaked_fd_cwd_refused,
        cve_2021_30465_symlinked_mount_target_stays_in_root,
        cve_2019_19921_proc_over_symlink_refused,
        cve_2022_29162_no_inheritable_capabilities,
        features_and_spec_commands,
        list_and_ps,
        differential_against_runc,
        cgroup_limits_visible_in_container,
        cgroup_pids_limit_stops_forks,
        cgroup_memory_limit_oom_kill_reported_by_events,
        cgroup_devices_rules_deny_and_allow_mknod,
        update_changes_limits,
        events_stats_report_usage,
        scheduler_ioprio_personality_affinity_applied,
        net_devices_moved_into_container_and_renamed,
        seccomp_notify_listener_reaches_the_agent,
        run_in_foreground_relays_its_own_terminal,
        hook_timeout_fails_create_and_cleans_up,
        memory_policy_applied,
        rootfs_propagation_applied,
        signals_default_and_unblocked_in_container,
    ]
}

fn run_prints_output_and_returns_exit_code() -> R {
    let (code, out, err) = sh("echo hello; echo oops >&2; exit 7", |_| {});
    check(code == 7, format!("exit code {code}, stderr {err}"))?;
    check(out == "hello\n", format!("stdout {out:?}"))?;
    check(err.contains("oops"), format!("stderr {err:?}"))
}

fn lifecycle_create_start_state_kill_delete() -> R {
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let id = unique_id("life");
    let pidfile = b.path().join("pid");
    root.ok(&[
        "create",
        "--bundle",
        b.write().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = root.state(&id);
    check(st["status"] == "created", format!("after create: {st}"))?;
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        check(st.get(key).is_some(), format!("state lacks {key}: {st}"))?;
    }
    let pid = st["pid"].as_i64().unwrap();
    check(
        std::fs::read_to_string(&pidfile).unwrap() == pid.to_string(),
        "pid file",
    )?;
    check(
        root.run(&["create", "--bundle", b.path().to_str().unwrap(), &id])
            .status
            .code()
            == Some(1),
        "duplicate create must fail",
    )?;
    root.ok(&["start", &id]);
    check(root.status(&id) == "running", "running after start")?;
    check(
        !root.run(&["start", &id]).status.success(),
        "second start must fail",
    )?;
    check(
        !root.run(&["delete", &id]).status.success(),
        "delete of a running container needs --force",
    )?;
    root.ok(&["kill", &id, "KILL"]);
    check(
        wait_until(|| root.status(&id) == "stopped"),
        "stopped after kill",
    )?;
    check(root.state(&id)["pid"] == 0, "stopped state has pid 0")?;
    root.ok(&["delete", &id]);
    let out = root.run(&["state", &id]);
    check(
        out.status.code() == Some(1),
        "state of a deleted container fails",
    )?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "names the missing container",
    )?;
    check(!default_cgroup_dir(&id).exists(), "cgroup removed")
}

fn flags_after_the_id_and_numeric_or_named_signals() -> R {
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    for (i, sig) in ["9", "SIGKILL", "KILL", "kill"].iter().enumerate() {
        let id = unique_id(&format!("sig{i}"));
        // flags after the id
        let mut cmd = std::process::Command::new(berth_oci());
        cmd.args([
            "create",
            &id,
            "--bundle",
            b.write().to_str().unwrap(),
            "--root",
            root.dir.path().to_str().unwrap(),
        ]);
        let out = capture(cmd);
        check(
            out.status.success(),
            format!(
                "create with flags after id: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        )?;
        root.ok(&["start", &id]);
        root.ok(&["kill", &id, sig]);
        check(
            wait_until(|| root.status(&id) == "stopped"),
            format!("signal {sig} stops sleep"),
        )?;
        root.ok(&["delete", &id]);
    }
    let out = root.run(&["kill", "nope", "NOTASIGNAL"]);
    check(!out.status.success(), "bad signal fails")
}

fn usage_errors_exit_2_help_and_version_exit_0() -> R {
    let root = Root::new();
    for args in [
        &["create"][..],
        &["frobnicate", "x"],
        &["state", "x", "--no-such-flag"],
        &["run", "-b"],
        &["update", "--memory", "lots", "x"],
        &["--log-format", "xml", "list"],
    ] {
        let out = root.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(2) && err.contains("usage: berth-oci"),
            format!("{args:?}: exit {:?}, stderr {err}", out.status.code()),
        )?;
    }
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["help", "exec"],
        &["-v"],
    ] {
        let out = root.run(args);
        check(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("berth-oci"),
            format!("{args:?}: exit {:?}", out.status.code()),
        )?;
    }
    let out = root.run(&["--version"]);
    check(
        String::from_utf8_lossy(&out.stdout)
            == format!("berth-oci {}\n", env!("CARGO_PKG_VERSION")),
        "--version prints the name and version",
    )
}

fn default_root_is_run_berth_oci() -> R {
    let b = Bundle::new(&["true"]);
    let id = unique_id("defroot");
    let mut cmd = std::process::Command::new(berth_oci());
    cmd.args(["run", "-b", b.write().to_str().unwrap(), "--keep", &id]);
    let out = capture(cmd);
    check(
        out.status.success(),
        format!("run: {}", String::from_utf8_lossy(&out.stderr)),
    )?;
    check(
        Path::new("/run/berth-oci")
            .join(&id)
            .join("state.json")
            .exists(),
        "state under /run/berth-oci",
    )?;
    let out = std::process::Command::new(berth_oci())
        .args(["delete", &id])
        .output()
        .unwrap();
    check(out.status.success(), "delete from default root")
}

fn pid_namespace_makes_process_pid_1() -> R {
    let (code, out, err) = sh("echo $$; ps -o pid | wc -l", |_| {});
    check(code == 0, err)?;
    let mut lines = out.lines();
    check(
        lines.next() == Some("1"),
        format!("pid in container: {out}"),
    )
}

fn uts_namespace_sets_hostname_and_domainname() -> R {
    let (code, out, err) = sh("hostname; cat /proc/sys/kernel/domainname", |b| {
        b.config["hostname"] = json!("pod-a");
        b.config["domainname"] = json!("example.test");
    });
    check(code == 0, err)?;
    check(out == "pod-a\nexample.test\n", format!("got {out:?}"))
}

fn network_namespace_has_only_loopback() -> R {
    let (code, out, err) = sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", |_| {});
    check(code == 0, err)?;
    check(out.trim() == "lo", format!("interfaces: {out:?}"))
}

fn ns_id(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn ipc_and_cgroup_namespaces_are_new() -> R {
    let (code, out, err) = sh(
        "readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup; grep -E '(pids|^0:)' /proc/self/cgroup",
        |_| {},
    );
    check(code == 0, err)?;
    let lines: Vec<&str> = out.lines().collect();
    check(
        lines[0] != ns_id("self", "ipc"),
        "ipc namespace differs from the host's",
    )?;
    check(
        lines[1] != ns_id("self", "cgroup"),
        "cgroup namespace differs",
    )?;
    check(
        lines[2].ends_with(":/"),
        format!(
            "cgroup namespace is rooted at the container's cgroup: {}",
            lines[2]
        ),
    )
}

fn user_namespace_maps_ids() -> R {
    let (code, out, err) = sh(
        "id -u; cat /proc/self/uid_map; cat /proc/self/gid_map",
        |b| {
            b.add_namespace(json!({"type": "user"}));
            b.config["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            b.config["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // sysfs and cgroup mounts need privileges over the host's namespaces.
            b.config["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
        },
    );
    check(code == 0, err)?;
    let words: Vec<&str> = out.split_whitespace().collect();
    check(
        words[..4] == ["0", "0", "100000", "65536"],
        format!("uid/map: {out:?}"),
    )
}

fn time_namespace_applies_offsets() -> R {
    let (code, out, err) = sh("cut -d. -f1 /proc/uptime", |b| {
        b.add_namespace(json!({"type": "time"}));
        b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1000000, "nanosecs": 0}});
    });
    check(code == 0, err)?;
    let up: u64 = out.trim().parse().unwrap_or(0);
    check(up >= 1_000_000, format!("uptime in container {up}"))
}

fn joins_existing_namespaces_by_path() -> R {
    let a = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let ida = unique_id("nsa");
    root.ok(&["run", "-d", "-b", a.write().to_str().unwrap(), &ida]);
    let pid = root.state(&ida)["pid"].to_string();
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc",
    ]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network" && n["type"] != "ipc");
    ns.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
    ns.push(json!({"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")}));
    let (code, out, err) = run_bundle(&root, &b, &unique_id("nsb"));
    check(code == 0, err)?;
    check(
        out == format!("{}\n{}\n", ns_id(&pid, "net"), ns_id(&pid, "ipc")),
        format!("joined: {out:?}"),
    )
}

fn mounts_tmpfs_bind_ro_rbind_rro() -> R {
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("f"), "data\n").unwrap();
    let sub = tempfile::tempdir().unwrap();
    let (code, out, err) = sh(
        "grep ' /scratch ' /proc/self/mounts | cut -d' ' -f3,4 | cut -d, -f1; cat /ro/f; \
         touch /ro/x 2>/dev/null && echo ro-writable || echo ro-refused; \
         touch /rw/y && echo rw-ok; \
         grep ' /rro' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1 | sort | uniq",
        |b| {
            b.add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
            b.add_mount(json!({"destination": "/ro", "type": "bind", "source": vol.path(), "options": ["rbind", "ro"]}));
            b.add_mount(json!({"destination": "/rw", "type": "bind", "source": vol.path(), "options": ["bind", "rprivate"]}));
            b.add_mount(json!({"destination": "/rro", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind", "rro"]}));
            let _ = &sub;
        },
    );
    check(code == 0, err)?;
    let lines: Vec<&str> = out.lines().collect();
    check(lines.first() == Some(&"tmpfs rw"), format!("tmpfs: {out}"))?;
    check(lines.get(1) == Some(&"data"), "bind source visible")?;
    check(
        lines.get(2) == Some(&"ro-refused"),
        "ro bind refuses writes",
    )?;
    check(lines.get(3) == Some(&"rw-ok"), "rw bind writable")?;
    check(
        vol.path().join("y").exists(),
        "write through bind reached the host dir",
    )?;
    check(
        lines.get(4) == Some(&"ro") && lines.len() == 5,
        format!("rro makes every submount read-only: {out}"),
    )
}

fn mounts_overlay() -> R {
    let t = tempfile::tempdir().unwrap();
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir(t.path().join(d)).unwrap();
    }
    std::fs::write(t.path().join("lower/l"), "lower\n").unwrap();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        t.path().join("lower").display(),
        t.path().join("upper").display(),
        t.path().join("work").display()
    );
    let (code, out, err) = sh("cat /ov/l; echo new > /ov/n", |b| {
        b.add_mount(json!({"destination": "/ov", "type": "overlay", "source": "overlay", "options": [opts]}));
    });
    check(code == 0, err)?;
    check(out == "lower\n", out.clone())?;
    check(
        std::fs::read_to_string(t.path().join("upper/n")).unwrap_or_default() == "new\n",
        "write landed in upperdir",
    )
}

fn readonly_rootfs_refuses_writes() -> R {
    let (code, out, err) = sh(
        "touch /x 2>/dev/null && echo writable || echo refused; touch /dev/shm/ok && echo shm",
        |b| {
            b.config["root"]["readonly"] = json!(true);
        },
    );
    check(code == 0, err)?;
    check(out == "refused\nshm\n", out)
}

fn masked_and_readonly_paths() -> R {
    let (code, out, err) = sh(
        "wc -c < /proc/keys; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-ro",
        |_| {},
    );
    check(code == 0, err)?;
    check(
        out.split_whitespace().collect::<Vec<_>>() == ["0", "0", "sys-ro"],
        format!("got {out:?}"),
    )
}

fn default_and_configured_devices() -> R {
    let (code, out, err) = sh(
        "stat -c '%n %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mynull; readlink /dev/fd; readlink /dev/ptmx",
        |b| {
            b.config["linux"]["devices"] = json!([{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 0}]);
        },
    );
    check(code == 0, err)?;
    let want = "/dev/null 1:3 666\n/dev/zero 1:5 666\n/dev/full 1:7 666\n/dev/random 1:8 666\n/dev/urandom 1:9 666\n/dev/tty 5:0 666\n/dev/mynull 1:3 640\n/proc/self/fd\npts/ptmx\n";
    check(out == want, format!("got {out:?}"))
}

fn user_groups_and_umask() -> R {
    let (code, out, err) = sh("id; umask; touch /tmp/f; stat -c %a /tmp/f", |b| {
        b.config["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o077});
    });
    check(code == 0, err)?;
    check(
        out.starts_with("uid=1000(user) gid=1000(user) groups=10,20\n"),
        format!("id: {out}"),
    )?;
    check(
        out.contains("0077") && out.trim_end().ends_with("600"),
        format!("umask: {out}"),
    )
}

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn capabilities_sets_applied() -> R {
    let (code, out, err) = sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status", |b| {
        b.config["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
        });
    });
    check(code == 0, err)?;
    // CAP_CHOWN=0, CAP_KILL=5, CAP_NET_RAW=13
    check(
        status_field(&out, "CapBnd:") == "0000000000002021",
        format!("bounding: {out}"),
    )?;
    check(
        status_field(&out, "CapEff:") == "0000000000000021",
        format!("effective: {out}"),
    )?;
    check(
        status_field(&out, "CapPrm:") == "0000000000000021",
        format!("permitted: {out}"),
    )?;
    check(status_field(&out, "NoNewPrivs:") == "1", "no_new_privs")
}

fn rlimits_applied() -> R {
    let (code, out, err) = sh("ulimit -n; ulimit -Hn", |b| {
        b.config["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]);
    });
    check(code == 0, err)?;
    check(out == "321\n654\n", out)
}

fn oom_score_adj_raised_and_lowering_is_clamped() -> R {
    let (code, out, err) = sh("cat /proc/self/oom_score_adj", |b| {
        b.config["process"]["oomScoreAdj"] = json!(500);
    });
    check(
        code == 0 && out == "500\n",
        format!("raise: {code} {out} {err}"),
    )?;
    let current: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (code, out, err) = sh("cat /proc/self/oom_score_adj", |b| {
        b.config["process"]["oomScoreAdj"] = json!(-999);
    });
    check(
        code == 0,
        format!("lowering must not fail the container: {err}"),
    )?;
    let got: i32 = out.trim().parse().unwrap_or(i32::MIN);
    check(
        got == -999 || got >= current,
        format!("lowered to {got}, current {current}"),
    )
}

fn namespaced_sysctl_applied_host_sysctl_refused() -> R {
    let (code, out, err) = sh(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
        |b| {
            b.config["linux"]["sysctl"] =
                json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        },
    );
    check(code == 0, err)?;
    check(out == "1\n1234\n", out)?;
    let (code, _, err) = sh("true", |b| {
        b.config["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/evil"});
    });
    check(
        code != 0 && err.contains("linux.sysctl.kernel.core_pattern"),
        format!("core_pattern must be refused by name: {err}"),
    )
}

fn hook(path: &Path, name: &str, log: &Path) -> serde_json::Value {
    json!({"path": path, "args": ["sh", "-c", format!("read state; echo {name} >> {}", log.display())]})
}

fn hooks_run_in_order_and_poststart_failure_is_not_fatal() -> R {
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("log");
    let mut b = Bundle::new(&["sh", "-c", "echo process >> /shared/log"]);
    b.add_mount(json!({"destination": "/shared", "type": "bind", "source": shared.path(), "options": ["bind"]}));
    let host_sh = Path::new("/bin/sh");
    let in_ctr = Path::new("/shared/log");
    b.config["hooks"] = json!({
        "prestart": [hook(host_sh, "prestart", &log)],
        "createRuntime": [hook(host_sh, "createRuntime", &log)],
        "createContainer": [hook(host_sh, "createContainer", &log)],
        "startContainer": [hook(Path::new("/bin/sh"), "startContainer", in_ctr)],
        "poststart": [{"path": "/bin/false"}, hook(host_sh, "poststart", &log)],
        "poststop": [hook(host_sh, "poststop", &log)],
    });
    let root = Root::new();
    let (code, _, err) = run_bundle(&root, &b, &unique_id("hooks"));
    check(code == 0, err)?;
    let got = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = got.lines().collect();
    // The process and poststart race after start; everything else is ordered.
    check(
        lines[..4]
            == [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
            ],
        format!("order: {got}"),
    )?;
    check(
        lines.contains(&"poststart") && lines.contains(&"process"),
        format!("poststart ran despite an earlier failing one: {got}"),
    )?;
    check(
        lines.last() == Some(&"poststop"),
        format!("poststop last: {got}"),
    )
}

fn failing_prestart_hook_fails_create_and_cleans_up() -> R {
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    let root = Root::new();
    let id = unique_id("badhook");
    let out = root.run(&["create", "-b", b.write().to_str().unwrap(), &id]);
    check(!out.status.success(), "create must fail")?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("/bin/false"),
        "names the hook",
    )?;
    check(!root.dir.path().join(&id).exists(), "no state dir left")?;
    check(!default_cgroup_dir(&id).exists(), "no cgroup left")
}

fn recv_fd(sock: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the fd was just received and belongs to us alone.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

fn console_socket_receives_pty_master() -> R {
    let mut b = Bundle::new(&["sh", "-c", "tty; echo done"]);
    b.config["process"]["terminal"] = json!(true);
    let root = Root::new();
    let id = unique_id("tty");
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let sp = sock_path.clone();
    let bp = b.write().to_path_buf();
    let root_path = root.dir.path().to_path_buf();
    let id2 = id.clone();
    let creator = std::thread::spawn(move || {
        let mut cmd = std::process::Command::new(berth_oci());
        cmd.args([
            "--root",
            root_path.to_str().unwrap(),
            "create",
            "-b",
            bp.to_str().unwrap(),
            "--console-socket",
            sp.to_str().unwrap(),
            &id2,
        ]);
        capture(cmd)
    });
    let (conn, _) = listener.accept().unwrap();
    let master = recv_fd(&conn);
    let out = creator.join().unwrap();
    check(
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )?;
    root.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains("done") {
            break;
        }
    }
    check(
        text.contains("/dev/pts/0") && text.contains("done"),
        format!("terminal output: {text:?}"),
    )
}

fn exec_into_running_container() -> R {
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let id = unique_id("exec");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    let out = root.run(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$ $(hostname); cat /proc/1/cmdline | tr '\\0' ' '; exit 5",
    ]);
    check(
        out.status.code() == Some(5),
        format!(
            "exit code {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ),
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    check(
        text.contains("berth-test") && text.contains("sleep 100"),
        format!("exec output {text:?}"),
    )?;
    // --process JSON, detached, with a pid file
    let p = b.path().join("p.json");
    std::fs::write(&p, json!({"args": ["sleep", "50"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
    let pidfile = b.path().join("exec.pid");
    root.ok(&[
        "exec",
        "--process",
        p.to_str().unwrap(),
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    check(
        Path::new(&format!("/proc/{pid}")).exists(),
        "detached exec process runs",
    )?;
    let ps: Vec<i32> = serde_json::from_str(&root.ok(&["ps", "--format", "json", &id])).unwrap();
    check(
        ps.len() == 2 && ps.contains(&pid.parse().unwrap()),
        format!("ps lists both: {ps:?}"),
    )?;
    let out = root.run(&["exec", &id, "/no/such/program"]);
    check(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/no/such/program"),
        "missing program named",
    )
}

fn pause_and_resume() -> R {
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let id = unique_id("pause");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    root.ok(&["pause", &id]);
    check(root.status(&id) == "paused", "paused")?;
    let pid = root.state(&id)["pid"].to_string();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    check(
        !st.contains("State:\tS")
            || st.contains("State:\tD")
            || status_field(&st, "State:").starts_with('S'),
        "state readable",
    )?;
    check(
        !root.run(&["pause", &id]).status.success(),
        "pausing twice fails",
    )?;
    root.ok(&["resume", &id]);
    check(root.status(&id) == "running", "running after resume")
}

fn kill_all_signals_every_process() -> R {
    let b = Bundle::new(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    let root = Root::new();
    let id = unique_id("killall");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    check(
        wait_until(|| {
            serde_json::from_str::<Vec<i32>>(&root.ok(&["ps", "-f", "json", &id]))
                .map(|v| v.len() == 3)
                .unwrap_or(false)
        }),
        "three processes",
    )?;
    root.ok(&["kill", "--all", &id, "KILL"]);
    check(wait_until(|| root.status(&id) == "stopped"), "stopped")?;
    check(
        wait_until(|| {
            serde_json::from_str::<Vec<i32>>(&root.ok(&["ps", "-f", "json", &id]))
                .map(|v| v.is_empty())
                .unwrap_or(false)
        }),
        "no process left",
    )?;
    // As runc: `kill --all` of a stopped container succeeds (containerd's shim sends it),
    // a plain kill does not.
    root.ok(&["kill", "--all", &id, "KILL"]);
    check(
        root.run(&["kill", &id, "KILL"]).status.code() != Some(0),
        "plain kill of a stopped container fails",
    )
}

fn delete_force_removes_running_container() -> R {
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let id = unique_id("force");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    let pid = root.state(&id)["pid"].to_string();
    root.ok(&["delete", "--force", &id]);
    check(
        wait_until(|| {
            !Path::new(&format!("/proc/{pid}/status")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .map(|s| s.contains("zombie"))
                    .unwrap_or(true)
        }),
        "process gone",
    )?;
    check(!root.dir.path().join(&id).exists(), "state removed")?;
    check(!default_cgroup_dir(&id).exists(), "cgroup removed")?;
    check(
        root.run(&["delete", "--force", "never-existed"])
            .status
            .success(),
        "delete --force of an unknown id succeeds",
    )
}

fn seccomp_denies_syscall_with_errno() -> R {
    let (code, out, err) = sh("mkdir /tmp/x 2>&1; echo rc=$?", |b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
        });
    });
    check(code == 0, err)?;
    check(
        out.contains("Function not implemented") || out.contains("not implemented"),
        format!("mkdir error: {out}"),
    )?;
    check(out.contains("rc=1"), out)
}

fn preserve_fds_passes_descriptors() -> R {
    let b = Bundle::new(&["sh", "-c", "cat <&3"]);
    let root = Root::new();
    let tmp = b.path().join("fd3");
    std::fs::write(&tmp, "passed").unwrap();
    let f = std::fs::File::open(&tmp).unwrap();
    let mut cmd = root.cmd(&[
        "run",
        "-b",
        b.write().to_str().unwrap(),
        "--preserve-fds",
        "1",
        &unique_id("fds"),
    ]);
    let raw = f.as_raw_fd();
    // SAFETY: runs in the forked child before exec; dup2 is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // dup2 onto itself keeps close-on-exec: clear it then.
            if raw == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = capture(cmd);
    check(
        String::from_utf8_lossy(&out.stdout) == "passed",
        format!("{out:?}"),
    )
}

fn missing_executable_fails_create() -> R {
    let b = Bundle::new(&["/bin/nonexistent-program"]);
    let root = Root::new();
    let id = unique_id("noexe");
    let out = root.run(&["create", "-b", b.write().to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        !out.status.success() && err.contains("nonexistent-program"),
        format!("{err}"),
    )?;
    check(!root.dir.path().join(&id).exists(), "no state left")
}

fn bad_bundles_name_the_field_and_leave_nothing() -> R {
    let root = Root::new();
    let cases: Vec<BadBundle> = vec![
        (
            "missing rootfs",
            Box::new(|b: &mut Bundle| b.config["root"]["path"] = json!("nope")),
            "root.path",
        ),
        (
            "unknown namespace",
            Box::new(|b: &mut Bundle| b.add_namespace(json!({"type": "bogus"}))),
            "linux.namespaces",
        ),
        (
            "cgroup path with ..",
            Box::new(|b: &mut Bundle| b.config["linux"]["cgroupsPath"] = json!("/a/../../etc")),
            "cgroupsPath",
        ),
        (
            "relative mount destination",
            Box::new(|b: &mut Bundle| {
                b.add_mount(json!({"destination": "tmp", "type": "tmpfs", "source": "tmpfs"}))
            }),
            "destination",
        ),
        (
            "empty args",
            Box::new(|b: &mut Bundle| b.config["process"]["args"] = json!([])),
            "process.args",
        ),
    ];
    for (what, tweak, field) in cases {
        let mut b = Bundle::new(&["true"]);
        tweak(&mut b);
        let id = unique_id("bad");
        let out = root.run(&["create", "-b", b.write().to_str().unwrap(), &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        check(!out.status.success(), format!("{what}: create must fail"))?;
        check(
            err.contains(field),
            format!("{what}: error must name {field}: {err}"),
        )?;
        check(
            !root.dir.path().join(&id).exists(),
            format!("{what}: state dir left"),
        )?;
        check(
            !default_cgroup_dir(&id).exists(),
            format!("{what}: cgroup left"),
        )?;
    }
    let b = Bundle::new(&["true"]);
    std::fs::write(b.path().join("config.json"), "{ not json").unwrap();
    let out = root.run(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    check(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("config.json"),
        "invalid JSON names the file",
    )
}

fn cve_2019_5736_runtime_binary_not_writable_from_container() -> R {
    // The container's init is the runtime's own process until it execs: its /proc/<pid>/exe must
    // not lead to a writable runtime binary, even after the runtime is gone.
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let id = unique_id("cve5736");
    root.ok(&["create", "-b", b.write().to_str().unwrap(), &id]);
    let pid = root.state(&id)["pid"].to_string();
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).expect("open init exe");
    let path = format!("/proc/self/fd/{}", exe.as_raw_fd());
    root.ok(&["delete", "--force", &id]);
    // Other tests may be running the binary right now (ETXTBSY would hide the answer), so check
    // the property that makes the write impossible: a read-only mount, or a write-sealed memfd.
    let sealed = |p: &str| {
        nix::sys::statvfs::statvfs(p)
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
            || std::fs::File::open(p)
                .ok()
                .and_then(|f| nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GET_SEALS).ok())
                .is_some_and(|s| s & libc::F_SEAL_WRITE != 0)
    };
    check(
        !sealed(berth_oci()),
        "control: the installed binary itself is writable",
    )?;
    check(
        sealed(&path),
        "the init's executable must be read-only or sealed",
    )?;
    match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(_) => {
            Err("the runtime binary could be reopened for writing through the init's exe".into())
        }
        Err(e) => check(
            matches!(
                e.raw_os_error(),
                Some(libc::EROFS) | Some(libc::ETXTBSY) | Some(libc::EPERM)
            ),
            format!("unexpected error {e}"),
        ),
    }
}

fn cve_2024_21626_leaked_fd_cwd_refused() -> R {
    let root = Root::new();
    for fd in 3..12 {
        let mut b = Bundle::new(&["sh", "-c", "pwd"]);
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        let (code, out, err) = run_bundle(&root, &b, &unique_id("cve21626"));
        // Either refused, or the directory is inside the container.
        if code == 0 {
            check(
                out.starts_with('/') && !out.contains("unreachable"),
                format!("fd {fd}: cwd {out:?}"),
            )?;
            check(
                !out.contains("berth") && !out.contains("cgroup"),
                format!("fd {fd}: cwd outside the container: {out:?} {err}"),
            )?;
        }
    }
    Ok(())
}

fn cve_2021_30465_symlinked_mount_target_stays_in_root() -> R {
    let outside = tempfile::tempdir().unwrap();
    let (code, out, err) = sh(
        "echo x > /data/file; grep -c ' /data ' /proc/self/mounts; grep ' tmpfs' /proc/self/mounts | grep -c evil",
        |b| {
            // /data -> a host path written as an absolute symlink out of the root
            std::os::unix::fs::symlink(
                format!("/../../../../..{}", outside.path().display()),
                b.rootfs().join("data"),
            )
            .unwrap();
            b.add_mount(json!({"destination": "/data", "type": "tmpfs", "source": "evil", "options": ["size=1m"]}));
        },
    );
    check(code == 0, err)?;
    check(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        format!("host directory touched: {out}"),
    )?;
    check(
        out.lines().nth(1) == Some("1"),
        format!("tmpfs mounted inside the root: {out}"),
    )
}

fn cve_2019_19921_proc_over_symlink_refused() -> R {
    let b = Bundle::new(&["true"]);
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    std::fs::create_dir(b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink("/evil", b.rootfs().join("proc")).unwrap();
    let root = Root::new();
    let (code, _, err) = run_bundle(&root, &b, &unique_id("cve19921"));
    check(
        code != 0 && err.contains("/proc"),
        format!("proc over a symlink must be refused: {err}"),
    )
}

fn cve_2022_29162_no_inheritable_capabilities() -> R {
    let (code, out, err) = sh("grep -E '^Cap(Inh|Amb)' /proc/self/status", |_| {});
    check(code == 0, err)?;
    check(
        status_field(&out, "CapInh:") == "0000000000000000"
            && status_field(&out, "CapAmb:") == "0000000000000000",
        out,
    )
}

fn features_and_spec_commands() -> R {
    let root = Root::new();
    let f: serde_json::Value = serde_json::from_str(&root.ok(&["features"])).unwrap();
    check(
        f["linux"]["namespaces"]
            .as_array()
            .is_some_and(|a| a.len() == 8),
        format!("{f}"),
    )?;
    let d = tempfile::tempdir().unwrap();
    root.ok(&["spec", "--bundle", d.path().to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap();
    check(
        spec["process"]["args"].is_array() && spec["root"]["path"] == "rootfs",
        format!("{spec}"),
    )
}

fn list_and_ps() -> R {
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let id = unique_id("list");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&root.ok(&["list", "--format", "json"])).unwrap();
    check(
        all.len() == 1 && all[0]["id"] == id.as_str() && all[0]["status"] == "running",
        format!("{all:?}"),
    )?;
    check(root.ok(&["list", "-q"]).trim() == id, "quiet list")?;
    let table = root.ok(&["ps", &id]);
    check(
        table.lines().count() == 2 && table.contains("sleep"),
        format!("ps table: {table}"),
    )
}

/// The same bundles under berth-oci and runc: same exit code, output and state shape.
fn differential_against_runc() -> R {
    if which("runc").is_none() {
        return if std::env::var_os("CI").is_some() {
            Err("runc missing in CI".into())
        } else {
            Ok(())
        };
    }
    let scripts = [
        "echo hi; exit 3",
        "id; hostname; cat /proc/self/oom_score_adj",
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status",
        "ls /dev | sort | tr '\\n' ' '",
        "echo $$; ulimit -n",
        "touch /proc/sys/x 2>/dev/null; echo $?",
    ];
    for script in scripts {
        let b = Bundle::new(&["sh", "-c", script]);
        let ours = Root::new();
        let theirs = Root::with_runtime("runc");
        let (c1, o1, e1) = run_bundle(&ours, &b, &unique_id("diff"));
        let (c2, o2, e2) = run_bundle(&theirs, &b, &unique_id("diff"));
        check(
            c1 == c2,
            format!("{script}: exit {c1} vs runc {c2} ({e1} / {e2})"),
        )?;
        check(
            o1 == o2,
            format!("{script}: stdout differs\nberth-oci: {o1:?}\nrunc:      {o2:?}"),
        )?;
    }
    let b = Bundle::new(&["sleep", "100"]);
    let ours = Root::new();
    let theirs = Root::with_runtime("runc");
    let (i1, i2) = (unique_id("diffst"), unique_id("diffst"));
    ours.ok(&["create", "-b", b.write().to_str().unwrap(), &i1]);
    theirs.ok(&["create", "-b", b.path().to_str().unwrap(), &i2]);
    let (s1, s2) = (ours.state(&i1), theirs.state(&i2));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    check(
        keys(&s1) == keys(&s2),
        format!("state keys differ: {s1} vs {s2}"),
    )?;
    check(s1["status"] == s2["status"], "created in both")
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|p| p.exists())
    })
}

fn cgroup_v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn cgroup_limits_visible_in_container() -> R {
    let script = if cgroup_v2_host() {
        "cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpuset.cpus /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max"
    } else {
        "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let (code, out, err) = sh(script, |b| {
        b.config["linux"]["resources"] = json!({
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 20},
            "memory": {"limit": 67108864}
        });
    });
    check(code == 0, err)?;
    let want = if cgroup_v2_host() {
        "20\n50000 100000\n0\n20\n67108864\n"
    } else {
        "512\n50000\n0\n20\n67108864\n"
    };
    check(
        out == want,
        format!("limits seen in the container: {out:?}, want {want:?}"),
    )
}

fn cgroup_pids_limit_stops_forks() -> R {
    let (code, out, err) = sh(
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done 2>&1; echo forked",
        |b| {
            b.config["linux"]["resources"] = json!({"pids": {"limit": 8}});
        },
    );
    check(
        code != 0 && (out.clone() + &err).contains("can't fork") && !out.contains("forked"),
        format!("fork must fail past the limit: {code} {out} {err}"),
    )
}

fn cgroup_memory_limit_oom_kill_reported_by_events() -> R {
    // The container waits for /tmp/go, which the test creates once `events` is watching.
    let script =
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=96M count=1";
    let mut b = Bundle::new(&["sh", "-c", script]);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 33554432, "swap": 33554432}});
    let root = Root::new();
    let id = unique_id("oom");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    let log = b.path().join("events.log");
    let mut cmd = root.cmd(&["events", "--interval", "100ms", &id]);
    cmd.stdout(std::fs::File::create(&log).unwrap());
    let mut events = cmd.spawn().unwrap();
    let watching = wait_until(|| std::fs::metadata(&log).is_ok_and(|m| m.len() > 0));
    std::fs::write(b.rootfs().join("tmp/go"), "").unwrap();
    let _ = events.wait();
    check(watching, "events printed nothing")?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    check(
        text.lines().any(|l| l.contains("\"type\":\"oom\"")),
        format!("events must report the OOM kill: {text}"),
    )?;
    check(root.status(&id) == "stopped", "stopped after the OOM kill")
}

fn cgroup_devices_rules_deny_and_allow_mknod() -> R {
    let with_rules = |rules: serde_json::Value| {
        sh("mknod /tmp/mem c 1 1 2>&1 && echo made", move |b| {
            b.config["linux"]["resources"] = json!({"devices": rules});
            b.config["process"]["capabilities"] = json!({"bounding": ["CAP_MKNOD"], "effective": ["CAP_MKNOD"], "permitted": ["CAP_MKNOD"]});
        })
    };
    let (_, out, _) = with_rules(json!([{"allow": false, "access": "rwm"}]));
    check(
        out.contains("Operation not permitted"),
        format!("denied by the device rules: {out}"),
    )?;
    let (_, out, _) = with_rules(
        json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 1, "access": "m"}]),
    );
    check(
        out.contains("made"),
        format!("allowed by an explicit rule: {out}"),
    )
}

fn host_cgroup_file(c: &str, v1_ctrl: &str, v1_file: &str, v2_file: &str) -> String {
    let path = berth_executor::cgroups::resolve_path(None, c).unwrap();
    let rel = path.strip_prefix("/").unwrap();
    let p = if cgroup_v2_host() {
        Path::new("/sys/fs/cgroup").join(rel).join(v2_file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(v1_ctrl)
            .join(rel)
            .join(v1_file)
    };
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| format!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn update_changes_limits() -> R {
    let b = Bundle::new(&["sleep", "100"]);
    let root = Root::new();
    let id = unique_id("update");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    root.ok(&["update", "--memory", "67108864", "--pids-limit", "33", &id]);
    check(
        host_cgroup_file(&id, "memory", "memory.limit_in_bytes", "memory.max") == "67108864",
        "memory limit updated",
    )?;
    check(
        host_cgroup_file(&id, "pids", "pids.max", "pids.max") == "33",
        "pids limit updated",
    )?;
    let res = b.path().join("res.json");
    std::fs::write(&res, json!({"pids": {"limit": 44}}).to_string()).unwrap();
    root.ok(&["update", "--resources", res.to_str().unwrap(), &id]);
    check(
        host_cgroup_file(&id, "pids", "pids.max", "pids.max") == "44",
        "pids limit from --resources",
    )
}

fn events_stats_report_usage() -> R {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; sleep 100",
    ]);
    let root = Root::new();
    let id = unique_id("stats");
    root.ok(&["run", "-d", "-b", b.write().to_str().unwrap(), &id]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let v: serde_json::Value = serde_json::from_str(&root.ok(&["events", "--stats", &id])).unwrap();
    check(
        v["type"] == "stats" && v["id"] == id.as_str(),
        format!("{v}"),
    )?;
    check(
        v["data"]["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0,
        format!("cpu usage: {v}"),
    )?;
    check(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        format!("memory usage: {v}"),
    )?;
    check(
        v["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 1,
        format!("pids: {v}"),
    )
}

fn scheduler_ioprio_personality_affinity_applied() -> R {
    let (code, out, err) = sh(
        "uname -m; cut -d' ' -f19 /proc/self/stat; ionice -p $$; grep Cpus_allowed_list /proc/self/status",
        |b| {
            b.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
            b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
            b.config["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "0"});
            b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
        },
    );
    check(code == 0, err)?;
    let lines: Vec<&str> = out.lines().collect();
    check(
        lines.first() == Some(&"i686"),
        format!("personality LINUX32: {out}"),
    )?;
    check(
        lines.get(1) == Some(&"7"),
        format!("nice from the scheduler: {out}"),
    )?;
    check(
        lines
            .get(2)
            .is_some_and(|l| l.contains("best-effort") && l.contains('6')),
        format!("io priority: {out}"),
    )?;
    check(
        lines.get(3).is_some_and(|l| l.ends_with("\t0")),
        format!("cpu affinity: {out}"),
    )
}

fn net_devices_moved_into_container_and_renamed() -> R {
    let (host, peer) = (
        format!("bq{}", std::process::id() % 100000),
        format!("bp{}", std::process::id() % 100000),
    );
    let add = std::process::Command::new("ip")
        .args(["link", "add", &host, "type", "veth", "peer", "name", &peer])
        .status();
    check(
        add.is_ok_and(|s| s.success()),
        "create a veth pair on the host (iproute2)",
    )?;
    let (code, out, err) = sh(
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '",
        |b| {
            b.config["linux"]["netDevices"] = json!({ host.clone(): {"name": "eth9"} });
        },
    );
    let left = std::process::Command::new("ip")
        .args(["link", "show", &host])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &peer])
        .output();
    check(code == 0, err)?;
    check(
        out.trim() == "eth9 lo",
        format!("container interfaces: {out:?}"),
    )?;
    check(!left, "the device left the host namespace")?;
    // A device needs the container's own network namespace.
    let (code, _, err) = sh("true", |b| {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
        b.config["linux"]["netDevices"] = json!({"lo": {}});
    });
    check(
        code != 0 && err.contains("linux.netDevices"),
        format!("refused without a network namespace: {err}"),
    )
}

/// The test is the seccomp agent: it receives the listener fd and the container state at
/// listenerPath, then answers the container's mkdir with EACCES.
fn seccomp_notify_listener_reaches_the_agent() -> R {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || -> Result<serde_json::Value, String> {
        let (conn, _) = listener.accept().map_err(|e| e.to_string())?;
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        let mut buf = vec![0u8; 64 * 1024];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(|e| e.to_string())?;
        let mut fd = None;
        for c in msg.cmsgs().map_err(|e| e.to_string())? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                fd = fds.first().copied();
            }
        }
        let n = msg.bytes;
        let state: serde_json::Value =
            serde_json::from_slice(&buf[..n]).map_err(|e| e.to_string())?;
        let fd = fd.ok_or("no listener fd")?;
        let req = libseccomp::ScmpNotifReq::receive(fd).map_err(|e| format!("receive: {e}"))?;
        libseccomp::ScmpNotifResp::new_error(
            req.id,
            -libc::EACCES,
            libseccomp::ScmpNotifRespFlags::empty(),
        )
        .respond(fd)
        .map_err(|e| format!("respond: {e}"))?;
        Ok(state)
    });
    let (code, out, err) = sh("mkdir /tmp/x 2>&1; echo rc=$?", |b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "berth-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let state = agent.join().unwrap()?;
    check(code == 0, err)?;
    check(
        out.contains("Permission denied") && out.contains("rc=1"),
        format!("the agent's answer reached mkdir: {out}"),
    )?;
    check(
        state["fds"] == json!(["seccompFd"])
            && state["metadata"] == "berth-test"
            && state["state"]["id"].is_string(),
        format!("container process state: {state}"),
    )
}

fn run_in_foreground_relays_its_own_terminal() -> R {
    let (code, out, err) = sh("tty; echo hi; exit 3", |b| {
        b.config["process"]["terminal"] = json!(true);
    });
    check(code == 3, format!("exit code {code}: {err}"))?;
    check(
        out.contains("/dev/pts/0") && out.contains("hi\r\n"),
        format!("terminal output: {out:?}"),
    )
}

fn hook_timeout_fails_create_and_cleans_up() -> R {
    let mut b = Bundle::new(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "sleep 30"], "timeout": 1}]});
    let root = Root::new();
    let id = unique_id("hooktimeout");
    let t = std::time::Instant::now();
    let out = root.run(&["create", "-b", b.write().to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        !out.status.success() && err.contains("timed out"),
        format!("{err}"),
    )?;
    check(
        t.elapsed() < std::time::Duration::from_secs(20),
        "the hook was stopped at its timeout",
    )?;
    check(
        !root.dir.path().join(&id).exists() && !default_cgroup_dir(&id).exists(),
        "nothing left",
    )
}

fn memory_policy_applied() -> R {
    let (code, out, err) = sh("head -n 1 /proc/self/numa_maps", |b| {
        b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    });
    check(code == 0, err)?;
    check(out.contains("bind:0"), format!("numa_maps: {out}"))
}

fn rootfs_propagation_applied() -> R {
    let root_line = "awk '$5 == \"/\"' /proc/self/mountinfo";
    let (code, out, err) = sh(root_line, |b| {
        b.config["linux"]["rootfsPropagation"] = json!("shared");
    });
    check(code == 0, err)?;
    check(out.contains(" shared:"), format!("shared root: {out}"))?;
    let (code, out, err) = sh(root_line, |b| {
        b.config["linux"]["rootfsPropagation"] = json!("private");
    });
    check(code == 0, err)?;
    check(
        !out.contains("shared:") && !out.contains("master:"),
        format!("private root: {out}"),
    )
}

fn signals_default_and_unblocked_in_container() -> R {
    // Regression: Rust's runtime ignores SIGPIPE, which leaked into containers.
    let (code, out, err) = sh(
        "grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -c 3 | wc -c",
        |_| {},
    );
    check(code == 0, err)?;
    check(
        status_field(&out, "SigBlk:") == "0000000000000000",
        format!("blocked: {out}"),
    )?;
    let ign = u64::from_str_radix(&status_field(&out, "SigIgn:"), 16).unwrap_or(u64::MAX);
    check(
        ign & (1 << (libc::SIGPIPE - 1)) == 0,
        format!("SIGPIPE ignored: {out}"),
    )?;
    check(
        out.trim_end().ends_with('3'),
        format!("yes | head ends: {out}"),
    )
}
