//! Exec, Attach and PortForward through berthd's streaming server, with real containers:
//! SPDY/3.1 and WebSocket clients from berth_cri_server::streaming::client.

use std::time::Duration;

use super::support::stream_client::{SpdyClient, WsClient, upgrade};
use super::*;

const V4: (&str, &str) = ("X-Stream-Protocol-Version", "v4.channel.k8s.io");
const SPDY: [(&str, &str); 2] = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
const WAIT: Duration = Duration::from_secs(20);

fn spdy_headers(protocol: &str) -> Vec<(&str, &str)> {
    let mut h = SPDY.to_vec();
    h.push(("X-Stream-Protocol-Version", protocol));
    h
}

async fn exec_url(
    rt: &mut Rt,
    id: &str,
    cmd: &[&str],
    (stdin, stdout, stderr, tty): (bool, bool, bool, bool),
) -> Result<String, Failed> {
    Ok(rt
        .exec(ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin,
            stdout,
            stderr,
        })
        .await?
        .into_inner()
        .url)
}

/// Connects over SPDY with v4 and opens the named streams; returns the client and their ids.
async fn spdy_session(url: &str, kinds: &[&str]) -> Result<(SpdyClient, Vec<u32>), Failed> {
    let up = upgrade(url, &spdy_headers(V4.1)).await?;
    ensure(up.status == 101, || {
        format!("upgrade {url}: {} {}", up.status, up.body)
    })?;
    ensure(up.header("x-stream-protocol-version") == Some(V4.1), || {
        format!("negotiated {:?}", up.header("x-stream-protocol-version"))
    })?;
    let mut c = SpdyClient::new(up.stream);
    let mut ids = Vec::new();
    for k in kinds {
        ids.push(c.open(&[("streamType", k)]).await?);
    }
    Ok((c, ids))
}

/// Open descriptors of the shim of container `id`.
fn shim_fd_count(id: &str) -> usize {
    processes_mentioning(&format!("--id {id}"))
        .iter()
        .filter(|p| p.contains("berth-shim"))
        .filter_map(|p| p.split(':').next())
        .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
        .map(|d| d.count())
        .sum()
}

