//! The connection to the CRI runtime: endpoints, per-call timeouts, and errors that say
//! which endpoint or call failed.

use std::future::Future;
use std::time::Duration;

use berth_api::runtime::v1::image_service_client::ImageServiceClient;
use berth_api::runtime::v1::runtime_service_client::RuntimeServiceClient;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::config::Resolved;
use crate::error::Error;

/// What every command gets: the resolved settings and lazily opened clients.
pub struct Ctx {
    pub cfg: Resolved,
    runtime: Option<RuntimeServiceClient<Channel>>,
    image: Option<ImageServiceClient<Channel>>,
}

/// Where an endpoint string points.
#[derive(Debug, PartialEq)]
pub enum Target {
    Unix(String),
    Tcp(String),
}

/// Parses `unix:///path`, a bare absolute path, `tcp://host:port` or `http://host:port`.
pub fn parse_endpoint(endpoint: &str) -> Result<Target, Error> {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(Error::Usage(format!("endpoint {endpoint}: no socket path")));
        }
        return Ok(Target::Unix(path.to_string()));
    }
    if endpoint.starts_with('/') {
        return Ok(Target::Unix(endpoint.to_string()));
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(addr) = endpoint.strip_prefix(scheme) {
            return Ok(Target::Tcp(format!("http://{addr}")));
        }
    }
    Err(Error::Usage(format!(
        "endpoint {endpoint}: want unix:///path, tcp://host:port or http://host:port"
    )))
}

async fn connect(endpoint: &str, timeout: Duration) -> Result<Channel, Error> {
    let fail = |reason: String| Error::Connect {
        endpoint: endpoint.to_string(),
        reason,
    };
    match parse_endpoint(endpoint)? {
        Target::Unix(path) => {
            // The authority is a placeholder: CRI servers on a unix socket accept any.
            Endpoint::from_static("http://localhost")
                .connect_timeout(timeout)
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .map_err(|e| fail(source_chain(&e)))
        }
        Target::Tcp(uri) => Endpoint::from_shared(uri)
            .map_err(|e| fail(e.to_string()))?
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| fail(source_chain(&e))),
    }
}

/// The innermost cause is the useful one ("No such file or directory").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        last = s.to_string();
        cur = s.source();
    }
    last
}

impl Ctx {
    pub fn new(cfg: Resolved) -> Ctx {
        Ctx {
            cfg,
            runtime: None,
            image: None,
        }
    }

    /// The RuntimeService client, connected on first use.
    pub async fn runtime(&mut self) -> Result<RuntimeServiceClient<Channel>, Error> {
        if self.runtime.is_none() {
            let ch = connect(&self.cfg.runtime_endpoint, self.cfg.timeout).await?;
            self.runtime = Some(RuntimeServiceClient::new(ch).max_decoding_message_size(64 << 20));
        }
        Ok(self.runtime.clone().expect("connected above"))
    }

    /// The ImageService client, connected on first use.
    pub async fn image(&mut self) -> Result<ImageServiceClient<Channel>, Error> {
        if self.image.is_none() {
            let ch = connect(&self.cfg.image_endpoint, self.cfg.timeout).await?;
            self.image = Some(ImageServiceClient::new(ch).max_decoding_message_size(64 << 20));
        }
        Ok(self.image.clone().expect("connected above"))
    }

    /// Runs one unary call within `--timeout`.
    pub async fn call<T: Serialize>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Error> {
        self.call_within(call, Some(self.cfg.timeout), fut).await
    }

    /// Runs one call within `limit` (None: no limit, for pulls and streams).
    pub async fn call_within<T: Serialize>(
        &self,
        call: &'static str,
        limit: Option<Duration>,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Error> {
        if self.cfg.debug {
            eprintln!("DEBUG {call} request sent");
        }
        let res = match limit {
            Some(d) => tokio::time::timeout(d, fut)
                .await
                .map_err(|_| Error::Timeout {
                    call,
                    secs: d.as_secs_f64(),
                })?,
            None => fut.await,
        };
        let res = res.map_err(|s| Error::rpc(call, s))?.into_inner();
        if self.cfg.debug {
            eprintln!(
                "DEBUG {call} response: {}",
                serde_json::to_string(&res).unwrap_or_default()
            );
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoint("unix:///run/berth/berth.sock").unwrap(),
            Target::Unix("/run/berth/berth.sock".into())
        );
        assert_eq!(
            parse_endpoint("/run/x.sock").unwrap(),
            Target::Unix("/run/x.sock".into())
        );
        assert_eq!(
            parse_endpoint("tcp://127.0.0.1:1234").unwrap(),
            Target::Tcp("http://127.0.0.1:1234".into())
        );
        assert!(parse_endpoint("unix://").is_err());
        assert!(parse_endpoint("npipe:////./pipe/x").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn missing_socket_names_the_endpoint() {
        let err = connect("unix:///nonexistent/berth.sock", Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot connect to unix:///nonexistent/berth.sock: is berthd running?"),
            "{err}"
        );
    }
}
