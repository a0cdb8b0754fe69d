//! berthctl as a process. The endpoint tests need nothing; the end-to-end tests drive the
//! real berthd (built beside berthctl), a loopback docker-registry and a CNI bridge, as
//! root. A missing prerequisite reports the test ignored with the reason, or fails it when
//! `CI` is set.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::{Value, json};
use support::*;

type TestResult = Result<(), Failed>;

const SHORT: Duration = Duration::from_secs(30);
const LONG: Duration = Duration::from_secs(180);

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> TestResult {
    if cond { Ok(()) } else { Err(msg().into()) }
}

struct Shared {
    registry: Registry,
    network: Network,
}

static SHARED_STARTED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED_STARTED.get_or_init(|| Shared {
        registry: Registry::start(),
        network: Network::new("berthctl0", 232),
    })
}

// --- endpoint rules, no berthd needed ---

fn missing_berthd_error_names_the_socket() -> TestResult {
    let r = berthctl(
        &["-r", "unix:///nonexistent/berth.sock", "version"],
        &[],
        SHORT,
    );
    ensure(!r.ok(), || format!("{r:?}"))?;
    ensure(
        r.stderr
            .contains("cannot connect to unix:///nonexistent/berth.sock: is berthd running?"),
        || format!("{r:?}"),
    )
}

fn endpoint_precedence_flag_env_config_default() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("crictl.yaml");
    std::fs::write(
        &cfg,
        "runtime-endpoint: unix:///from/config.sock\ntimeout: 3\n",
    )?;
    let cfg = cfg.to_str().unwrap();
    let env = [("CONTAINER_RUNTIME_ENDPOINT", "unix:///from/env.sock")];
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Vec<&str>, Env, &str); 4] = [
        (vec!["pods"], &[], "unix:///run/berth/berth.sock"),
        (
            vec!["--config", cfg, "pods"],
            &[],
            "unix:///from/config.sock",
        ),
        (vec!["--config", cfg, "pods"], &env, "unix:///from/env.sock"),
        (
            vec!["--config", cfg, "-r", "unix:///from/flag.sock", "pods"],
            &env,
            "unix:///from/flag.sock",
        ),
    ];
    for (args, env, want) in cases {
        let r = berthctl(&args, env, SHORT);
        ensure(
            r.stderr.contains(&format!("cannot connect to {want}")),
            || format!("{args:?} {env:?}: want {want}: {r:?}"),
        )?;
    }
    // The image endpoint follows the runtime endpoint unless named.
    let r = berthctl(&["-r", "unix:///rt.sock", "images"], &[], SHORT);
    ensure(
        r.stderr.contains("cannot connect to unix:///rt.sock"),
        || format!("{r:?}"),
    )?;
    let r = berthctl(
        &["-r", "unix:///rt.sock", "images"],
        &[("IMAGE_SERVICE_ENDPOINT", "unix:///img.sock")],
        SHORT,
    );
    ensure(
        r.stderr.contains("cannot connect to unix:///img.sock"),
        || format!("{r:?}"),
    )
}

fn streaming_commands_name_bad_ports() -> TestResult {
    let r = berthctl(&["port-forward", "abc", "x:80"], &[], SHORT);
    ensure(!r.ok() && r.stderr.contains("want [local:]remote"), || {
        format!("{r:?}")
    })
}

fn completion_scripts_cover_every_command() -> TestResult {
    for shell in ["bash", "zsh", "fish"] {
        let r = berthctl(&["completion", shell], &[], SHORT);
        ensure(r.ok(), || format!("{shell}: {r:?}"))?;
        for cmd in [
            "runp",
            "port-forward",
            "imagefsinfo",
            "statsp",
            "--no-trunc",
        ] {
            ensure(r.stdout.contains(cmd.trim_start_matches('-')), || {
                format!("{shell} lacks {cmd}: {}", r.stdout)
            })?;
        }
    }
    let bash = berthctl(&["completion"], &[], SHORT).stdout;
    ensure(
        bash.contains("complete -o default -F _berthctl berthctl"),
        || bash.clone(),
    )?;
    let check = std::process::Command::new("bash")
        .args(["-n", "-c", &bash])
        .status()?;
    ensure(check.success(), || "bash -n rejects the script".into())
}

// --- end to end against berthd ---

fn write_json(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

/// Runs berthctl against `b`, failing with its output when it fails.
fn ctl(b: &Berthd, args: &[&str]) -> Result<String, Failed> {
    ctl_at(&b.endpoint(), args)
}

/// Runs berthctl against `ep`, failing with its output when it fails.
fn ctl_at(ep: &str, args: &[&str]) -> Result<String, Failed> {
    let mut all = vec!["-r", ep, "--timeout", "20"];
    all.extend_from_slice(args);
    let r = berthctl(&all, &[], LONG);
    ensure(r.ok(), || format!("berthctl {args:?}: {r:?}"))?;
    Ok(r.stdout)
}

/// Table rows as cells (columns are separated by at least 3 spaces).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn pod_and_container_lifecycle_through_berthctl() -> TestResult {
    let s = shared();
    let b = Berthd::start(&s.network, &s.registry, "/berthctl-e2e");
    let result = lifecycle(&b, &s.registry);
    if result.is_err() {
        eprintln!("--- berthd log ---\n{}", b.log());
        let ep = b.endpoint();
        let _ = berthctl(&["-r", &ep, "rmp", "-f", "-a"], &[], LONG);
    }
    drop(b);
    remove_cgroup_parent("/berthctl-e2e");
    result
}

