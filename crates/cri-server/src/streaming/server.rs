//! The streaming HTTP server: accepts TCP connections, reads one request with hyper,
//! checks its token and upgrades it to SPDY/3.1 or WebSocket.
//!
//! Whatever a client sends, a connection costs nothing lasting: the request head must
//! arrive within [`HANDSHAKE_TIMEOUT`] (and the connection is dropped if it has not been
//! upgraded by then), and a request that is refused closes it. A token is spent when its request arrives,
//! whether or not the upgrade then succeeds.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_sandbox::Sandboxes;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::portforward;
use super::remotecommand::{self, Version};
use super::spdy;
use super::tokens::{Target, TokenError, Tokens};
use super::websocket;
use crate::config::StreamingConfig;
use crate::error::{Error, Result};

/// How long a client has to send its request head.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections being handshaken at once; more are closed on accept. Upgraded sessions
/// are bounded by the tokens that admit them, not by this.
pub const MAX_HANDSHAKES: usize = 256;

const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";

struct Shared {
    tokens: Tokens,
    sandboxes: Arc<Sandboxes>,
}

/// The running server; dropping it stops accepting (sessions already running go on).
pub struct Streaming {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Streaming {
    /// Binds the configured address (port 0: an ephemeral port) and starts accepting.
    pub async fn start(config: &StreamingConfig, sandboxes: Arc<Sandboxes>) -> Result<Streaming> {
        let bind = SocketAddr::new(config.address, config.port);
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| Error::Internal(format!("bind streaming server on {bind}: {e}")))?;
        let mut addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("streaming server address: {e}")))?;
        if addr.ip().is_unspecified() {
            // URLs must name a reachable address; a wildcard bind serves loopback too.
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let shared = Arc::new(Shared {
            tokens: Tokens::new(),
            sandboxes,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        info!(address = %addr, "streaming server listening");
        Ok(Streaming {
            shared,
            addr,
            accept,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stores `target` under a new token and returns its absolute URL.
    pub fn url_for(&self, target: Target) -> Result<String> {
        let kind = target.kind();
        let token = self.shared.tokens.insert(target).map_err(|e| match e {
            TokenError::Full => Error::FailedPrecondition(e.to_string()),
            TokenError::Random(_) => Error::Internal(e.to_string()),
        })?;
        Ok(format!("http://{}/{kind}/{token}", self.addr))
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "streaming server accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            debug!(peer = %peer, "too many streaming handshakes; connection closed");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            if let Err(e) = keepalive(&tcp) {
                debug!(peer = %peer, error = %e, "tcp keepalive");
            }
            let service = service_fn(move |req| handle(shared.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(peer = %peer, error = %e, "streaming connection"),
                Err(_) => debug!(peer = %peer, "streaming handshake timed out"),
            }
        });
    }
}

/// TCP keepalive: a client whose host vanished without closing is found out in about a
/// minute (30 s idle, then 3 probes 10 s apart) and its session ends as if it had left.
fn keepalive(tcp: &tokio::net::TcpStream) -> nix::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(tcp, sockopt::KeepAlive, &true)?;
    setsockopt(tcp, sockopt::TcpKeepIdle, &30)?;
    setsockopt(tcp, sockopt::TcpKeepInterval, &10)?;
    setsockopt(tcp, sockopt::TcpKeepCount, &3)
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response<String> {
    let mut body: String = message.into();
    body.push('\n');
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // One request per connection. Only on refusals: Go's HTTP client drops a
    // `Connection` header that says `close`, and with it the `Upgrade` of a 101.
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Every value of `name`, comma lists split.
fn header_values(req: &Request<Incoming>, name: &str) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn wants_upgrade_to(req: &Request<Incoming>, protocol: &str) -> bool {
    header_values(req, CONNECTION.as_str())
        .iter()
        .any(|v| v.eq_ignore_ascii_case("upgrade"))
        && header_values(req, UPGRADE.as_str())
            .iter()
            .any(|v| v.eq_ignore_ascii_case(protocol))
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> std::result::Result<Response<String>, Infallible> {
    Ok(route(shared, req))
}

fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Response<String> {
    debug!(method = %req.method(), path = req.uri().path(), headers = ?req.headers(), "streaming request");
    let path = req.uri().path().trim_start_matches('/').to_string();
    let Some((kind, token)) = path.split_once('/') else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    if !matches!(kind, "exec" | "attach" | "portforward") {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let target = match shared.tokens.take(token) {
        Some(t) if t.kind() == kind => t,
        _ => {
            debug!(
                kind,
                "streaming request with an unknown, expired or used token"
            );
            return plain(
                StatusCode::NOT_FOUND,
                "unknown, expired or already used streaming token",
            );
        }
    };
    if wants_upgrade_to(&req, "spdy/3.1") {
        upgrade_spdy(shared, req, target)
    } else if wants_upgrade_to(&req, "websocket") {
        upgrade_websocket(shared, req, target)
    } else {
        plain(
            StatusCode::BAD_REQUEST,
            "this URL must be upgraded to SPDY/3.1 or WebSocket",
        )
    }
}

fn upgrade_spdy(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    target: Target,
) -> Response<String> {
    let offered = header_values(&req, STREAM_PROTOCOL_HEADER);
    let chosen: &'static str = match &target {
        Target::PortForward { .. } => {
            if !offered.iter().any(|o| o == portforward::PROTOCOL) {
                return no_protocol(&offered, &[portforward::PROTOCOL]);
            }
            portforward::PROTOCOL
        }
        Target::Exec { .. } | Target::Attach { .. } => {
            let version = if offered.is_empty() {
                Some(Version::V1)
            } else {
                Version::negotiate(offered.iter().map(String::as_str))
            };
            match version {
                Some(v) => v.name(),
                None => {
                    let names: Vec<&str> = Version::ALL.iter().map(|v| v.name()).collect();
                    return no_protocol(&offered, &names);
                }
            }
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                debug!(error = %e, "spdy upgrade failed");
                return;
            }
        };
        let conn = spdy::Connection::start(TokioIo::new(upgraded));
        let sandboxes = shared.sandboxes.clone();
        match target {
            Target::PortForward { pod_id, ports } => {
                portforward::serve_spdy(sandboxes, pod_id, ports, conn).await
            }
            target => {
                let version = Version::ALL
                    .into_iter()
                    .find(|v| v.name() == chosen)
                    .expect("chosen from the known versions");
                remotecommand::serve_spdy(sandboxes, target, version, conn).await
            }
        }
    });
    let mut resp = Response::new(String::new());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(STREAM_PROTOCOL_HEADER, HeaderValue::from_static(chosen));
    resp
}

fn upgrade_websocket(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    target: Target,
) -> Response<String> {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .map(str::to_owned);
    let version_ok = header_values(&req, "sec-websocket-version")
        .iter()
        .any(|v| v == "13");
    let (Some(key), true) = (key, version_ok) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "websocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version 13",
        );
    };
    let offered = header_values(&req, "sec-websocket-protocol");
    if let Target::PortForward { .. } = target {
        if offered
            .iter()
            .any(|o| o == websocket::SPDY_TUNNEL_PORTFORWARD)
        {
            return upgrade_websocket_tunnel(shared, req, target, &key, &offered);
        }
        return upgrade_websocket_port_channels(shared, req, target, &key, &offered);
    }
    let Some((name, version, base64)) = websocket::negotiate(&offered) else {
        return no_protocol(&offered, &["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                websocket::serve_remotecommand(
                    shared.sandboxes.clone(),
                    target,
                    version,
                    base64,
                    TokioIo::new(upgraded),
                )
                .await
            }
            Err(e) => debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut resp = Response::new(String::new());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&websocket::accept_key(&key)) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(name) = name {
        h.insert("sec-websocket-protocol", HeaderValue::from_static(name));
    }
    resp
}

