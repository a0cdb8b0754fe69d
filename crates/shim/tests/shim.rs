//! Root tests: real busybox containers run through berth-shim and berth-oci.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use berth_shim::client::{Client, Event, Found, recorded_exit};
use berth_shim::protocol::Status;
use libtest_mimic::Arguments;
use serde_json::json;
use support::*;

type TestResult = Result<(), String>;

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn process(args: &[&str]) -> serde_json::Value {
    json!({
        "args": args,
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "noNewPrivileges": true,
    })
}

fn log_has_cri_records_for_stdout_stderr_partial_and_long_lines() -> TestResult {
    let c = Ctr::run_sh(
        "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; printf part; sleep 0.2; echo ial; \
         head -c 40000 /dev/zero | tr '\\0' a; echo; printf end",
        false,
        |_| {},
    )?;
    let exit = c.client()?.wait(None).map_err(e2s)?;
    ensure(exit.exit_code == 0, || format!("exit {exit:?}"))?;
    let a = |n| "a".repeat(n);
    let want = vec![
        "stdout F out1\n".to_owned(),
        "stderr F err1\n".to_owned(),
        "stdout F partial\n".to_owned(),
        format!("stdout P {}\n", a(16384)),
        format!("stdout P {}\n", a(16384)),
        format!("stdout F {}\n", a(40000 - 2 * 16384)),
        "stdout P end\n".to_owned(),
    ];
    let got = c.log_records()?;
    ensure(got == want, || format!("log records differ: {got:?}"))
}

fn log_reopened_after_the_file_is_moved_away() -> TestResult {
    let c = Ctr::run_sh("read x; echo before; read y; echo after", true, |_| {})?;
    let attach = c.client()?.attach().map_err(e2s)?;
    let mut w = attach.stdin_writer().map_err(e2s)?;
    w.write_stdin(b"1\n").map_err(e2s)?;
    ensure(
        wait_until(|| std::fs::read(c.log_path()).is_ok_and(|l| !l.is_empty())),
        || "first line never logged".into(),
    )?;
    let rotated = c.log_path().with_extension("log.1");
    std::fs::rename(c.log_path(), &rotated).map_err(e2s)?;
    c.client()?.reopen_log().map_err(e2s)?;
    w.write_stdin(b"2\n").map_err(e2s)?;
    c.client()?.wait(None).map_err(e2s)?;
    let old = log_records(&rotated)?;
    let new = c.log_records()?;
    ensure(old == ["stdout F before\n"], || {
        format!("rotated log {old:?}")
    })?;
    ensure(new == ["stdout F after\n"], || format!("new log {new:?}"))
}

fn exit_code_signal_and_oom_kill_are_recorded() -> TestResult {
    let c = Ctr::run_sh("exit 3", false, |_| {})?;
    let e = c.client()?.wait(None).map_err(e2s)?;
    ensure(
        e.exit_code == 3 && e.signal.is_none() && !e.oom_killed,
        || format!("{e:?}"),
    )?;
    ensure(
        recorded_exit(&c.state_dir()).map_err(e2s)? == Some(e),
        || "exit.json differs from wait".into(),
    )?;

    let c = Ctr::run_sh("sleep 100", false, |_| {})?;
    c.client()?.kill(9, false).map_err(e2s)?;
    let e = c.client()?.wait(None).map_err(e2s)?;
    ensure(
        e.exit_code == 137 && e.signal == Some(9) && !e.oom_killed,
        || format!("{e:?}"),
    )?;

    let c = Ctr::run_sh("dd if=/dev/zero of=/dev/null bs=96M count=1", false, |b| {
        b.config["linux"]["resources"] = json!({"memory": {"limit": 32 << 20, "swap": 32 << 20}});
    })?;
    let e = c.client()?.wait(None).map_err(e2s)?;
    ensure(e.oom_killed && e.signal == Some(9), || {
        format!("not an OOM kill: {e:?}")
    })?;
    let st = c.client()?.state().map_err(e2s)?;
    ensure(st.status == Status::Stopped && st.exit == Some(e), || {
        format!("{st:?}")
    })
}

