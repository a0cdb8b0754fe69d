//! Prometheus metrics and health: `GET /metrics` (text exposition format 0.0.4) and
//! `GET /healthz`, served over HTTP/1.1 on loopback by default (`[metrics]` in the config).
//!
//! Written by hand: the format is a few lines of text, and no Prometheus client crate is
//! available to this build offline. What is exported:
//!
//! - `berth_cri_requests_total{method,code}` and `berth_cri_request_duration_seconds{method}`
//!   (histogram), recorded by the one instrumentation layer every RPC goes through;
//! - `berth_pods{state}`, `berth_containers{state}`, `berth_shims`, read at scrape time;
//! - `berth_image_pulls_total{result}`, `berth_image_pull_bytes_total`;
//! - `berth_build_info{version}`, and the usual `process_*` metrics of berthd itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_sandbox::Sandboxes;
use berth_sandbox::records::{ContainerState, PodState};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// Upper bounds (seconds) of the RPC latency histogram.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Rpc {
    codes: BTreeMap<&'static str, u64>,
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Counters berthd keeps; shared by the services and the HTTP endpoint.
#[derive(Default)]
pub struct Metrics {
    rpcs: Mutex<HashMap<&'static str, Rpc>>,
    pulls_ok: AtomicU64,
    pulls_failed: AtomicU64,
    pull_bytes: AtomicU64,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// One finished RPC.
    pub fn observe(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        let mut rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
        let r = rpcs.entry(method).or_default();
        if r.buckets.is_empty() {
            r.buckets = vec![0; BUCKETS.len()];
        }
        *r.codes.entry(code_name(code)).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                r.buckets[i] += 1;
            }
        }
        r.sum += secs;
        r.count += 1;
    }

    /// One image pull: its outcome and, when it succeeded, the image's size.
    pub fn pull(&self, ok: bool, bytes: u64) {
        if ok {
            self.pulls_ok.fetch_add(1, Ordering::Relaxed);
            self.pull_bytes.fetch_add(bytes, Ordering::Relaxed);
        } else {
            self.pulls_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text.
    pub fn render(&self, sandboxes: &Sandboxes, state_dir: &std::path::Path) -> String {
        let mut out = String::new();
        head(
            &mut out,
            "berth_build_info",
            "gauge",
            "berthd's version, as a label.",
        );
        let _ = writeln!(
            out,
            "berth_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        {
            let rpcs = self.rpcs.lock().unwrap_or_else(|p| p.into_inner());
            let mut methods: Vec<_> = rpcs.iter().collect();
            methods.sort_by_key(|(m, _)| *m);
            head(
                &mut out,
                "berth_cri_requests_total",
                "counter",
                "CRI calls answered, by method and gRPC code.",
            );
            for (m, r) in &methods {
                for (code, n) in &r.codes {
                    let _ = writeln!(
                        out,
                        "berth_cri_requests_total{{method=\"{m}\",code=\"{code}\"}} {n}"
                    );
                }
            }
            head(
                &mut out,
                "berth_cri_request_duration_seconds",
                "histogram",
                "How long CRI calls took, by method.",
            );
            for (m, r) in &methods {
                for (bound, n) in BUCKETS.iter().zip(&r.buckets) {
                    let _ = writeln!(
                        out,
                        "berth_cri_request_duration_seconds_bucket{{method=\"{m}\",le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "berth_cri_request_duration_seconds_bucket{{method=\"{m}\",le=\"+Inf\"}} {}\n\
                     berth_cri_request_duration_seconds_sum{{method=\"{m}\"}} {}\n\
                     berth_cri_request_duration_seconds_count{{method=\"{m}\"}} {}",
                    r.count, r.sum, r.count
                );
            }
        }

        // One copy of each list per scrape, counted per state.
        let pods = sandboxes.records().pods();
        let containers = sandboxes.records().containers();
        head(&mut out, "berth_pods", "gauge", "Pods, by state.");
        for (state, label) in [(PodState::Ready, "ready"), (PodState::NotReady, "notready")] {
            let n = pods.iter().filter(|p| p.state == state).count();
            let _ = writeln!(out, "berth_pods{{state=\"{label}\"}} {n}");
        }
        head(
            &mut out,
            "berth_containers",
            "gauge",
            "Containers, by state.",
        );
        for (state, label) in [
            (ContainerState::Created, "created"),
            (ContainerState::Running, "running"),
            (ContainerState::Exited, "exited"),
        ] {
            let n = containers.iter().filter(|c| c.state == state).count();
            let _ = writeln!(out, "berth_containers{{state=\"{label}\"}} {n}");
        }
        head(
            &mut out,
            "berth_shims",
            "gauge",
            "Shim state directories: one per pod and per container not yet removed.",
        );
        let shims = std::fs::read_dir(state_dir.join("shims"))
            .map(|d| d.count())
            .unwrap_or(0);
        let _ = writeln!(out, "berth_shims {shims}");

        head(
            &mut out,
            "berth_image_pulls_total",
            "counter",
            "PullImage calls, by result.",
        );
        let _ = writeln!(
            out,
            "berth_image_pulls_total{{result=\"success\"}} {}\nberth_image_pulls_total{{result=\"failure\"}} {}",
            self.pulls_ok.load(Ordering::Relaxed),
            self.pulls_failed.load(Ordering::Relaxed)
        );
        head(
            &mut out,
            "berth_image_pull_bytes_total",
            "counter",
            "Bytes of the images pulled (their blobs' sizes).",
        );
        let _ = writeln!(
            out,
            "berth_image_pull_bytes_total {}",
            self.pull_bytes.load(Ordering::Relaxed)
        );
        process_metrics(&mut out);
        out
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// process_* metrics of berthd, from /proc/self.
fn process_metrics(out: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), 1-based from field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> f64 {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page = rustix::param::page_size() as f64;
    let btime: f64 = std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(0);
    let metrics = [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time.",
            (field(14) + field(15)) / ticks,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident set size.",
            field(24) * page,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size.",
            field(23),
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time since the epoch.",
            btime + field(22) / ticks,
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            fds as f64,
        ),
        (
            "process_max_fds",
            "gauge",
            "Limit on open file descriptors.",
            max_fds as f64,
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// Serves `/metrics` and `/healthz` on `address` until the task is dropped. A port that
/// cannot be bound is logged and costs the metrics only, not berthd.
pub async fn serve(
    address: String,
    metrics: Arc<Metrics>,
    sandboxes: Arc<Sandboxes>,
    state_dir: std::path::PathBuf,
) {
    let listener = match TcpListener::bind(&address).await {
        Ok(l) => l,
        Err(e) => {
            warn!(address = %address, error = %e, "metrics endpoint not served");
            return;
        }
    };
    let bound: Option<SocketAddr> = listener.local_addr().ok();
    info!(address = ?bound, "serving /metrics and /healthz");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, sandboxes, state_dir) =
            (metrics.clone(), sandboxes.clone(), state_dir.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let body = respond(&req, &metrics, &sandboxes, &state_dir);
                async move { Ok::<_, std::convert::Infallible>(body) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = tokio::time::timeout(Duration::from_secs(30), conn).await {
                debug!(error = %e, "metrics connection timed out");
            }
        });
    }
}

fn respond(
    req: &Request<Incoming>,
    metrics: &Metrics,
    sandboxes: &Sandboxes,
    state_dir: &std::path::Path,
) -> Response<String> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(sandboxes, state_dir),
        ),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".to_string(),
        ),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe("m", tonic::Code::Ok, Duration::from_millis(3));
        m.observe("m", tonic::Code::NotFound, Duration::from_secs(2));
        let rpcs = m.rpcs.lock().unwrap();
        let r = &rpcs["m"];
        assert_eq!(r.count, 2);
        assert_eq!(r.codes["OK"], 1);
        assert_eq!(r.codes["NotFound"], 1);
        // 3 ms is under 5 ms and every larger bound; 2 s only under 2.5 s and above.
        let at = |b: f64| r.buckets[BUCKETS.iter().position(|x| *x == b).unwrap()];
        assert_eq!(at(0.0025), 0);
        assert_eq!(at(0.005), 1);
        assert_eq!(at(1.0), 1);
        assert_eq!(at(2.5), 2);
    }

    #[test]
    fn process_metrics_are_numbers() {
        let mut s = String::new();
        process_metrics(&mut s);
        let rss: f64 = s
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(rss > 1e6, "{s}");
    }
}