/// Port forwarding over WebSocket: SPDY tunnelled in binary messages.
fn upgrade_websocket_tunnel(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    target: Target,
    key: &str,
    offered: &[String],
) -> Response<String> {
    if !offered
        .iter()
        .any(|o| o == websocket::SPDY_TUNNEL_PORTFORWARD)
    {
        return no_protocol(offered, &[websocket::SPDY_TUNNEL_PORTFORWARD]);
    }
    let Target::PortForward { pod_id, ports } = target else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let stream = websocket::tunnel(TokioIo::new(upgraded), websocket::Role::Server);
                let conn = spdy::Connection::start(stream);
                portforward::serve_spdy(shared.sandboxes.clone(), pod_id, ports, conn).await
            }
            Err(e) => debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut resp = Response::new(String::new());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&websocket::accept_key(key)) {
        h.insert("sec-websocket-accept", v);
    }
    h.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(websocket::SPDY_TUNNEL_PORTFORWARD),
    );
    resp
}

/// Port forwarding over WebSocket channels, the ports named in the query.
fn upgrade_websocket_port_channels(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    target: Target,
    key: &str,
    offered: &[String],
) -> Response<String> {
    const PROTOCOLS: [(&str, bool); 2] = [
        ("v4.channel.k8s.io", false),
        ("v4.base64.channel.k8s.io", true),
    ];
    let (name, base64) = if offered.is_empty() {
        (None, false)
    } else {
        match PROTOCOLS
            .iter()
            .find(|(p, _)| offered.iter().any(|o| o == p))
        {
            Some((p, b)) => (Some(*p), *b),
            None => {
                return no_protocol(
                    offered,
                    &[
                        websocket::SPDY_TUNNEL_PORTFORWARD,
                        PROTOCOLS[0].0,
                        PROTOCOLS[1].0,
                    ],
                );
            }
        }
    };
    let ports: Option<Vec<u16>> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "port")
        .flat_map(|(_, v)| v.split(','))
        .map(|p| p.parse::<u16>().ok().filter(|p| *p > 0))
        .collect();
    let ports = match ports {
        Some(p) if !p.is_empty() && p.len() <= 64 => p,
        _ => {
            return plain(
                StatusCode::BAD_REQUEST,
                "port forwarding over websocket channels needs 1 to 64 valid port query parameters",
            );
        }
    };
    let Target::PortForward {
        pod_id,
        ports: allowed,
    } = target
    else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                portforward::serve_websocket_channels(
                    shared.sandboxes.clone(),
                    pod_id,
                    allowed,
                    ports,
                    base64,
                    TokioIo::new(upgraded),
                )
                .await
            }
            Err(e) => debug!(error = %e, "websocket upgrade failed"),
        }
    });
    let mut resp = Response::new(String::new());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&websocket::accept_key(key)) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(name) = name {
        h.insert("sec-websocket-protocol", HeaderValue::from_static(name));
    }
    resp
}

fn no_protocol(offered: &[String], supported: &[&str]) -> Response<String> {
    plain(
        StatusCode::FORBIDDEN,
        format!(
            "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, \
             server supports {supported:?}"
        ),
    )
}