fn exit_status_file_written_with_no_client_connected() -> TestResult {
    let c = Ctr::run_sh("sleep 0.3; exit 7", false, |_| {})?;
    let path = c.state_dir().join("exit.json");
    ensure(!path.exists(), || "exit.json before exit".into())?;
    ensure(wait_until(|| path.exists()), || "no exit.json".into())?;
    let e = recorded_exit(&c.state_dir())
        .map_err(e2s)?
        .ok_or("no exit")?;
    ensure(e.exit_code == 7 && !e.finished_at.is_empty(), || {
        format!("{e:?}")
    })
}

fn exec_returns_exit_code_and_output() -> TestResult {
    let c = Ctr::run_sh("sleep 100", false, |_| {})?;
    let (pid, s) = c
        .client()?
        .exec(
            "e1",
            process(&["sh", "-c", "echo hi; echo oops >&2; exit 5"]),
            false,
            false,
        )
        .map_err(e2s)?;
    ensure(pid > 0, || "no pid".into())?;
    let (e, out, err) = s.collect().map_err(e2s)?;
    ensure(e.exit_code == 5, || format!("{e:?}"))?;
    ensure(out == b"hi\n" && err == b"oops\n", || {
        format!(
            "out {:?} err {:?}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
    })?;
    // stdin, and an exec id reused once the first is done
    let (_, s) = c
        .client()?
        .exec("e1", process(&["cat"]), false, true)
        .map_err(e2s)?;
    let mut w = s.stdin_writer().map_err(e2s)?;
    w.write_stdin(b"abc").map_err(e2s)?;
    w.close_stdin().map_err(e2s)?;
    let (e, out, _) = s.collect().map_err(e2s)?;
    ensure(e.exit_code == 0 && out == b"abc", || {
        format!("{e:?} {out:?}")
    })?;
    // kill of an exec process
    let (_, s) = c
        .client()?
        .exec("k", process(&["sleep", "100"]), false, false)
        .map_err(e2s)?;
    c.client()?.kill_exec("k", 9).map_err(e2s)?;
    let (e, _, _) = s.collect().map_err(e2s)?;
    ensure(e.exit_code == 137 && e.signal == Some(9), || {
        format!("killed exec {e:?}")
    })?;
    // an exec whose client went away keeps its exit for a later wait
    let (_, s) = c
        .client()?
        .exec(
            "gone",
            process(&["sh", "-c", "sleep 0.2; exit 6"]),
            false,
            false,
        )
        .map_err(e2s)?;
    drop(s);
    let e = c.client()?.wait(Some("gone")).map_err(e2s)?;
    ensure(e.exit_code == 6, || {
        format!("exec waited after its client left: {e:?}")
    })?;
    // a failed exec answers with the runtime's error, and the connection stays usable
    let mut cl = c.client()?;
    match cl.call(&berth_shim::protocol::Request::Exec {
        exec_id: "bad".into(),
        process: process(&["/no/such/exec"]),
        tty: false,
        stdin: false,
    }) {
        Err(e) if e.to_string().contains("/no/such/exec") => {}
        other => return Err(format!("exec of a missing binary: {other:?}")),
    }
    ensure(cl.state().map_err(e2s)?.status == Status::Running, || {
        "state after failed exec".into()
    })?;
    // the main container's log holds nothing of the execs
    ensure(c.log_records()?.is_empty(), || {
        "exec output in the container log".into()
    })
}

fn tty_exec_and_resize() -> TestResult {
    // A terminal for the main process: resize, then stdin through attach.
    let c = Ctr::run_sh("read x; stty size", false, |b| {
        b.config["process"]["terminal"] = json!(true);
    })?;
    let attach = c.client()?.attach().map_err(e2s)?;
    c.client()?.resize(None, 50, 20).map_err(e2s)?;
    attach
        .stdin_writer()
        .map_err(e2s)?
        .write_stdin(b"go\n")
        .map_err(e2s)?;
    let (e, out, _) = attach.collect().map_err(e2s)?;
    let out = String::from_utf8_lossy(&out).into_owned();
    ensure(e.exit_code == 0 && out.contains("20 50\r\n"), || {
        format!("{e:?} {out:?}")
    })?;
    let log = c.log_records()?;
    ensure(log.contains(&"stdout F 20 50\r\n".to_owned()), || {
        format!("log {log:?}")
    })?;

    // A terminal for an exec process.
    let c = Ctr::run_sh("sleep 100", false, |_| {})?;
    let (_, mut s) = c
        .client()?
        .exec(
            "t",
            process(&["sh", "-c", "read x; stty size; exit 4"]),
            true,
            true,
        )
        .map_err(e2s)?;
    let mut w = s.stdin_writer().map_err(e2s)?;
    w.resize(120, 33).map_err(e2s)?;
    match s.next_event().map_err(e2s)? {
        Some(Event::Response(berth_shim::protocol::Response::Ok)) => {}
        other => return Err(format!("resize answered {other:?}")),
    }
    w.write_stdin(b"go\n").map_err(e2s)?;
    let (e, out, _) = s.collect().map_err(e2s)?;
    let out = String::from_utf8_lossy(&out).into_owned();
    ensure(e.exit_code == 4 && out.contains("33 120\r\n"), || {
        format!("{e:?} {out:?}")
    })
}

fn attach_receives_output_and_sends_stdin() -> TestResult {
    let c = Ctr::create(
        Bundle::new(&["sh", "-c", "read x; echo got $x; echo e >&2"]),
        true,
    )?;
    let mut s = c.client()?.attach().map_err(e2s)?;
    c.client()?.start().map_err(e2s)?;
    s.stdin_writer()
        .map_err(e2s)?
        .write_stdin(b"hello\n")
        .map_err(e2s)?;
    let mut events = Vec::new();
    loop {
        match s.next_event().map_err(e2s)? {
            Some(Event::Exit(e)) => {
                events.push(format!("exit {}", e.exit_code));
                break;
            }
            Some(Event::Stdout(d)) => events.push(format!("out {}", String::from_utf8_lossy(&d))),
            Some(Event::Stderr(d)) => events.push(format!("err {}", String::from_utf8_lossy(&d))),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    ensure(events == ["out got hello\n", "err e\n", "exit 0"], || {
        format!("{events:?}")
    })
}

fn starter_killed_leaves_container_running_and_shim_reattachable() -> TestResult {
    let b = Bundle::new(&["sleep", "100"]);
    let id = unique_id("starter");
    let dir = tempfile::Builder::new()
        .prefix("berth-shim-")
        .tempdir()
        .map_err(e2s)?;
    let o = Ctr::options(&id, &b, dir.path(), false);
    // The starter: a shell in its own process group that starts the shim and stays.
    let mut starter = Command::new("sh");
    starter
        .arg("-c")
        .arg(r#""$@" && exec sleep 100"#)
        .arg("starter")
        .arg(&o.binary)
        .args(["--id", &id, "--bundle"])
        .arg(&o.bundle)
        .arg("--state-dir")
        .arg(&o.state_dir)
        .arg("--runtime")
        .arg(o.runtime.as_ref().unwrap())
        .arg("--runtime-root")
        .arg(o.runtime_root.as_ref().unwrap())
        .stdout(Stdio::null())
        .process_group(0);
    let mut child = starter.spawn().map_err(e2s)?;
    let pid_file = o.state_dir.join("shim.pid");
    ensure(
        wait_until(|| pid_file.exists() && o.state_dir.join("shim.sock").exists()),
        || "shim never ready".into(),
    )?;
    let shim: i32 = std::fs::read_to_string(&pid_file)
        .map_err(e2s)?
        .trim()
        .parse()
        .map_err(e2s)?;
    let state = Client::connect(&o.state_dir)
        .map_err(e2s)?
        .state()
        .map_err(e2s)?;
    let c = Ctr {
        id,
        bundle: b,
        dir,
        started: berth_shim::client::Started {
            shim_pid: shim,
            pid: state.pid,
        },
    };
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(e2s)?;
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(200));
    ensure(alive(shim), || "shim died with its starter".into())?;
    // a new client finds the shim by its socket
    let mut cl = c.client()?;
    cl.start().map_err(e2s)?;
    let st = cl.state().map_err(e2s)?;
    ensure(st.status == Status::Running && alive(st.pid), || {
        format!("{st:?}")
    })?;
    ensure(st.shim_pid == shim, || "another shim answered".into())?;
    Ok(())
}

fn no_zombie_left_behind() -> TestResult {
    // No pid namespace: the subshell's background sleep is orphaned to the shim (subreaper).
    let c = Ctr::run_sh("(sleep 0.5 &); exec sleep 100", false, |b| {
        b.config["linux"]["namespaces"] =
            json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]);
    })?;
    let shim = c.started.shim_pid;
    let main = c.started.pid;
    ensure(
        wait_until(|| children(shim).iter().any(|&p| p != main)),
        || "the orphan never became the shim's child".into(),
    )?;
    let (_, s) = c
        .client()?
        .exec("x", process(&["true"]), false, false)
        .map_err(e2s)?;
    s.collect().map_err(e2s)?;
    std::thread::sleep(std::time::Duration::from_millis(900));
    ensure(children(shim) == [main], || {
        format!("shim children besides the container: {:?}", children(shim))
    })?;
    let z = zombie_children(shim);
    ensure(z.is_empty(), || {
        format!("zombie children of the shim: {z:?}")
    })?;
    c.client()?.kill(9, false).map_err(e2s)?;
    c.client()?.wait(None).map_err(e2s)?;
    std::thread::sleep(std::time::Duration::from_millis(100));
    let z = zombie_children(shim);
    ensure(z.is_empty(), || {
        format!("zombie children after exit: {z:?}")
    })
}

fn nothing_of_the_starter_or_shim_reaches_the_container() -> TestResult {
    let marker = tempfile::NamedTempFile::new().map_err(e2s)?;
    let f = std::fs::File::open(marker.path()).map_err(e2s)?;
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .map_err(e2s)?;
    let c = Ctr::run_sh("sleep 100", false, |_| {})?;
    drop(f);
    let pid = c.client()?.state().map_err(e2s)?.pid;
    let mut seen = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(e2s)?
        .flatten()
    {
        let target = std::fs::read_link(e.path()).map_err(e2s)?;
        seen.push(format!(
            "{} -> {}",
            e.file_name().to_string_lossy(),
            target.display()
        ));
        if target == marker.path() {
            return Err(format!("marker fd leaked into the container: {seen:?}"));
        }
    }
    ensure(seen.len() == 3, || format!("container fds: {seen:?}"))?;
    // nor the shim's signal mask (SIGCHLD is blocked in the shim)
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(e2s)?;
    ensure(status.contains("SigBlk:\t0000000000000000\n"), || {
        format!("signals blocked in the container: {status}")
    })?;
    let (_, s) = c
        .client()?
        .exec(
            "sig",
            process(&["grep", "SigBlk", "/proc/self/status"]),
            false,
            false,
        )
        .map_err(e2s)?;
    let (_, out, _) = s.collect().map_err(e2s)?;
    ensure(out == b"SigBlk:\t0000000000000000\n", || {
        format!(
            "signals blocked in an exec: {}",
            String::from_utf8_lossy(&out)
        )
    })?;
    // and not into the shim either
    for e in std::fs::read_dir(format!("/proc/{}/fd", c.started.shim_pid))
        .map_err(e2s)?
        .flatten()
    {
        if std::fs::read_link(e.path()).is_ok_and(|t| t == marker.path()) {
            return Err("marker fd leaked into the shim".into());
        }
    }
    Ok(())
}

fn delete_makes_the_shim_exit() -> TestResult {
    let c = Ctr::create_with(Bundle::new(&["sh", "-c", "exit 0"]), false, |o| {
        o.extra_args = vec![
            "--log-format=json".into(),
            "--log-level".into(),
            "debug".into(),
        ];
    })?;
    c.client()?.start().map_err(e2s)?;
    let mut cl = c.client()?;
    cl.wait(None).map_err(e2s)?;
    cl.delete(false).map_err(e2s)?;
    ensure(wait_until(|| !alive(c.started.shim_pid)), || {
        "shim still alive".into()
    })?;
    ensure(!c.state_dir().join("shim.sock").exists(), || {
        "socket left".into()
    })
}

fn restarted_client_finds_live_shim_or_recorded_exit() -> TestResult {
    let c = Ctr::run_sh("sleep 100", false, |_| {})?;
    match berth_shim::client::find(&c.state_dir()).map_err(e2s)? {
        Found::Live { state, .. } if state.status == Status::Running => {}
        Found::Live { state, .. } => return Err(format!("live but {state:?}")),
        _ => return Err("running shim not found".into()),
    }
    let mut cl = c.client()?;
    cl.kill(9, false).map_err(e2s)?;
    cl.wait(None).map_err(e2s)?;
    cl.shutdown().map_err(e2s)?;
    ensure(wait_until(|| !alive(c.started.shim_pid)), || {
        "shim still alive".into()
    })?;
    match berth_shim::client::find(&c.state_dir()).map_err(e2s)? {
        Found::Exited(e) if e.exit_code == 137 => Ok(()),
        Found::Exited(e) => Err(format!("recorded {e:?}")),
        Found::Live { .. } => Err("shim answers after shutdown".into()),
        Found::Lost => Err("exit lost".into()),
    }
}

fn async_client_execs_attaches_and_waits() -> TestResult {
    use berth_shim::async_client::Client as AsyncClient;
    let c = Ctr::create(
        Bundle::new(&["sh", "-c", "read x; echo got $x; exit 9"]),
        true,
    )?;
    let dir = c.state_dir();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(e2s)?;
    rt.block_on(async {
        let mut attach = AsyncClient::connect(&dir)
            .await
            .map_err(e2s)?
            .attach()
            .await
            .map_err(e2s)?;
        let mut cl = AsyncClient::connect(&dir).await.map_err(e2s)?;
        cl.start().await.map_err(e2s)?;
        let (_, s) = AsyncClient::connect(&dir)
            .await
            .map_err(e2s)?
            .exec("a", process(&["echo", "exec"]), false, false)
            .await
            .map_err(e2s)?;
        let (e, out, _) = s.collect().await.map_err(e2s)?;
        ensure(e.exit_code == 0 && out == b"exec\n", || {
            format!("{e:?} {out:?}")
        })?;
        let waiter = tokio::spawn({
            let dir = dir.clone();
            async move { AsyncClient::connect(&dir).await?.wait(None).await }
        });
        attach.writer.write_stdin(b"x\n").await.map_err(e2s)?;
        match attach.next_event().await.map_err(e2s)? {
            Some(Event::Stdout(d)) if d == b"got x\n" => {}
            other => return Err(format!("attach got {other:?}")),
        }
        let e = waiter.await.map_err(e2s)?.map_err(e2s)?;
        ensure(e.exit_code == 9, || format!("{e:?}"))?;
        ensure(
            cl.state().await.map_err(e2s)?.status == Status::Stopped,
            || "not stopped".into(),
        )
    })
}

fn slow_runtime_command_does_not_stop_the_loop() -> TestResult {
    // A runtime whose `start` takes a second: the shim answers other clients meanwhile.
    let wrapper_dir = tempfile::tempdir().map_err(e2s)?;
    let wrapper = wrapper_dir.path().join("slow-runtime");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = start ] && sleep 1; done\nexec {} \"$@\"\n",
            runtime().display()
        ),
    )
    .map_err(e2s)?;
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(e2s)?;
    let c = Ctr::create_with(Bundle::new(&["sleep", "100"]), false, |o| {
        o.runtime = Some(wrapper.clone());
    })?;
    let dir = c.state_dir();
    let t0 = std::time::Instant::now();
    let starter = std::thread::spawn(move || Client::connect(&dir).and_then(|mut c| c.start()));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let st = c.client()?.state().map_err(e2s)?;
    let answered = t0.elapsed();
    ensure(st.status == Status::Created, || format!("{st:?}"))?;
    ensure(answered < std::time::Duration::from_millis(700), || {
        format!("state took {answered:?} while start was in flight")
    })?;
    starter
        .join()
        .map_err(|_| "starter panicked")?
        .map_err(e2s)?;
    ensure(t0.elapsed() >= std::time::Duration::from_secs(1), || {
        "start was not slow".into()
    })?;
    let st = c.client()?.state().map_err(e2s)?;
    ensure(st.status == Status::Running, || format!("{st:?}"))
}