fn lifecycle(b: &Berthd, registry: &Registry) -> TestResult {
    let image = registry.busybox();
    let tmp = tempfile::tempdir()?;

    // version and info
    let v = ctl(b, &["version"])?;
    ensure(
        v.contains("RuntimeName:  berth") && v.contains("RuntimeApiVersion:  v1"),
        || v.clone(),
    )?;
    let vj: Value = serde_json::from_str(&ctl(b, &["version", "-o", "json"])?)?;
    ensure(vj["runtimeApiVersion"] == "v1", || vj.to_string())?;
    let iy = ctl(b, &["info", "-o", "yaml"])?;
    ensure(
        iy.contains("status:\n") && iy.contains("conditions:"),
        || iy.clone(),
    )?;
    let info: Value = serde_json::from_str(&ctl(b, &["info"])?)?;
    ensure(info["status"]["conditions"].is_array(), || info.to_string())?;

    // pull, images, inspecti
    let out = ctl(b, &["pull", &image])?;
    ensure(out.starts_with("Image is up to date for sha256:"), || {
        out.clone()
    })?;
    let table = rows(&ctl(b, &["images"])?);
    ensure(table[0] == ["IMAGE", "TAG", "IMAGE ID", "SIZE"], || {
        format!("{table:?}")
    })?;
    let repo = image.rsplit_once(':').unwrap().0;
    let row = table
        .iter()
        .find(|r| r[0] == repo)
        .ok_or_else(|| format!("{table:?}"))?;
    ensure(
        row[1] == "1" && row[2].len() == 13 && row[3].ends_with('B'),
        || format!("{row:?}"),
    )?;
    let ids = ctl(b, &["images", "-q"])?;
    ensure(ids.lines().any(|l| l.starts_with("sha256:")), || {
        ids.clone()
    })?;
    let digests = rows(&ctl(b, &["images", "--digests"])?);
    ensure(
        digests[0] == ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"],
        || format!("{digests:?}"),
    )?;
    let inspecti: Value = serde_json::from_str(&ctl(b, &["inspecti", &image])?)?;
    ensure(inspecti["status"]["repoTags"][0] == image.as_str(), || {
        inspecti.to_string()
    })?;
    let fs: Value = serde_json::from_str(&ctl(b, &["imagefsinfo"])?)?;
    ensure(fs["status"]["imageFilesystems"].is_array(), || {
        fs.to_string()
    })?;

    // runp, create, start
    let logs = tmp.path().join("logs");
    let pod_cfg = json!({
        "metadata": {"name": "ctl-web", "namespace": "ctl-e2e", "uid": "ctl-web-uid", "attempt": 0},
        "hostname": "ctl-web",
        "log_directory": logs.join("ctl-web"),
        "labels": {"app": "ctl-web"},
        "linux": {}
    });
    let pod_file = write_json(tmp.path(), "pod.json", &pod_cfg);
    let ctr_file = write_json(
        tmp.path(),
        "ctr.json",
        &json!({
            "metadata": {"name": "app"},
            "image": {"image": image},
            "command": ["/bin/sh", "-c", "echo hello; echo oops >&2; sleep 0.3; echo world; exec sleep 3600"],
            "log_path": "app/0.log",
            "labels": {"tier": "front"},
            "linux": {}
        }),
    );
    let pod_id = ctl(b, &["runp", &pod_file])?.trim().to_string();
    ensure(pod_id.len() >= 13, || {
        format!("line {}: {:?}", line!(), pod_id)
    })?;
    let ctr_id = ctl(b, &["create", &pod_id, &ctr_file, &pod_file])?
        .trim()
        .to_string();
    ensure(ctr_id.len() >= 13, || {
        format!("line {}: {:?}", line!(), ctr_id)
    })?;
    // A unique prefix is enough.
    let started = ctl(b, &["start", &ctr_id[..8]])?;
    ensure(started.trim() == ctr_id, || {
        format!("line {}: {:?}", line!(), started)
    })?;

    // pods and ps, with filters
    let pods = rows(&ctl(b, &["pods"])?);
    ensure(
        pods[0]
            == [
                "POD ID",
                "CREATED",
                "STATE",
                "NAME",
                "NAMESPACE",
                "ATTEMPT",
                "RUNTIME",
            ],
        || format!("{pods:?}"),
    )?;
    ensure(
        pods.len() == 2
            && pods[1][0] == pod_id[..13]
            && pods[1][1].ends_with(" ago")
            && pods[1][2..] == ["Ready", "ctl-web", "ctl-e2e", "0", "(default)"],
        || format!("{pods:?}"),
    )?;
    let q = ctl(
        b,
        &[
            "pods",
            "-q",
            "--name",
            "ctl-w",
            "--namespace",
            "ctl-e2e",
            "--label",
            "app=ctl-web",
            "--state",
            "ready",
        ],
    )?;
    ensure(q.trim() == pod_id, || format!("line {}: {:?}", line!(), q))?;
    let none = ctl(b, &["pods", "-q", "--label", "app=other"])?;
    ensure(none.trim().is_empty(), || {
        format!("line {}: {:?}", line!(), none)
    })?;
    let ps = rows(&ctl(b, &["ps"])?);
    ensure(
        ps[0]
            == [
                "CONTAINER",
                "IMAGE",
                "CREATED",
                "STATE",
                "NAME",
                "ATTEMPT",
                "POD ID",
                "POD",
                "NAMESPACE",
            ],
        || format!("{ps:?}"),
    )?;
    ensure(
        ps.len() == 2
            && ps[1][0] == ctr_id[..13]
            && ps[1][3..] == ["Running", "app", "0", &pod_id[..13], "ctl-web", "ctl-e2e"],
        || format!("{ps:?}"),
    )?;
    let q = ctl(
        b,
        &[
            "ps",
            "-q",
            "--pod",
            &pod_id,
            "--name",
            "app",
            "--label",
            "tier=front",
            "--state",
            "running",
            "--namespace",
            "e2e",
        ],
    )?;
    ensure(q.trim() == ctr_id, || format!("line {}: {:?}", line!(), q))?;
    let psj: Value = serde_json::from_str(&ctl(b, &["ps", "-o", "json"])?)?;
    ensure(psj["containers"][0]["state"] == "CONTAINER_RUNNING", || {
        psj.to_string()
    })?;
    let yaml = ctl(b, &["pods", "-o", "yaml"])?;
    ensure(
        yaml.starts_with("items:\n- ") && yaml.contains("state: SANDBOX_READY"),
        || yaml.clone(),
    )?;

    // With BERTHCTL_CRICTL naming a crictl binary, the same commands through crictl print
    // the same (ages and sampling timestamps aside).
    if let Some(crictl) = std::env::var_os("BERTHCTL_CRICTL") {
        same_as_crictl(b, Path::new(&crictl), &ctr_id, &pod_id, &image)?;
    }

    // exec -s: output and exit code
    let out = ctl(b, &["exec", "-s", &ctr_id, "sh", "-c", "echo from-exec"])?;
    ensure(out == "from-exec\n", || {
        format!("line {}: {:?}", line!(), out)
    })?;
    let ep = b.endpoint();
    let r = berthctl(
        &[
            "-r",
            &ep,
            "exec",
            "-s",
            &ctr_id,
            "sh",
            "-c",
            "echo bad >&2; exit 7",
        ],
        &[],
        LONG,
    );
    ensure(r.code == Some(7) && r.stderr.contains("bad"), || {
        format!("{r:?}")
    })?;
    // exec without -s streams, as crictl's does
    let out = ctl(b, &["exec", &ctr_id, "sh", "-c", "echo plain"])?;
    ensure(out == "plain\n", || format!("line {}: {:?}", line!(), out))?;
    streaming(b, &image, tmp.path(), &ctr_id)?;

    // logs: stdout and stderr split, --tail, --timestamps, --since
    ensure(
        eventually(Duration::from_secs(10), || {
            ctl(b, &["logs", &ctr_id]).is_ok_and(|o| o.contains("world"))
        }),
        || "log never showed world".into(),
    )?;
    let r = berthctl(&["-r", &ep, "logs", &ctr_id], &[], SHORT);
    ensure(r.stdout == "hello\nworld\n" && r.stderr == "oops\n", || {
        format!("{r:?}")
    })?;
    let tail = ctl(b, &["logs", "--tail", "1", &ctr_id])?;
    ensure(tail == "world\n", || {
        format!("line {}: {:?}", line!(), tail)
    })?;
    let ts = ctl(b, &["logs", "-t", "--tail", "1", &ctr_id])?;
    ensure(ts.ends_with("Z world\n") && ts.starts_with("20"), || {
        ts.clone()
    })?;
    let later = ctl(b, &["logs", "--since", "2999-01-01T00:00:00Z", &ctr_id])?;
    ensure(later.is_empty(), || {
        format!("line {}: {:?}", line!(), later)
    })?;
    let recent = ctl(b, &["logs", "--since", "1h", &ctr_id])?;
    ensure(recent == "hello\nworld\n", || {
        format!("line {}: {:?}", line!(), recent)
    })?;

    // inspect and inspectp
    let ins: Value = serde_json::from_str(&ctl(b, &["inspect", &ctr_id])?)?;
    ensure(ins["status"]["state"] == "CONTAINER_RUNNING", || {
        ins.to_string()
    })?;
    ensure(ins["status"]["id"] == ctr_id.as_str(), || ins.to_string())?;
    let insp: Value = serde_json::from_str(&ctl(b, &["inspectp", &pod_id])?)?;
    ensure(insp["status"]["state"] == "SANDBOX_READY", || {
        insp.to_string()
    })?;

    // stats and statsp
    let st = rows(&ctl(b, &["stats"])?);
    ensure(
        st[0]
            == [
                "CONTAINER",
                "NAME",
                "CPU %",
                "MEM",
                "DISK",
                "INODES",
                "SWAP",
            ],
        || format!("{st:?}"),
    )?;
    ensure(
        st.len() == 2 && st[1][0] == ctr_id[..13] && st[1][1] == "app" && st[1][2].contains('.'),
        || format!("{st:?}"),
    )?;
    let sp = rows(&ctl(b, &["statsp"])?);
    ensure(sp[0] == ["POD", "POD ID", "CPU %", "MEM"], || {
        format!("{sp:?}")
    })?;
    ensure(
        sp.len() == 2 && sp[1][0] == "ctl-web" && sp[1][1] == pod_id[..13],
        || format!("{sp:?}"),
    )?;

    // update
    let out = ctl(b, &["update", "--memory", "64m", &ctr_id])?;
    ensure(out.trim() == ctr_id, || {
        format!("line {}: {:?}", line!(), out)
    })?;

    // rm refuses a running container without -f; stop, rm
    let r = berthctl(&["-r", &ep, "rm", &ctr_id], &[], SHORT);
    ensure(!r.ok() && r.stderr.contains("is running"), || {
        format!("{r:?}")
    })?;
    let out = ctl(b, &["stop", "--timeout", "1", &ctr_id])?;
    ensure(out.trim() == ctr_id, || {
        format!("line {}: {:?}", line!(), out)
    })?;
    let ps = rows(&ctl(b, &["ps", "-a"])?);
    ensure(ps.len() == 2 && ps[1][3] == "Exited", || format!("{ps:?}"))?;
    let ps = rows(&ctl(b, &["ps"])?);
    ensure(ps.len() == 1, || format!("{ps:?}"))?;
    let out = ctl(b, &["rm", &ctr_id])?;
    ensure(out.trim() == ctr_id, || {
        format!("line {}: {:?}", line!(), out)
    })?;
    ensure(ctl(b, &["ps", "-a", "-q"])?.trim().is_empty(), || {
        "container left".into()
    })?;

    // run: pod + container + start in one, then rmp -f removes everything
    // events and logs -f: a container that prints three lines and exits
    let events = Background::spawn(&["-r", &ep, "events", "-o", "table"]);
    std::thread::sleep(Duration::from_millis(300));
    let ticker_file = write_json(
        tmp.path(),
        "ticker.json",
        &json!({"metadata": {"name": "ticker"}, "image": {"image": image},
                "command": ["/bin/sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.5; done"],
                "log_path": "ticker.log", "linux": {}}),
    );
    let ticker = ctl(b, &["create", &pod_id, &ticker_file, &pod_file])?
        .trim()
        .to_string();
    ctl(b, &["start", &ticker])?;
    let mut follow = Background::spawn(&["-r", &ep, "logs", "-f", &ticker]);
    ensure(follow.exits_within(Duration::from_secs(20)), || {
        format!(
            "logs -f did not end with the container: {:?}",
            follow.output()
        )
    })?;
    ensure(follow.output() == "tick 1\ntick 2\ntick 3\n", || {
        format!("logs -f: {:?}", follow.output())
    })?;
    let want = [
        "CONTAINER_CREATED_EVENT",
        "CONTAINER_STARTED_EVENT",
        "CONTAINER_STOPPED_EVENT",
    ];
    let seen = eventually(Duration::from_secs(10), || {
        let out = events.output();
        want.iter().all(|w| {
            out.lines()
                .any(|l| l.contains(w) && l.contains(&ticker) && l.ends_with("ctl-web"))
        })
    });
    ensure(seen, || format!("events: {:?}", events.output()))?;
    drop(events);
    ctl(b, &["rm", &ticker])?;

    // (the pod config as YAML this time)
    let run_pod = tmp.path().join("pod2.yaml");
    std::fs::write(
        &run_pod,
        format!(
            "metadata:\n  name: ctl-run\n  namespace: ctl-e2e\n  uid: ctl-run-uid\nlog_directory: {}\nlinux: {{}}\n",
            logs.join("ctl-run").display()
        ),
    )?;
    let run_pod = run_pod.to_string_lossy().into_owned();
    let run_ctr = write_json(
        tmp.path(),
        "ctr2.json",
        &json!({"metadata": {"name": "sleeper"}, "image": {"image": image},
                "command": ["/bin/sh", "-c", "exec sleep 3600"], "log_path": "sleeper.log", "linux": {}}),
    );
    let id = ctl(b, &["run", &run_ctr, &run_pod])?.trim().to_string();
    let ps = rows(&ctl(b, &["ps", "--name", "sleeper"])?);
    ensure(
        ps.len() == 2 && ps[1][0] == id[..13] && ps[1][7] == "ctl-run",
        || format!("{ps:?}"),
    )?;

    // stopp, rmp
    let out = ctl(b, &["stopp", &pod_id])?;
    ensure(out.trim() == format!("Stopped sandbox {pod_id}"), || {
        out.clone()
    })?;
    let pods = rows(&ctl(b, &["pods", "--id", &pod_id])?);
    ensure(pods.len() == 2 && pods[1][2] == "NotReady", || {
        format!("{pods:?}")
    })?;
    let out = ctl(b, &["rmp", &pod_id])?;
    ensure(out.trim() == format!("Removed sandbox {pod_id}"), || {
        out.clone()
    })?;
    let r = berthctl(&["-r", &ep, "rmp", "ctl-run-not-an-id"], &[], SHORT);
    ensure(!r.ok(), || format!("{r:?}"))?;
    let out = ctl(b, &["rmp", "-f", "-a"])?;
    ensure(
        out.lines().count() == 1 && out.starts_with("Removed sandbox "),
        || out.clone(),
    )?;
    ensure(ctl(b, &["pods", "-q"])?.trim().is_empty(), || {
        "pods left".into()
    })?;

    // rmi --prune keeps nothing unused (the pinned pause image stays); rmi by name
    ctl(b, &["pull", &image])?;
    let out = ctl(b, &["rmi", &image])?;
    ensure(out.trim() == format!("Deleted: {image}"), || {
        format!("line {}: {:?}", line!(), out)
    })?;
    let imgs = ctl(b, &["images"])?;
    ensure(!imgs.contains(repo), || {
        format!("line {}: {:?}", line!(), imgs)
    })?;
    ctl(b, &["pull", &image])?;
    let out = ctl(b, &["rmi", "--prune"])?;
    ensure(out.contains(&format!("Deleted: {image}")), || {
        format!("line {}: {:?}", line!(), out)
    })?;
    Ok(())
}

