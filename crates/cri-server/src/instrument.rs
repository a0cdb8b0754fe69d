//! What every RPC needs, written once: a tracing span named for the method, the request
//! and response at debug level, the error logged once and mapped to a gRPC status by
//! [`crate::error::to_status`]. Handlers stay plain `async fn(&self, Req) -> Result<Resp>`.

use std::fmt::Debug;
use std::pin::Pin;
use std::time::Instant;

use tokio_stream::Stream;
use tracing::{Instrument, Level, debug, error, info_span, warn};

use crate::error::{Error, to_status};

/// The stream type of every server-streaming RPC.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

/// Items per message of the Stream* list RPCs: a large node never hits the message
/// size limit.
pub(crate) const ITEMS_PER_MESSAGE: usize = 100;

/// A list answered as a stream of messages of at most [`ITEMS_PER_MESSAGE`] items (at
/// least one message, maybe empty).
pub(crate) fn paged<T: Clone, R: Send + 'static>(
    items: Vec<T>,
    wrap: impl Fn(Vec<T>) -> R,
) -> ResponseStream<R> {
    let mut messages: Vec<Result<R, tonic::Status>> = items
        .chunks(ITEMS_PER_MESSAGE)
        .map(|chunk| Ok(wrap(chunk.to_vec())))
        .collect();
    if messages.is_empty() {
        messages.push(Ok(wrap(Vec::new())));
    }
    Box::pin(tokio_stream::iter(messages))
}

/// Runs a unary handler inside the per-call span.
pub(crate) async fn unary<Req, Resp, Fut>(
    metrics: &crate::metrics::Metrics,
    method: &'static str,
    request: tonic::Request<Req>,
    handler: impl FnOnce(Req) -> Fut,
) -> Result<tonic::Response<Resp>, tonic::Status>
where
    Req: Debug,
    Resp: Debug,
    Fut: Future<Output = crate::Result<Resp>>,
{
    let span = info_span!("cri", method);
    async move {
        let started = Instant::now();
        let request = request.into_inner();
        debug!(?request, "request");
        let result = handler(request).await;
        let elapsed = started.elapsed();
        let elapsed_us = elapsed.as_micros() as u64;
        let result = match result {
            Ok(response) => {
                debug!(?response, elapsed_us, "response");
                Ok(tonic::Response::new(response))
            }
            Err(err) => Err(fail(&err, elapsed_us)),
        };
        let code = result.as_ref().err().map_or(tonic::Code::Ok, |s| s.code());
        metrics.observe(method, code, elapsed);
        result
    }
    .instrument(span)
    .await
}

/// Runs a server-streaming handler inside the per-call span. The span covers opening
/// the stream; items are not logged one by one.
pub(crate) async fn server_stream<Req, Item, Fut>(
    metrics: &crate::metrics::Metrics,
    method: &'static str,
    request: tonic::Request<Req>,
    handler: impl FnOnce(Req) -> Fut,
) -> Result<tonic::Response<ResponseStream<Item>>, tonic::Status>
where
    Req: Debug,
    Fut: Future<Output = crate::Result<ResponseStream<Item>>>,
{
    let span = info_span!("cri", method);
    async move {
        let started = Instant::now();
        let request = request.into_inner();
        debug!(?request, "request");
        let result = handler(request).await;
        let elapsed = started.elapsed();
        let elapsed_us = elapsed.as_micros() as u64;
        let result = match result {
            Ok(stream) => {
                debug!(elapsed_us, "stream opened");
                Ok(tonic::Response::new(stream))
            }
            Err(err) => Err(fail(&err, elapsed_us)),
        };
        let code = result.as_ref().err().map_or(tonic::Code::Ok, |s| s.code());
        metrics.observe(method, code, elapsed);
        result
    }
    .instrument(span)
    .await
}

/// Logs a failed call once, at a level fitting its cause, and maps it to a status.
fn fail(err: &Error, elapsed_us: u64) -> tonic::Status {
    let status = to_status(err);
    match level_for(status.code()) {
        Level::ERROR => error!(error = %err, code = ?status.code(), elapsed_us, "failed"),
        Level::WARN => warn!(error = %err, code = ?status.code(), elapsed_us, "failed"),
        _ => debug!(error = %err, code = ?status.code(), elapsed_us, "failed"),
    }
    status
}

/// Expected answers (an unknown id, an RPC not there yet) are not worth a warning: the
/// kubelet asks for gone objects routinely.
fn level_for(code: tonic::Code) -> Level {
    match code {
        tonic::Code::NotFound | tonic::Code::Unimplemented | tonic::Code::AlreadyExists => {
            Level::DEBUG
        }
        tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss => Level::ERROR,
        _ => Level::WARN,
    }
}

/// Implements a generated tonic service trait by routing each method through
/// [`unary`] or [`server_stream`] to the inherent `async fn` of the same name, which
/// lives in that RPC's own file. The inherent method takes the bare request message,
/// so a missing one is a type error, not a recursion into the trait method.
macro_rules! cri_service {
    (
        impl $trait_:path => $service:ty; prefix $prefix:literal;
        unary {
            $( $name:literal => $method:ident($req:ty) -> $resp:ty; )*
        }
        streaming {
            $( $sname:literal => $smethod:ident($sreq:ty) -> $stream:ident<$sresp:ty>; )*
        }
    ) => {
        #[tonic::async_trait]
        impl $trait_ for $service {
            $(
                async fn $method(
                    &self,
                    request: tonic::Request<$req>,
                ) -> Result<tonic::Response<$resp>, tonic::Status> {
                    $crate::instrument::unary(&self.metrics, concat!($prefix, "/", $name), request, |r| {
                        self.$method(r)
                    })
                    .await
                }
            )*
            $(
                type $stream = $crate::instrument::ResponseStream<$sresp>;

                async fn $smethod(
                    &self,
                    request: tonic::Request<$sreq>,
                ) -> Result<tonic::Response<Self::$stream>, tonic::Status> {
                    $crate::instrument::server_stream(
                        &self.metrics,
                        concat!($prefix, "/", $sname),
                        request,
                        |r| self.$smethod(r),
                    )
                    .await
                }
            )*
        }
    };
}