fn create_failure_is_reported() -> TestResult {
    let r = Ctr::create(Bundle::new(&["/no/such/binary"]), false);
    match r {
        Ok(_) => Err("create of a missing binary succeeded".into()),
        Err(e) if e.contains("no/such/binary") => Ok(()),
        Err(e) => Err(format!("error does not name the binary: {e}")),
    }
}

type TestFn = fn() -> TestResult;

fn main() {
    let args = Arguments::from_args();
    let missing = missing_prerequisite();
    let tests: &[(&str, TestFn)] = &[
        (
            "log_has_cri_records_for_stdout_stderr_partial_and_long_lines",
            log_has_cri_records_for_stdout_stderr_partial_and_long_lines,
        ),
        (
            "log_reopened_after_the_file_is_moved_away",
            log_reopened_after_the_file_is_moved_away,
        ),
        (
            "exit_code_signal_and_oom_kill_are_recorded",
            exit_code_signal_and_oom_kill_are_recorded,
        ),
        (
            "exit_status_file_written_with_no_client_connected",
            exit_status_file_written_with_no_client_connected,
        ),
        (
            "exec_returns_exit_code_and_output",
            exec_returns_exit_code_and_output,
        ),
        ("tty_exec_and_resize", tty_exec_and_resize),
        (
            "attach_receives_output_and_sends_stdin",
            attach_receives_output_and_sends_stdin,
        ),
        (
            "starter_killed_leaves_container_running_and_shim_reattachable",
            starter_killed_leaves_container_running_and_shim_reattachable,
        ),
        ("no_zombie_left_behind", no_zombie_left_behind),
        (
            "nothing_of_the_starter_or_shim_reaches_the_container",
            nothing_of_the_starter_or_shim_reaches_the_container,
        ),
        ("delete_makes_the_shim_exit", delete_makes_the_shim_exit),
        (
            "restarted_client_finds_live_shim_or_recorded_exit",
            restarted_client_finds_live_shim_or_recorded_exit,
        ),
        (
            "async_client_execs_attaches_and_waits",
            async_client_execs_attaches_and_waits,
        ),
        (
            "slow_runtime_command_does_not_stop_the_loop",
            slow_runtime_command_does_not_stop_the_loop,
        ),
        ("create_failure_is_reported", create_failure_is_reported),
    ];
    let trials = berth_test_support::trials(tests, missing.clone(), "CI");
    libtest_mimic::run(&args, trials).exit();
}
