//! The streaming server: where Exec, Attach and PortForward clients connect.
//!
//! The RPCs store what was asked under a single-use token ([`tokens`]) and answer with
//! `http://<address>:<port>/<exec|attach|portforward>/<token>`. The client upgrades that
//! request to SPDY/3.1 ([`spdy`]) or WebSocket ([`websocket`]) and speaks the Kubernetes
//! subprotocols: [`remotecommand`] for exec and attach, [`portforward`] for ports.
//! [`server`] accepts connections and does the HTTP handshake. docs/streaming.md has the
//! protocol notes. [`client`] is the other side, for tests and benchmarks.

pub mod client;
pub mod portforward;
pub mod remotecommand;
pub mod server;
pub mod spdy;
pub mod tokens;
pub mod websocket;

pub use server::Streaming;

use tokio::sync::watch;

/// Resolves once the client of a streaming connection has gone (EOF, error, idle).
#[derive(Clone)]
pub struct Gone(watch::Receiver<bool>);

impl Gone {
    pub fn new(rx: watch::Receiver<bool>) -> Gone {
        Gone(rx)
    }

    pub async fn wait(&mut self) {
        if self.0.wait_for(|g| *g).await.is_err() {
            // The sender went without saying: the connection is gone all the same.
        }
    }

    pub fn is_gone(&self) -> bool {
        *self.0.borrow()
    }
}

/// `bytes` random bytes as hex (exec ids).
pub(crate) fn random_hex(bytes: usize) -> Result<String, berth_sandbox::Error> {
    let mut b = vec![0u8; bytes];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| berth_sandbox::Error::Internal(format!("getrandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
