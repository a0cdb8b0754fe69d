//! The gRPC server on the CRI unix socket, and beside it the streaming server that
//! Exec, Attach and PortForward send clients to.
//!
//! Shutdown stops accepting, lets in-flight calls finish (bounded by
//! [`SHUTDOWN_GRACE`]) and removes the socket. Nothing else is torn down: containers
//! and their shims must outlive berthd.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tracing::{info, warn};

use berth_sandbox::{Options, Sandboxes};

use crate::config::{Config, helper_binary};
use crate::error::{Error, Result};
use crate::image::{ImageService, ImageServiceServer};
use crate::metrics::Metrics;
use crate::runtime::{RuntimeService, RuntimeServiceServer};
use crate::streaming::Streaming;

/// The kubelet's own limit for CRI messages, both ways.
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// How long in-flight calls get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Mode of the CRI socket: root (and the root group) only.
const SOCKET_MODE: u32 = 0o660;

/// Binds the CRI socket, serves until `shutdown` completes, then removes the socket.
pub async fn serve(config: Arc<Config>, shutdown: impl Future<Output = ()>) -> Result<()> {
    let images = Arc::new(
        berth_image::Store::open(config.root.join("image"))?
            .with_max_layer_bytes(config.registry.max_layer_bytes),
    );
    let snapshots = Arc::new(berth_image::Snapshotter::open(
        config.root.join("snapshots"),
    )?);
    let sandboxes = Arc::new(Sandboxes::open(
        sandbox_options(&config),
        images.clone(),
        snapshots.clone(),
    )?);
    berth_sandbox::recovery::recover(&sandboxes).await?;
    let streaming = Arc::new(Streaming::start(&config.streaming, sandboxes.clone()).await?);
    let listener = bind(&config.socket)?;
    info!(socket = %config.socket.display(), "serving CRI v1");

    let metrics = Metrics::new();
    let image_service = Arc::new(ImageService::new(
        config.clone(),
        images.clone(),
        snapshots.clone(),
        metrics.clone(),
    ));
    image_service.pin_configured()?;
    let runtime = RuntimeServiceServer::new(RuntimeService::new(
        config.clone(),
        sandboxes.clone(),
        image_service.clone(),
        metrics.clone(),
        streaming,
    ))
    .max_decoding_message_size(MAX_MESSAGE_SIZE)
    .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let image = ImageServiceServer::from_arc(image_service)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);

    let metrics_task = config.metrics.enabled.then(|| {
        tokio::spawn(crate::metrics::serve(
            config.metrics.address.clone(),
            metrics,
            sandboxes,
            config.state.clone(),
        ))
    });
    notify_ready();

    // The signal is forwarded so that the grace period starts when it arrives.
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(runtime)
        .add_service(image)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
            let _ = stop_rx.await;
        });
    tokio::pin!(server);

    let served = tokio::select! {
        result = &mut server => Some(result),
        () = shutdown => None,
    };
    let result = match served {
        Some(result) => result,
        None => {
            info!("shutting down: no new connections, finishing in-flight calls");
            let _ = stop_tx.send(());
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    warn!(
                        grace_s = SHUTDOWN_GRACE.as_secs(),
                        "in-flight calls still running; leaving"
                    );
                    Ok(())
                }
            }
        }
    };
    if let Some(t) = metrics_task {
        t.abort();
    }
    remove_socket(&config.socket);
    result.map_err(|e| Error::Internal(format!("grpc server: {e}")))
}

/// Tells systemd (Type=notify) that berthd serves: `READY=1` to $NOTIFY_SOCKET, if set.
fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
    let sent = std::os::unix::net::UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        match bytes.strip_prefix(b"@") {
            // An abstract socket address.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(msg.as_bytes(), &addr)
            }
            None => sock.send_to(msg.as_bytes(), &path),
        }
    });
    match sent {
        Ok(_) => info!("readiness sent to systemd"),
        Err(e) => warn!(error = %e, "cannot notify systemd"),
    }
}

fn sandbox_options(config: &Config) -> Options {
    Options {
        root: config.root.clone(),
        state: config.state.clone(),
        shim_binary: helper_binary(&config.shim_binary, "berth-shim"),
        runtime_binary: helper_binary(&config.runtime_binary, "berth-oci"),
        cni_conf_dir: config.cni.conf_dir.clone(),
        cni_bin_dirs: config.cni.bin_dirs.clone(),
        default_cgroup_parent: config.cgroup_parent.clone(),
        pause_image: (!config.pause_image.is_empty()).then(|| config.pause_image.clone()),
    }
}

/// Creates the socket's directory, clears a stale socket, binds and restricts it.
fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create socket dir", parent, e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::FailedPrecondition(format!(
                    "socket {} is in use by another process",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(|e| Error::io("remove stale socket", path, e))?;
        }
        Ok(_) => {
            return Err(Error::FailedPrecondition(format!(
                "{} exists and is not a socket",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("stat socket", path, e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| Error::io("bind socket", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| Error::io("chmod socket", path, e))?;
    if let Err(e) = std::os::unix::fs::chown(path, Some(0), Some(0)) {
        // Only root can give a file to root; an unprivileged berthd (tests, development)
        // keeps its own socket.
        warn!(socket = %path.display(), error = %e, "cannot make the socket root-owned");
    }
    Ok(listener)
}

fn remove_socket(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => info!(socket = %path.display(), "socket removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(socket = %path.display(), error = %e, "cannot remove socket"),
    }
}
