//! Port forwarding (`portforward.k8s.io`) over SPDY.
//!
//! For each forwarded connection the client opens two streams with the same `requestID`
//! header: `streamType: error` and `streamType: data`, both with a `port` header. Once both
//! are open berth connects to `localhost:<port>` inside the pod's network namespace and
//! copies bytes between the data stream and the socket; what goes wrong is written to the
//! error stream.
//!
//! The socket is made on a fresh `std::thread` that has entered the pod's network
//! namespace with `setns`; the connected socket stays in that namespace when the thread
//! exits and is handed to tokio. No pooled thread ever changes namespace.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_sandbox::Sandboxes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tracing::{debug, info};

use super::Gone;
use super::spdy::{Connection, Stream, Writer, frame::RST_REFUSED_STREAM};

/// The port-forward protocol's name.
pub const PROTOCOL: &str = "portforward.k8s.io";

/// How long a connect to the pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the second stream of a pair may take to arrive.
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwarded connections one port-forward session may hold open or half-made.
const MAX_PENDING: usize = 32;

#[derive(Default)]
struct Pair {
    data: Option<Stream>,
    error: Option<Stream>,
    since: Option<tokio::time::Instant>,
}

/// Serves one port-forward connection until the client goes.
pub async fn serve_spdy(
    sandboxes: Arc<Sandboxes>,
    pod_id: String,
    ports: Vec<u16>,
    mut conn: Connection,
) {
    let netns = match sandboxes.records().find_pod(&pod_id) {
        Some(pod) => pod.netns,
        None => return conn.close().await,
    };
    info!(pod_id = %pod_id, "port forward session");
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut gone = conn.gone();
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    loop {
        let stream = tokio::select! {
            s = conn.streams.recv() => match s {
                Some(s) => s,
                None => break,
            },
            () = gone.wait() => break,
            _ = sweep.tick() => {
                let now = tokio::time::Instant::now();
                pairs.retain(|_, p| p.since.is_some_and(|t| now.duration_since(t) < PAIR_TIMEOUT));
                continue;
            }
        };
        let kind = stream.header("streamtype").unwrap_or_default().to_string();
        let request_id = match stream.header("requestid") {
            Some(r) => r.to_string(),
            // Clients older than requestID pair the data stream right after the error one.
            None if kind == "data" => stream.id.saturating_sub(2).to_string(),
            None => stream.id.to_string(),
        };
        if (kind != "data" && kind != "error") || pairs.len() >= MAX_PENDING {
            conn.writer.reset(stream.id, RST_REFUSED_STREAM).await;
            continue;
        }
        let pair = pairs.entry(request_id.clone()).or_default();
        pair.since.get_or_insert_with(tokio::time::Instant::now);
        let slot = if kind == "data" {
            &mut pair.data
        } else {
            &mut pair.error
        };
        if slot.is_some() {
            conn.writer.reset(stream.id, RST_REFUSED_STREAM).await;
            continue;
        }
        *slot = Some(stream);
        if pair.data.is_some() && pair.error.is_some() {
            let pair = pairs.remove(&request_id).expect("pair just completed");
            let (data, error) = (pair.data.unwrap(), pair.error.unwrap());
            tokio::spawn(forward(
                pod_id.clone(),
                netns.clone(),
                ports.clone(),
                data,
                error,
                conn.writer.clone(),
                conn.gone(),
            ));
        }
    }
    debug!(pod_id = %pod_id, "port forward session ended");
    conn.close().await;
}

async fn forward(
    pod_id: String,
    netns: Option<PathBuf>,
    ports: Vec<u16>,
    mut data: Stream,
    error: Stream,
    writer: Writer,
    mut gone: Gone,
) {
    let port = data
        .header("port")
        .or(error.header("port"))
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0);
    let tcp = match port {
        None => Err("invalid or missing port header".to_string()),
        Some(p) if !ports.is_empty() && !ports.contains(&p) => {
            Err(format!("port {p} was not named in the PortForward request"))
        }
        Some(p) => connect(netns, p).await,
    };
    let tcp = match tcp {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "error forwarding port {} to pod {pod_id}: {e}",
                port.unwrap_or_default()
            );
            debug!(pod_id = %pod_id, error = %e, "port forward connect failed");
            writer.data(error.id, msg.as_bytes()).await;
            writer.fin(error.id).await;
            writer.fin(data.id).await;
            return;
        }
    };
    let (mut r, mut w) = tcp.into_split();
    let upload = async {
        while let Some(d) = data.data.recv().await {
            if w.write_all(&d).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    let download = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => writer.data(data.id, &buf[..n]).await,
            }
        }
        writer.fin(data.id).await;
    };
    // The forward ends when the pod's side closes (the client may still hold its half
    // open) or the client goes; the upload is dropped with it.
    tokio::select! {
        () = download => {}
        () = upload_then_wait(upload) => {}
        () = gone.wait() => {}
    }
    writer.fin(error.id).await;
}

/// Runs the upload, then never completes: its end alone does not end the forward.
async fn upload_then_wait(upload: impl Future<Output = ()>) {
    upload.await;
    std::future::pending::<()>().await
}

