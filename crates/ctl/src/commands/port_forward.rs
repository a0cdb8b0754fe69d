//! `port-forward POD [LOCAL:]REMOTE...`: PortForward, then one SPDY connection
//! (portforward.k8s.io) to the runtime's streaming server. Each local port listens on
//! 127.0.0.1; every accepted connection gets its own error+data stream pair (a new
//! requestID) and is copied both ways. Runs until Ctrl-C or the runtime ends the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_api::runtime::v1::PortForwardRequest;
use berth_cri_server::streaming::client::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

use crate::client::Ctx;
use crate::commands::resolve_pods;
use crate::error::Error;
use crate::stream::{PORTFORWARD, Writer, connect, spawn_reader};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod id (or unique prefix)
    pod_id: String,
    /// Ports: [local:]remote (local 0 picks a free port)
    #[arg(required = true)]
    ports: Vec<String>,
}

/// Parses `[local:]remote`; a bare remote port listens on the same local port.
fn parse_port(s: &str) -> Result<(u16, u16), Error> {
    let bad = || Error::Usage(format!("port-forward: port {s}: want [local:]remote"));
    let (local, remote) = match s.split_once(':') {
        Some(("", r)) => (r, r),
        Some((l, r)) => (l, r),
        None => (s, s),
    };
    let local = local.parse::<u16>().map_err(|_| bad())?;
    let remote = remote.parse::<u16>().map_err(|_| bad())?;
    if remote == 0 {
        return Err(bad());
    }
    Ok((local, remote))
}

/// Where the reader hands each stream's data: `None` when the server closed or reset it.
type Routes = Arc<std::sync::Mutex<HashMap<u32, mpsc::UnboundedSender<Option<Vec<u8>>>>>>;

struct Session {
    writer: Mutex<Writer>,
    routes: Routes,
    next_request: AtomicU64,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let ports = args
        .ports
        .iter()
        .map(|p| parse_port(p))
        .collect::<Result<Vec<_>, _>>()?;
    let pod = resolve_pods(ctx, std::slice::from_ref(&args.pod_id))
        .await?
        .remove(0);
    let mut rt = ctx.runtime().await?;
    let url = ctx
        .call(
            "PortForward",
            rt.port_forward(PortForwardRequest {
                pod_sandbox_id: pod,
                port: ports.iter().map(|(_, r)| i32::from(*r)).collect(),
            }),
        )
        .await?
        .url;
    let (reader, writer) = connect(&url, PORTFORWARD).await?;
    let session = Arc::new(Session {
        writer: Mutex::new(writer),
        routes: Routes::default(),
        next_request: AtomicU64::new(0),
    });
    let mut events = spawn_reader(reader);
    let routes = session.routes.clone();
    let ended = tokio::spawn(async move {
        while let Some(Ok(ev)) = events.recv().await {
            let mut routes = routes.lock().expect("routes lock");
            match ev {
                Event::Data { stream, bytes } => {
                    if let Some(tx) = routes.get(&stream) {
                        let _ = tx.send(Some(bytes));
                    }
                }
                Event::Closed { stream } | Event::Reset { stream } => {
                    if let Some(tx) = routes.remove(&stream) {
                        let _ = tx.send(None);
                    }
                }
                Event::GoAway => break,
                Event::Replied { .. } | Event::Ping { .. } => {}
            }
        }
        routes.lock().expect("routes lock").clear();
    });
    for (local, remote) in ports {
        let listener = TcpListener::bind(("127.0.0.1", local))
            .await
            .map_err(|e| Error::Stream(format!("listen on 127.0.0.1:{local}: {e}")))?;
        let port = listener.local_addr()?.port();
        println!("Forwarding from 127.0.0.1:{port} -> {remote}");
        let session = session.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let session = session.clone();
                tokio::spawn(async move {
                    if let Err(e) = forward(&session, conn, remote).await {
                        eprintln!("port-forward {port} -> {remote}: {e}");
                    }
                });
            }
        });
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = ended => Err(Error::Stream(format!("{url}: the runtime ended the session"))),
    }
}

/// Copies one local connection through a new error+data stream pair.
async fn forward(session: &Session, conn: TcpStream, remote: u16) -> std::io::Result<()> {
    let (err_tx, mut err_rx) = mpsc::unbounded_channel();
    let (data_tx, mut data_rx) = mpsc::unbounded_channel();
    let port = remote.to_string();
    let request = session
        .next_request
        .fetch_add(1, Ordering::Relaxed)
        .to_string();
    let data_id = {
        let mut w = session.writer.lock().await;
        // Routes first: the reader may see the server's answer before open returns.
        let error_id = w.next_id();
        let data_id = error_id + 2;
        {
            let mut routes = session.routes.lock().expect("routes lock");
            routes.insert(error_id, err_tx);
            routes.insert(data_id, data_tx);
        }
        let headers = |kind: &'static str| -> [(&str, &str); 3] {
            [
                ("streamType", kind),
                ("port", port.as_str()),
                ("requestID", request.as_str()),
            ]
        };
        w.open(&headers("error")).await?;
        w.open(&headers("data")).await?;
        data_id
    };
    let (mut rd, mut wr) = conn.into_split();
    let upload = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            let mut w = session.writer.lock().await;
            if n == 0 {
                return w.close(data_id).await;
            }
            w.send(data_id, &buf[..n]).await?;
        }
    };
    let download = async {
        let mut errors = true;
        loop {
            tokio::select! {
                d = data_rx.recv() => match d {
                    Some(Some(bytes)) => wr.write_all(&bytes).await?,
                    _ => break,
                },
                e = err_rx.recv(), if errors => match e {
                    Some(Some(msg)) => {
                        return Err(std::io::Error::other(
                            String::from_utf8_lossy(&msg).trim().to_string(),
                        ));
                    }
                    _ => errors = false,
                },
            }
        }
        let closed = wr.shutdown().await;
        // The runtime may close the data stream before its error arrives: wait briefly.
        if errors
            && let Ok(Some(Some(msg))) =
                tokio::time::timeout(Duration::from_secs(1), err_rx.recv()).await
        {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&msg).trim().to_string(),
            ));
        }
        closed
    };
    tokio::pin!(upload);
    tokio::pin!(download);
    tokio::select! {
        r = &mut upload => {
            r?;
            download.await
        }
        r = &mut download => {
            r?;
            // The remote end closed; let what the local client still sends drain briefly.
            let _ = tokio::time::timeout(Duration::from_secs(1), upload).await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_like_crictl() {
        assert_eq!(parse_port("8080:80").unwrap(), (8080, 80));
        assert_eq!(parse_port("80").unwrap(), (80, 80));
        assert_eq!(parse_port(":80").unwrap(), (80, 80));
        assert_eq!(parse_port("0:80").unwrap(), (0, 80));
        assert!(parse_port("x:80").is_err());
        assert!(parse_port("80:0").is_err());
    }
}