/// The shim's fd count once it has settled: berthd's exit watcher connects to the shim
/// just after StartContainer returns, so a count taken at once may miss it.
async fn settled_shim_fd_count(id: &str) -> usize {
    let mut last = shim_fd_count(id);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = shim_fd_count(id);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn status_json(raw: &str) -> Result<serde_json::Value, Failed> {
    serde_json::from_str(raw).map_err(|e| format!("status {raw:?}: {e}").into())
}

pub fn exec_over_spdy_and_websocket_streams_io_and_exit_status() -> TestResult {
    with_berthd("/berth-e2e-s", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("streaming", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        let fds_before = settled_shim_fd_count(&c).await;

        // stdin to cat and back; Success on the error stream.
        let url = exec_url(rt, &c, &["busybox", "cat"], (true, true, true, false)).await?;
        ensure(
            url.starts_with("http://127.0.0.1:") && url.contains("/exec/"),
            || format!("url {url}"),
        )?;
        let (mut s, ids) = spdy_session(&url, &["error", "stdin", "stdout", "stderr"]).await?;
        let [error, stdin, stdout, _stderr] = ids[..] else {
            unreachable!()
        };
        s.send(stdin, b"hello").await?;
        s.close(stdin).await?;
        s.read_until(WAIT, |s| s.fin.contains(&error)).await?;
        ensure(s.text(stdout) == "hello", || {
            format!("stdout {:?}, error {:?}", s.text(stdout), s.text(error))
        })?;
        let st = status_json(&s.text(error))?;
        ensure(st["status"] == "Success", || format!("status {st}"))?;
        ensure(s.fin.contains(&stdout), || "stdout not closed".into())?;

        // The URL is good once.
        let again = upgrade(&url, &spdy_headers(V4.1)).await?;
        ensure(again.status == 404, || {
            format!("reused token: {} {}", again.status, again.body)
        })?;
        let unknown = upgrade(&url.replace("/exec/", "/exec/x"), &spdy_headers(V4.1)).await?;
        ensure(unknown.status == 404, || {
            format!("unknown token: {}", unknown.status)
        })?;

        // Exit code 3, stdout and stderr apart.
        let url = exec_url(
            rt,
            &c,
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            (false, true, true, false),
        )
        .await?;
        let (mut s, ids) = spdy_session(&url, &["error", "stdout", "stderr"]).await?;
        let [error, stdout, stderr] = ids[..] else {
            unreachable!()
        };
        s.read_until(WAIT, |s| s.fin.contains(&error)).await?;
        ensure(
            s.text(stdout) == "out\n" && s.text(stderr) == "err\n",
            || format!("out {:?} err {:?}", s.text(stdout), s.text(stderr)),
        )?;
        let st = status_json(&s.text(error))?;
        ensure(
            st["status"] == "Failure"
                && st["reason"] == "NonZeroExitCode"
                && st["details"]["causes"][0]["reason"] == "ExitCode"
                && st["details"]["causes"][0]["message"] == "3",
            || format!("status {st}"),
        )?;

        // A terminal, resized before the command asks its size.
        let url = exec_url(
            rt,
            &c,
            &[
                "sh",
                "-c",
                "sleep 1; busybox tty; busybox stty size; exit 0",
            ],
            (false, true, false, true),
        )
        .await?;
        let (mut s, ids) = spdy_session(&url, &["error", "stdout", "resize"]).await?;
        let [error, stdout, resize] = ids[..] else {
            unreachable!()
        };
        s.send(resize, br#"{"Width":100,"Height":40}"#).await?;
        s.ping(1).await?;
        s.read_until(WAIT, |s| s.fin.contains(&error)).await?;
        let out = s.text(stdout);
        ensure(out.contains("/dev/pts/") && out.contains("40 100"), || {
            format!("tty output {out:?}")
        })?;
        ensure(s.pings.contains(&1), || "ping not answered".into())?;
        ensure(status_json(&s.text(error))?["status"] == "Success", || {
            format!("status {}", s.text(error))
        })?;

        // WebSocket, v4 channels.
        let url = exec_url(
            rt,
            &c,
            &["sh", "-c", "read l; echo ws-$l; echo ws-err >&2; exit 2"],
            (true, true, true, false),
        )
        .await?;
        let up = upgrade(
            &url,
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Protocol", "v4.channel.k8s.io"),
            ],
        )
        .await?;
        ensure(up.status == 101, || {
            format!("ws upgrade {} {}", up.status, up.body)
        })?;
        ensure(
            up.header("sec-websocket-accept") == Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                && up.header("sec-websocket-protocol") == Some("v4.channel.k8s.io"),
            || format!("ws headers {:?}", up.headers),
        )?;
        let mut ws = WsClient::new(up.stream);
        ws.ping().await?;
        ws.send(0, b"in\n").await?;
        let pong = ws.read_to_close(WAIT).await?;
        ensure(pong, || "no pong".into())?;
        ensure(ws.text(1) == "ws-in\n" && ws.text(2) == "ws-err\n", || {
            format!("ws out {:?} err {:?}", ws.text(1), ws.text(2))
        })?;
        let st = status_json(&ws.text(3))?;
        ensure(st["details"]["causes"][0]["message"] == "2", || {
            format!("ws status {st}")
        })?;

        // WebSocket v5: the client closes stdin with [255, 0]; berthd closes stdout and
        // stderr (and the error channel after the status) the same way.
        let url = exec_url(rt, &c, &["busybox", "cat"], (true, true, true, false)).await?;
        let up = upgrade(
            &url,
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
            ],
        )
        .await?;
        ensure(
            up.status == 101 && up.header("sec-websocket-protocol") == Some("v5.channel.k8s.io"),
            || format!("ws v5 upgrade {} {:?}", up.status, up.headers),
        )?;
        let mut ws = WsClient::new(up.stream);
        ws.send(0, b"five").await?;
        ws.send(255, &[0]).await?;
        ws.read_to_close(WAIT).await?;
        ensure(ws.text(1) == "five", || {
            format!("v5 stdout {:?}", ws.text(1))
        })?;
        ensure(
            ws.channels.get(&255).map(Vec::as_slice) == Some(&[1, 2, 3][..]),
            || format!("v5 close messages {:?}", ws.channels.get(&255)),
        )?;
        ensure(status_json(&ws.text(3))?["status"] == "Success", || {
            format!("v5 status {}", ws.text(3))
        })?;

        // A client that goes away: the exec is not left behind, the container lives on.
        let url = exec_url(
            rt,
            &c,
            &["busybox", "sleep", "999"],
            (true, true, false, false),
        )
        .await?;
        let (s, _) = spdy_session(&url, &["error", "stdin", "stdout"]).await?;
        let mut running = false;
        for _ in 0..50 {
            if exec_out(rt, &c, "busybox ps").await?.contains("sleep 999") {
                running = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure(running, || "streamed exec never ran".into())?;
        drop(s);
        let mut gone = false;
        for _ in 0..150 {
            if !exec_out(rt, &c, "busybox ps").await?.contains("sleep 999") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure(gone, || "exec of a departed client still runs".into())?;
        // Nothing of the finished sessions is left in the shim (pipes, ptys, connections).
        let mut fds_after = shim_fd_count(&c);
        for _ in 0..20 {
            if fds_after <= fds_before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            fds_after = shim_fd_count(&c);
        }
        ensure(fds_after <= fds_before, || {
            format!("shim fds {fds_before} before the execs, {fds_after} after")
        })?;
        ensure(
            status(rt, &c).await?.state() == ContainerState::ContainerRunning,
            || "container stopped with the client".into(),
        )?;

        // Garbage and silence on the socket cost nothing lasting.
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let mut junk = tokio::net::TcpStream::connect(&addr).await?;
        tokio::io::AsyncWriteExt::write_all(&mut junk, b"\x80\x03\x00\x01garbage\r\n\r\n").await?;
        let mut buf = Vec::new();
        let read = tokio::time::timeout(
            WAIT,
            tokio::io::AsyncReadExt::read_to_end(&mut junk, &mut buf),
        )
        .await;
        ensure(read.is_ok(), || "garbage connection left open".into())?;
        let mut silent = tokio::net::TcpStream::connect(&addr).await?;
        let read = tokio::time::timeout(
            Duration::from_secs(15),
            tokio::io::AsyncReadExt::read_to_end(&mut silent, &mut buf),
        )
        .await;
        ensure(read.is_ok(), || "silent connection left open".into())?;

        stop_and_remove_pod(rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-s");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

pub fn attach_sees_output_sends_input_and_leaves_the_container_running() -> TestResult {
    with_berthd("/berth-e2e-t", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("attach", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let mut config = container_config(
            "echo",
            &image,
            "while read l; do echo \"got $l\"; echo \"err $l\" >&2; done",
        );
        config.stdin = true;
        let c = start_container(rt, &pod_id, &pod, config).await?;
        let shim_fds = || shim_fd_count(&c);
        let fds_before = settled_shim_fd_count(&c).await;
        for round in ["one", "two"] {
            let url = rt
                .attach(AttachRequest {
                    container_id: c.clone(),
                    stdin: true,
                    tty: false,
                    stdout: true,
                    stderr: true,
                })
                .await?
                .into_inner()
                .url;
            ensure(url.contains("/attach/"), || format!("url {url}"))?;
            let (mut s, ids) = spdy_session(&url, &["error", "stdin", "stdout", "stderr"]).await?;
            let [_, stdin, stdout, stderr] = ids[..] else {
                unreachable!()
            };
            s.send(stdin, format!("{round}\n").as_bytes()).await?;
            let want_out = format!("got {round}");
            let want_err = format!("err {round}");
            s.read_until(WAIT, |s| {
                s.text(stdout).contains(&want_out) && s.text(stderr).contains(&want_err)
            })
            .await
            .map_err(|e| format!("attach {round}: {e}: out {:?}", s.text(stdout)))?;
            // Leaving (here: hanging up) does not stop the container or close its stdin.
            drop(s);
            tokio::time::sleep(Duration::from_millis(300)).await;
            ensure(
                status(rt, &c).await?.state() == ContainerState::ContainerRunning,
                || "container stopped when the client left".into(),
            )?;
        }
        // Each detached session was dropped whole: the shim holds no connection for it.
        let mut fds_after = shim_fds();
        for _ in 0..20 {
            if fds_after <= fds_before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            fds_after = shim_fds();
        }
        ensure(fds_after <= fds_before, || {
            format!("shim fds {fds_before} before attaching, {fds_after} after")
        })?;

        // A container with a terminal: attach with tty, type into its shell, resize it.
        let mut config = container_config("term", &image, "exec sh");
        config.stdin = true;
        config.tty = true;
        let term = start_container(rt, &pod_id, &pod, config).await?;
        let url = rt
            .attach(AttachRequest {
                container_id: term.clone(),
                stdin: true,
                tty: true,
                stdout: true,
                stderr: false,
            })
            .await?
            .into_inner()
            .url;
        let (mut s, ids) = spdy_session(&url, &["error", "stdin", "stdout", "resize"]).await?;
        let [_, stdin, stdout, resize] = ids[..] else {
            unreachable!()
        };
        s.send(resize, br#"{"Width":123,"Height":45}"#).await?;
        s.send(stdin, b"echo tty-$((40+2)); busybox stty size\n")
            .await?;
        s.read_until(WAIT, |s| {
            s.text(stdout).contains("tty-42") && s.text(stdout).contains("45 123")
        })
        .await
        .map_err(|e| format!("tty attach: {e}: out {:?}", s.text(stdout)))?;
        drop(s);
        tokio::time::sleep(Duration::from_millis(300)).await;
        ensure(
            status(rt, &term).await?.state() == ContainerState::ContainerRunning,
            || "tty container stopped when the client left".into(),
        )?;

        stop_and_remove_pod(rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-t");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

pub fn port_forward_carries_http_into_the_pod_network() -> TestResult {
    with_berthd("/berth-e2e-u", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("forward", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config(
                "srv",
                &image,
                "mkdir /www && echo forwarded-ok > /www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /www",
            ),
        )
        .await?;
        let mut up = false;
        for _ in 0..50 {
            if exec(rt, &c, "wget -q -O- http://127.0.0.1:8080/")
                .await?
                .exit_code
                == 0
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure(up, || "httpd did not come up".into())?;

        let url = rt
            .port_forward(PortForwardRequest {
                pod_sandbox_id: pod_id.clone(),
                port: vec![],
            })
            .await?
            .into_inner()
            .url;
        ensure(url.contains("/portforward/"), || format!("url {url}"))?;
        let up = upgrade(&url, &spdy_headers("portforward.k8s.io")).await?;
        ensure(up.status == 101, || {
            format!("upgrade {} {}", up.status, up.body)
        })?;
        let mut s = SpdyClient::new(up.stream);
        // Two requests on one connection: the server's page, then a closed port.
        for (request, port) in [("0", "8080"), ("1", "9")] {
            let error = s
                .open(&[
                    ("streamType", "error"),
                    ("port", port),
                    ("requestID", request),
                ])
                .await?;
            let data = s
                .open(&[
                    ("streamType", "data"),
                    ("port", port),
                    ("requestID", request),
                ])
                .await?;
            if port == "8080" {
                s.send(data, b"GET / HTTP/1.0\r\n\r\n").await?;
                s.read_until(WAIT, |s| s.fin.contains(&data)).await?;
                let page = s.text(data);
                ensure(
                    page.contains("200 OK") && page.contains("forwarded-ok"),
                    || format!("page {page:?}"),
                )?;
                s.read_until(WAIT, |s| s.fin.contains(&error)).await?;
                ensure(s.text(error).is_empty(), || {
                    format!("error {:?}", s.text(error))
                })?;
            } else {
                s.read_until(WAIT, |s| s.fin.contains(&error)).await?;
                let err = s.text(error);
                ensure(err.contains("error forwarding port 9"), || {
                    format!("error {err:?}")
                })?;
            }
        }
        drop(s);

        // The same over WebSocket: SPDY tunnelled in binary messages, as client-go does.
        let url = rt
            .port_forward(PortForwardRequest {
                pod_sandbox_id: pod_id.clone(),
                port: vec![8080],
            })
            .await?
            .into_inner()
            .url;
        let up = upgrade(
            &url,
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Protocol", "SPDY/3.1+portforward.k8s.io"),
            ],
        )
        .await?;
        ensure(up.status == 101, || {
            format!("ws upgrade {} {}", up.status, up.body)
        })?;
        let tunnel = berth_cri_server::streaming::websocket::tunnel(
            up.stream,
            berth_cri_server::streaming::websocket::Role::Client,
        );
        let mut s = SpdyClient::new(tunnel);
        let error = s
            .open(&[
                ("streamType", "error"),
                ("port", "8080"),
                ("requestID", "0"),
            ])
            .await?;
        let data = s
            .open(&[("streamType", "data"), ("port", "8080"), ("requestID", "0")])
            .await?;
        s.send(data, b"GET / HTTP/1.0\r\n\r\n").await?;
        s.read_until(WAIT, |s| s.fin.contains(&data) && s.fin.contains(&error))
            .await?;
        let page = s.text(data);
        ensure(page.contains("forwarded-ok"), || {
            format!("tunnelled page {page:?}")
        })?;
        // A port the request did not name is refused.
        let error = s
            .open(&[
                ("streamType", "error"),
                ("port", "8081"),
                ("requestID", "1"),
            ])
            .await?;
        s.open(&[("streamType", "data"), ("port", "8081"), ("requestID", "1")])
            .await?;
        s.read_until(WAIT, |s| s.fin.contains(&error)).await?;
        ensure(s.text(error).contains("not named"), || {
            format!("unnamed port error {:?}", s.text(error))
        })?;

        drop(s);

        // WebSocket channels, ports in the query: data on channel 0, errors on 1, each
        // channel opened with the port (little-endian).
        let url = rt
            .port_forward(PortForwardRequest {
                pod_sandbox_id: pod_id.clone(),
                port: vec![],
            })
            .await?
            .into_inner()
            .url;
        let up = upgrade(
            &format!("{url}?port=8080"),
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Protocol", "v4.channel.k8s.io"),
            ],
        )
        .await?;
        ensure(up.status == 101, || {
            format!("ws channels upgrade {} {}", up.status, up.body)
        })?;
        let mut ws = WsClient::new(up.stream);
        ws.send(0, b"GET / HTTP/1.0\r\n\r\n").await?;
        ws.read_to_close(WAIT).await?;
        let data = ws.channels.get(&0).cloned().unwrap_or_default();
        ensure(
            data.starts_with(&8080u16.to_le_bytes())
                && String::from_utf8_lossy(&data).contains("forwarded-ok")
                && ws.channels.get(&1).map(Vec::as_slice) == Some(&8080u16.to_le_bytes()[..]),
            || format!("ws channels: {:?}", ws.channels),
        )?;

        // The page is not on the host's loopback: the connect happened in the pod.
        ensure(
            std::net::TcpStream::connect("127.0.0.1:8080").is_err(),
            || "something on the host's 127.0.0.1:8080 makes this test meaningless".into(),
        )?;
        stop_and_remove_pod(rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-u");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}

/// What a crictl run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn crictl(b: &Berthd, bin: &std::path::Path, args: &[&str], input: Option<&str>) -> Run {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let endpoint = format!("unix://{}", b.socket().display());
    let mut child = Command::new("timeout")
        .args(["-k", "2", "10"])
        .arg(bin)
        .args([
            "--runtime-endpoint",
            &endpoint,
            "--image-endpoint",
            &endpoint,
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run crictl");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(i) = input {
        let _ = stdin.write_all(i.as_bytes());
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait crictl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Upstream crictl (given by BERTH_CRICTL) against berthd's streaming server, both
/// transports: exec with and without stdin and a terminal, exit codes, attach,
/// port-forward.
pub fn crictl_exec_attach_and_port_forward_interoperate(bin: std::path::PathBuf) -> TestResult {
    with_berthd("/berth-e2e-v", async |b, rt| {
        let image = pull(b).await?;
        let pod = pod_config("crictl", &b.dir.join("logs"));
        let pod_id = run_pod(rt, pod.clone()).await?;
        let c = start_container(
            rt,
            &pod_id,
            &pod,
            container_config("c", &image, "exec sleep 1000"),
        )
        .await?;
        start_container(
            rt,
            &pod_id,
            &pod,
            container_config(
                "srv",
                &image,
                "mkdir /www && echo crictl-ok > /www/index.html && exec busybox httpd -f -p 127.0.0.1:8080 -h /www",
            ),
        )
        .await?;
        let mut config = container_config("echo", &image, "while read l; do echo \"got $l\"; done");
        config.stdin = true;
        let echo = start_container(rt, &pod_id, &pod, config).await?;
        let fail = |what: &str, r: &Run| -> Failed {
            format!(
                "{what}: exit {} out {:?} err {:?}",
                r.code, r.stdout, r.stderr
            )
            .into()
        };
        for (n, t) in ["spdy", "websocket"].into_iter().enumerate() {
            eprintln!("crictl over {t}");
            let r = crictl(
                b,
                &bin,
                &["exec", "-r", t, &c, "busybox", "echo", "hi"],
                None,
            );
            if r.code != 0 || r.stdout != "hi\n" {
                return Err(fail(&format!("{t} exec echo"), &r));
            }
            let r = crictl(
                b,
                &bin,
                &["exec", "-i", "-r", t, &c, "busybox", "cat"],
                Some("hello"),
            );
            if r.code != 0 || r.stdout != "hello" {
                return Err(fail(&format!("{t} exec -i cat"), &r));
            }
            let r = crictl(b, &bin, &["exec", "-r", t, &c, "sh", "-c", "exit 3"], None);
            // crictl exits 1 and prints client-go's reading of berthd's v4 status.
            if r.code == 0 || !r.stderr.contains("command terminated with exit code 3") {
                return Err(fail(&format!("{t} exec exit 3"), &r));
            }
            // -t needs a terminal on crictl's side: script(1) gives it one.
            let endpoint = format!("unix://{}", b.socket().display());
            let line = format!(
                "timeout --foreground 20 {} --runtime-endpoint {endpoint} exec -it -r {t} {c} busybox tty",
                bin.display()
            );
            let out = std::process::Command::new("timeout")
                .args(["30", "script", "-qec", &line, "/dev/null"])
                .stdin(std::process::Stdio::null())
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() || !text.contains("/dev/pts/") {
                return Err(format!("{t} exec -it tty: {:?} {text:?}", out.status).into());
            }
            // An interactive shell: a command typed in, its output, the exit status.
            let line = format!(
                "timeout --foreground 20 {} --runtime-endpoint {endpoint} exec -it -r {t} {c} sh",
                bin.display()
            );
            let mut sh = std::process::Command::new("timeout")
                .args(["30", "script", "-qec", &line, "/dev/null"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()?;
            {
                use std::io::Write;
                let mut input = sh.stdin.take().unwrap();
                input.write_all(b"echo typed-$((6*7)); exit 5\n")?;
                // Held open until the shell has exited: script would send EOF early.
                let out = sh.wait_with_output()?;
                drop(input);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                if out.status.success()
                    || !text.contains("typed-42")
                    || !text.contains("exit code 5")
                {
                    return Err(format!("{t} exec -it sh: {:?} {text:?}", out.status).into());
                }
            }
            let r = crictl(
                b,
                &bin,
                &["attach", "-i", "-r", t, &echo],
                Some(&format!("ping-{t}\n")),
            );
            if !r.stdout.contains(&format!("got ping-{t}")) {
                return Err(fail(&format!("{t} attach"), &r));
            }
            let local = format!("{}", 18090 + n);
            let mut pf = std::process::Command::new(&bin)
                .args([
                    "--runtime-endpoint",
                    &endpoint,
                    "port-forward",
                    "-r",
                    t,
                    &pod_id,
                    &format!("{local}:8080"),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()?;
            let mut page = String::new();
            for _ in 0..50 {
                if let Ok(p) = http_get(&format!("127.0.0.1:{local}")) {
                    page = p;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = pf.kill();
            let out = pf.wait_with_output()?;
            ensure(page.contains("crictl-ok"), || {
                format!(
                    "{t} port-forward page {page:?}; crictl: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        }
        ensure(
            status(rt, &echo).await?.state() == ContainerState::ContainerRunning,
            || "attached container stopped".into(),
        )?;
        stop_and_remove_pod(rt, &pod_id).await?;
        let left = leftovers(b, "/berth-e2e-v");
        ensure(left.is_empty(), || format!("left behind: {left:#?}"))
    })
}