/// Connects to the port on the pod's loopback (IPv4, then IPv6); host-network pods
/// (no netns) connect on the host's.
async fn connect(netns: Option<PathBuf>, port: u16) -> Result<TcpStream, String> {
    let stream = match netns {
        None => {
            let (tx, rx) = oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(connect_loopback(port));
            });
            rx.await.map_err(|_| "connect thread died".to_string())??
        }
        Some(path) => {
            let (tx, rx) = oneshot::channel();
            std::thread::Builder::new()
                .name("berth-portfwd".into())
                .spawn(move || {
                    let _ = tx.send(connect_in_netns(&path, port));
                })
                .map_err(|e| format!("spawn connect thread: {e}"))?;
            rx.await.map_err(|_| "connect thread died".to_string())??
        }
    };
    stream
        .set_nonblocking(true)
        .map_err(|e| format!("set nonblocking: {e}"))?;
    TcpStream::from_std(stream).map_err(|e| format!("register socket: {e}"))
}

/// Runs on its own thread, which ends right after: the namespace switch dies with it.
fn connect_in_netns(netns: &Path, port: u16) -> Result<std::net::TcpStream, String> {
    let ns = std::fs::File::open(netns).map_err(|e| format!("open {}: {e}", netns.display()))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("enter network namespace {}: {e}", netns.display()))?;
    connect_loopback(port)
}

fn connect_loopback(port: u16) -> Result<std::net::TcpStream, String> {
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match std::net::TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e4) => {
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            std::net::TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT)
                .map_err(|_| format!("connect to localhost:{port}: {e4}"))
        }
    }
}

/// Port forwarding over WebSocket channels (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`,
/// or no subprotocol): the ports come from the URL's `port` query parameters, port `i`
/// gets data channel `2i` and error channel `2i+1`, and each channel's first message from
/// berthd is the port, two bytes little-endian. One connection to the pod per port.
pub async fn serve_websocket_channels<IO>(
    sandboxes: Arc<Sandboxes>,
    pod_id: String,
    allowed: Vec<u16>,
    ports: Vec<u16>,
    base64: bool,
    io: IO,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    use super::websocket::{self as ws, MessageReader};
    use tokio::sync::{mpsc, watch};

    let netns = sandboxes.records().find_pod(&pod_id).and_then(|p| p.netns);
    let (read, write) = tokio::io::split(io);
    let (frames_tx, frames_rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(ws::write_frames(write, frames_rx));
    let (gone_tx, gone_rx) = watch::channel(false);
    let mut uploads = Vec::new();
    let mut senders = Vec::new();
    for _ in &ports {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
        senders.push(Some(tx));
        uploads.push(rx);
    }
    let pongs = frames_tx.clone();
    let reader = tokio::spawn(async move {
        let mut reader = MessageReader::new(read, true);
        let idle = super::spdy::session::IDLE_TIMEOUT;
        while let Ok(Ok(Some((opcode, payload)))) = tokio::time::timeout(idle, reader.next()).await
        {
            let msg = match opcode {
                ws::OP_PING => {
                    let _ = pongs
                        .send(ws::encode_frame(ws::OP_PONG, &payload, None))
                        .await;
                    continue;
                }
                ws::OP_CLOSE => break,
                ws::OP_TEXT if base64 => match ws::decode_base64_message(&payload) {
                    Some(m) => m,
                    None => continue,
                },
                ws::OP_BINARY | ws::OP_TEXT => payload,
                _ => continue,
            };
            let Some((&channel, data)) = msg.split_first() else {
                continue;
            };
            let index = channel as usize / 2;
            if channel % 2 == 0
                && !data.is_empty()
                && let Some(slot) = senders.get_mut(index)
                && let Some(tx) = slot
                && tx.send(data.to_vec()).await.is_err()
            {
                *slot = None;
            }
        }
        let _ = gone_tx.send(true);
    });
    let mut forwards = Vec::new();
    for (i, (port, upload)) in ports.into_iter().zip(uploads).enumerate() {
        let (data_ch, error_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let frames = frames_tx.clone();
        let netns = netns.clone();
        let allowed = allowed.clone();
        let pod_id = pod_id.clone();
        let mut gone = Gone::new(gone_rx.clone());
        forwards.push(tokio::spawn(async move {
            let prefix = port.to_le_bytes();
            let _ = frames
                .send(ws::channel_message(base64, data_ch, &prefix))
                .await;
            let _ = frames
                .send(ws::channel_message(base64, error_ch, &prefix))
                .await;
            let tcp = if !allowed.is_empty() && !allowed.contains(&port) {
                Err(format!(
                    "port {port} was not named in the PortForward request"
                ))
            } else {
                connect(netns, port).await
            };
            let tcp = match tcp {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!("error forwarding port {port} to pod {pod_id}: {e}");
                    let _ = frames
                        .send(ws::channel_message(base64, error_ch, msg.as_bytes()))
                        .await;
                    return;
                }
            };
            let (mut r, mut w) = tcp.into_split();
            let mut upload = upload;
            let up = async {
                while let Some(d) = upload.recv().await {
                    if w.write_all(&d).await.is_err() {
                        break;
                    }
                }
                let _ = w.shutdown().await;
            };
            let down = async {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let m = ws::channel_message(base64, data_ch, &buf[..n]);
                            if frames.send(m).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            };
            tokio::select! {
                () = down => {}
                () = upload_then_wait(up) => {}
                () = gone.wait() => {}
            }
        }));
    }
    for f in forwards {
        let _ = f.await;
    }
    let _ = frames_tx
        .send(ws::encode_frame(ws::OP_CLOSE, &1000u16.to_be_bytes(), None))
        .await;
    drop(frames_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    reader.abort();
}