/// Runs berthctl against `b` with `input` on its stdin.
fn ctl_with_stdin(b: &Berthd, args: &[&str], input: &[u8]) -> Result<Ran, Failed> {
    let mut child = Command::new(BERTHCTL)
        .args(["--config", "/nonexistent/crictl.yaml", "-r", &b.endpoint()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().unwrap().write_all(input)?;
    let out = child.wait_with_output()?;
    Ok(Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Reads `r` on a thread into a shared string.
fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

/// exec -i -t (through a pty), exec -i, attach and port-forward over berthd's streaming
/// server.
fn streaming(b: &Berthd, image: &str, tmp: &Path, ctr_id: &str) -> TestResult {
    let ep = b.endpoint();

    // exec -it: a shell on a terminal; its exit code is berthctl's
    let pty = nix::pty::openpty(
        Some(&nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None,
    )?;
    let slave = pty.slave;
    // Kept open to read the terminal's modes after berthctl has gone.
    let ours = slave.try_clone()?;
    let mut child = Command::new(BERTHCTL)
        .args(["--config", "/nonexistent/crictl.yaml", "-r", &ep])
        .args(["exec", "-it", ctr_id, "sh"])
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .spawn()?;
    let mut master = std::fs::File::from(pty.master);
    let seen = collect(master.try_clone()?);
    std::thread::sleep(Duration::from_millis(500));
    master.write_all(b"echo hi-$((1+2)); exit 7\r")?;
    let exited = eventually(SHORT, || child.try_wait().ok().flatten().is_some());
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait()?;
    std::thread::sleep(Duration::from_millis(200));
    let out = seen.lock().unwrap().clone();
    ensure(
        exited && status.code() == Some(7) && out.contains("hi-3"),
        || format!("exec -it: exited {exited} {status:?} {out:?}"),
    )?;
    let modes = nix::sys::termios::tcgetattr(&ours)?.local_flags;
    use nix::sys::termios::LocalFlags;
    ensure(
        modes.contains(LocalFlags::ICANON | LocalFlags::ECHO),
        || format!("terminal left raw: {modes:?}"),
    )?;
    drop(ours);

    // streaming exec keeps stdout and stderr apart and passes the exit code on
    let r = berthctl(
        &[
            "-r",
            &ep,
            "exec",
            ctr_id,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        &[],
        SHORT,
    );
    ensure(
        r.code == Some(3) && r.stdout == "out\n" && r.stderr == "err\n",
        || format!("exec: {r:?}"),
    )?;
    let r = berthctl(&["-r", &ep, "exec", ctr_id, "no-such-command"], &[], SHORT);
    ensure(
        r.code == Some(1) && r.stderr.contains("no-such-command"),
        || format!("exec missing command: {r:?}"),
    )?;
    let r = berthctl(&["-r", &ep, "exec", "-s", "-i", ctr_id, "sh"], &[], SHORT);
    ensure(
        !r.ok() && r.stderr.contains("-s runs through ExecSync"),
        || format!("exec -s -i: {r:?}"),
    )?;

    // exec -i: piped stdin reaches the command and ends it
    let r = ctl_with_stdin(
        b,
        &["exec", "-i", ctr_id, "busybox", "cat"],
        b"through-cat\n",
    )?;
    ensure(r.ok() && r.stdout == "through-cat\n", || {
        format!("exec -i: {r:?}")
    })?;

    // a pod with a container reading its stdin, and an httpd
    let pod_file = write_json(
        tmp,
        "stream-pod.json",
        &json!({
            "metadata": {"name": "ctl-stream", "namespace": "ctl-e2e", "uid": "ctl-stream-uid", "attempt": 0},
            "log_directory": tmp.join("logs").join("ctl-stream"),
            "linux": {}
        }),
    );
    let pod = ctl(b, &["runp", &pod_file])?.trim().to_string();
    let result = (|| -> TestResult {
        let reader = write_json(
            tmp,
            "reader.json",
            &json!({
                "metadata": {"name": "reader"}, "image": {"image": image},
                "command": ["/bin/sh", "-c", "while read l; do echo got-$l; done"],
                "stdin": true, "log_path": "reader.log", "linux": {}
            }),
        );
        let reader = ctl(b, &["create", &pod, &reader, &pod_file])?
            .trim()
            .to_string();
        ctl(b, &["start", &reader])?;
        let mut attach = Command::new(BERTHCTL)
            .args(["--config", "/nonexistent/crictl.yaml", "-r", &ep])
            .args(["attach", "-i", &reader])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let seen = collect(attach.stdout.take().unwrap());
        let mut input = attach.stdin.take().unwrap();
        let got = eventually(SHORT, || {
            let _ = input.write_all(b"ping\n");
            std::thread::sleep(Duration::from_millis(300));
            seen.lock().unwrap().contains("got-ping")
        });
        let _ = attach.kill();
        let _ = attach.wait();
        ensure(got, || format!("attach: {:?}", seen.lock().unwrap()))?;

        let httpd = write_json(
            tmp,
            "httpd.json",
            &json!({
                "metadata": {"name": "httpd"}, "image": {"image": image},
                "command": ["/bin/sh", "-c", "mkdir /www && echo forwarded-page > /www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /www"],
                "log_path": "httpd.log", "linux": {}
            }),
        );
        let httpd = ctl(b, &["create", &pod, &httpd, &pod_file])?
            .trim()
            .to_string();
        ctl(b, &["start", &httpd])?;
        let pf = Background::spawn(&["-r", &ep, "port-forward", &pod, "0:8080"]);
        let mut port = None;
        eventually(SHORT, || {
            port = pf
                .output()
                .lines()
                .find_map(|l| l.strip_prefix("Forwarding from 127.0.0.1:"))
                .and_then(|l| l.split_once(" -> 8080"))
                .and_then(|(p, _)| p.parse::<u16>().ok());
            port.is_some()
        });
        let port = port.ok_or_else(|| format!("port-forward: {:?}", pf.output()))?;
        let mut page = String::new();
        let fetched = eventually(SHORT, || {
            page.clear();
            let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = c.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
            let _ = c.read_to_string(&mut page);
            page.starts_with("HTTP/1.") && page.contains("forwarded-page")
        });
        ensure(fetched, || format!("port-forward GET: {page:?}"))?;
        drop(pf);

        // nothing listening on the remote port: that connection closes, the error is shown
        let mut pf = Command::new(BERTHCTL)
            .args(["--config", "/nonexistent/crictl.yaml", "-r", &ep])
            .args(["port-forward", &pod, "0:9"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = collect(pf.stdout.take().unwrap());
        let err = collect(pf.stderr.take().unwrap());
        let mut port = None;
        eventually(SHORT, || {
            port = out
                .lock()
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("Forwarding from 127.0.0.1:"))
                .and_then(|l| l.split_once(" -> 9"))
                .and_then(|(p, _)| p.parse::<u16>().ok());
            port.is_some()
        });
        let mut got = Vec::new();
        if let Some(port) = port {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
            c.set_read_timeout(Some(SHORT))?;
            let _ = c.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let _ = c.read_to_end(&mut got);
        }
        let reported = eventually(SHORT, || err.lock().unwrap().contains("port-forward"));
        let _ = pf.kill();
        let _ = pf.wait();
        ensure(port.is_some() && got.is_empty() && reported, || {
            format!(
                "port-forward to a closed port: {port:?} {got:?} {:?}",
                err.lock().unwrap()
            )
        })
    })();
    ctl(b, &["rmp", "-f", &pod])?;
    result
}

fn same_as_crictl(b: &Berthd, crictl: &Path, ctr: &str, pod: &str, image: &str) -> TestResult {
    let ep = b.endpoint();
    let cfg = tempfile::NamedTempFile::new()?;
    let cmds: Vec<Vec<&str>> = vec![
        vec!["version"],
        vec!["info"],
        vec!["pods"],
        vec!["pods", "-o", "json"],
        vec!["pods", "-o", "yaml"],
        vec!["ps", "-a", "--label", "none=none"],
        vec!["ps", "-o", "json"],
        vec!["images"],
        vec!["images", "--digests"],
        vec!["images", "-o", "json"],
        vec!["inspect", ctr],
        vec!["inspectp", pod],
        vec!["inspecti", image],
        vec!["imagefsinfo"],
    ];
    let mut diffs = Vec::new();
    for args in cmds {
        let theirs = std::process::Command::new(crictl)
            .arg("--config")
            .arg(cfg.path())
            .args(["-r", &ep, "-i", &ep])
            .args(&args)
            .output()?;
        // crictl stats clears the screen first.
        let theirs = String::from_utf8_lossy(&theirs.stdout).replace("\x1b[2J\x1b[H", "");
        let ours = ctl(b, &args)?;
        let norm = |out: &str| -> String {
            match serde_json::from_str::<Value>(out) {
                Ok(v) => without_timestamps(v).to_string(),
                Err(_) => format!(
                    "{:?}",
                    rows(out)
                        .into_iter()
                        .map(|r| r
                            .into_iter()
                            .map(|c| if c.ends_with(" ago") {
                                "<AGE>".to_string()
                            } else {
                                c
                            })
                            .collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                ),
            }
        };
        if norm(&theirs) != norm(&ours) {
            diffs.push(format!(
                "{args:?}\n  crictl:   {theirs}\n  berthctl: {ours}"
            ));
        }
    }
    ensure(diffs.is_empty(), || diffs.join("\n"))
}

/// Drops sampling times ("timestamp"), which differ between two calls, and unset fields
/// (crictl shows some as null and leaves others out).
fn without_timestamps(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, v)| k != "timestamp" && !v.is_null())
                .map(|(k, v)| (k, without_timestamps(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_timestamps).collect()),
        other => other,
    }
}

/// The same berthctl commands against berthd and against Debian's containerd (started
/// here with its own root, state and socket on the same CNI network and registry): their
/// outputs, with ids and ages normalized, must be the same.
fn containerd_gives_equivalent_output() -> TestResult {
    let s = shared();
    let berth = {
        let b = Berthd::start(&s.network, &s.registry, "/berthctl-cmp");
        let t = transcript(&b.endpoint(), &s.registry, "berthd", true);
        if t.is_err() {
            eprintln!("--- berthd log ---\n{}", b.log());
            let _ = berthctl(&["-r", &b.endpoint(), "rmp", "-f", "-a"], &[], LONG);
        }
        t?
    };
    remove_cgroup_parent("/berthctl-cmp");
    let containerd = {
        // Debian's runc 1.1.5 cannot start containers on this kernel ("can't get final
        // child's PID from pipe"), so containerd's runc shim calls berth-oci unless
        // BERTHCTL_CMP_RUNC is set. With berth-oci, containerd's shim cannot finish a
        // container's exit (berth-oci refuses `kill --all` on a stopped container, runc
        // allows it), so the stop/remove half of the transcript is compared only with runc.
        let runc = std::env::var_os("BERTHCTL_CMP_RUNC").is_some();
        let c = Containerd::start(
            &s.network,
            &s.registry,
            (!runc).then(|| sibling("berth-oci")).as_deref(),
        );
        let t = transcript(&c.endpoint(), &s.registry, "containerd", runc);
        if t.is_err() {
            eprintln!("--- containerd log ---\n{}", c.log());
            let _ = berthctl(&["-r", &c.endpoint(), "rmp", "-f", "-a"], &[], LONG);
        }
        t
    };
    remove_cgroup_parent("/berthctl-cmp");
    let containerd = containerd?;
    let diffs: Vec<String> = berth
        .iter()
        .zip(&containerd)
        .filter(|(a, b)| a != b)
        .map(|((step, a), (_, b))| format!("{step}:\n  berthd:     {a}\n  containerd: {b}"))
        .collect();
    eprintln!(
        "compared {} steps: {}",
        containerd.len(),
        containerd
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure(diffs.is_empty(), || {
        format!("berthctl output differs:\n{}", diffs.join("\n"))
    })
}

/// What berthctl prints for one pod's life on the runtime at `ep`, normalized: ids become
/// <POD>/<CTR>, ages <AGE>, table cells are split into lists.
fn transcript(
    ep: &str,
    registry: &Registry,
    name: &str,
    stop: bool,
) -> Result<Vec<(String, String)>, Failed> {
    let image = registry.busybox();
    let repo = image.rsplit_once(':').unwrap().0.to_string();
    let tmp = tempfile::tempdir()?;
    let mut t: Vec<(String, String)> = Vec::new();
    let mut ids: Vec<(String, &str)> = Vec::new();
    let norm = |ids: &[(String, &str)], out: &str| -> String {
        let mut out = out.to_string();
        for (id, tag) in ids {
            out = out.replace(id.as_str(), tag).replace(&id[..13], tag);
        }
        out
    };
    let table = |ids: &[(String, &str)], out: &str| -> String {
        let mut rows = rows(&norm(ids, out));
        for r in &mut rows {
            for c in r.iter_mut().filter(|c| c.ends_with(" ago")) {
                *c = "<AGE>".into();
            }
        }
        format!("{rows:?}")
    };

    let v = ctl_at(ep, &["version"])?;
    let keys: Vec<&str> = v.lines().filter_map(|l| l.split(':').next()).collect();
    t.push(("version keys".into(), format!("{keys:?}")));
    t.push((
        "version api".into(),
        v.lines()
            .filter(|l| l.starts_with("RuntimeApiVersion"))
            .collect(),
    ));
    let out = ctl_at(ep, &["pull", &image])?;
    t.push(("pull".into(), out));
    let imgs = rows(&ctl_at(ep, &["images"])?);
    let row = imgs
        .iter()
        .find(|r| r[0] == repo)
        .cloned()
        .unwrap_or_default();
    t.push(("images header".into(), format!("{:?}", imgs[0])));
    t.push((
        "images row".into(),
        format!("{:?}", &row[..row.len().min(3)]),
    ));

    let pod_file = write_json(
        tmp.path(),
        "pod.json",
        &json!({"metadata": {"name": "cmp", "namespace": "ctl-e2e", "uid": format!("cmp-{name}")},
                "log_directory": tmp.path().join("logs"),
                "linux": {"cgroup_parent": "/berthctl-cmp"}}),
    );
    let ctr_file = write_json(
        tmp.path(),
        "ctr.json",
        &json!({"metadata": {"name": "app"}, "image": {"image": image},
                "command": ["/bin/sh", "-c", "echo hello; echo oops >&2; sleep 0.3; echo world; exec sleep 3600"],
                "log_path": "app.log", "linux": {}}),
    );
    let pod = ctl_at(ep, &["runp", &pod_file])?.trim().to_string();
    ids.push((pod.clone(), "<POD>"));
    let ctr = ctl_at(ep, &["create", &pod, &ctr_file, &pod_file])?
        .trim()
        .to_string();
    ids.push((ctr.clone(), "<CTR>"));
    t.push(("create".into(), norm(&ids, &ctr)));
    t.push(("start".into(), norm(&ids, &ctl_at(ep, &["start", &ctr])?)));
    t.push(("pods".into(), table(&ids, &ctl_at(ep, &["pods"])?)));
    let ps = table(&ids, &ctl_at(ep, &["ps"])?);
    t.push(("ps".into(), ps));
    t.push((
        "exec -s".into(),
        ctl_at(ep, &["exec", "-s", &ctr, "sh", "-c", "echo hi"])?,
    ));
    let r = berthctl(
        &[
            "-r",
            ep,
            "exec",
            "-s",
            &ctr,
            "sh",
            "-c",
            "echo bad >&2; exit 7",
        ],
        &[],
        LONG,
    );
    t.push((
        "exec exit".into(),
        format!("{:?} {:?} {:?}", r.code, r.stdout, r.stderr),
    ));
    eventually(Duration::from_secs(10), || {
        ctl_at(ep, &["logs", &ctr]).is_ok_and(|o| o.contains("world"))
    });
    let r = berthctl(&["-r", ep, "logs", &ctr], &[], SHORT);
    t.push(("logs".into(), format!("{:?} {:?}", r.stdout, r.stderr)));
    t.push((
        "logs --tail".into(),
        ctl_at(ep, &["logs", "--tail", "1", &ctr])?,
    ));
    let ins: Value = serde_json::from_str(&ctl_at(ep, &["inspect", &ctr])?)?;
    t.push((
        "inspect".into(),
        format!(
            "{} {} {}",
            ins["status"]["state"], ins["status"]["metadata"], ins["status"]["exitCode"]
        ),
    ));
    let insp: Value = serde_json::from_str(&ctl_at(ep, &["inspectp", &pod])?)?;
    t.push((
        "inspectp".into(),
        format!(
            "{} {}",
            insp["status"]["state"], insp["status"]["metadata"]["name"]
        ),
    ));
    let st = rows(&norm(&ids, &ctl_at(ep, &["stats"])?));
    t.push((
        "stats".into(),
        format!("{:?} {:?}", st[0], st.get(1).map(|r| &r[..2])),
    ));
    if !stop {
        return Ok(t);
    }
    t.push(("stop".into(), norm(&ids, &ctl_at(ep, &["stop", &ctr])?)));
    t.push(("ps -a".into(), table(&ids, &ctl_at(ep, &["ps", "-a"])?)));
    let ins: Value = serde_json::from_str(&ctl_at(ep, &["inspect", &ctr])?)?;
    t.push((
        "inspect exited".into(),
        format!("{} {}", ins["status"]["state"], ins["status"]["reason"]),
    ));
    t.push(("rm".into(), norm(&ids, &ctl_at(ep, &["rm", &ctr])?)));
    t.push(("stopp".into(), norm(&ids, &ctl_at(ep, &["stopp", &pod])?)));
    t.push(("pods notready".into(), table(&ids, &ctl_at(ep, &["pods"])?)));
    t.push(("rmp".into(), norm(&ids, &ctl_at(ep, &["rmp", &pod])?)));
    t.push(("pods empty".into(), ctl_at(ep, &["pods", "-q"])?));
    Ok(t)
}

fn main() {
    let args = Arguments::from_args();
    let missing = missing_prerequisite();
    let mut trials = vec![
        Trial::test(
            "missing_berthd_error_names_the_socket",
            missing_berthd_error_names_the_socket,
        ),
        Trial::test(
            "endpoint_precedence_flag_env_config_default",
            endpoint_precedence_flag_env_config_default,
        ),
        Trial::test(
            "completion_scripts_cover_every_command",
            completion_scripts_cover_every_command,
        ),
        Trial::test(
            "streaming_commands_name_bad_ports",
            streaming_commands_name_bad_ports,
        ),
    ];
    type TestFn = fn() -> TestResult;
    let root: &[(&str, TestFn, Option<String>)] = &[
        (
            "pod_and_container_lifecycle_through_berthctl",
            pod_and_container_lifecycle_through_berthctl,
            None,
        ),
        (
            "containerd_gives_equivalent_output",
            containerd_gives_equivalent_output,
            (!Path::new(CONTAINERD).exists())
                .then(|| format!("{CONTAINERD} not installed (Debian's containerd package)")),
        ),
    ];
    for (name, f, skip) in root {
        let missing = missing.clone().or_else(|| skip.clone());
        let f = *f;
        let hard = skip.is_none();
        trials.push(Trial::ignorable_test(*name, move || match missing {
            None => f().map(|()| Completion::Completed),
            Some(reason) if hard && std::env::var_os("CI").is_some() => {
                Err(format!("prerequisite missing (CI is set): {reason}").into())
            }
            Some(reason) => Ok(Completion::ignored_with(reason)),
        }));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(s) = SHARED_STARTED.get() {
        // The shared bridge and registry outlive every test; statics are never dropped.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &s.network.bridge])
            .status();
        s.registry.stop();
    }
    conclusion.exit();
}
