//! The CRI ImageService end to end: the built berthd on a socket in a temp dir, pulling
//! from Debian's docker-registry started on loopback ports, with images built by
//! hack/images/build and pushed by skopeo. Needs those tools (hack/images/setup) and root
//! (the layers hold whiteouts); each test is reported ignored with the reason otherwise,
//! and fails instead when `CI` is set.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_api::runtime::v1::image_service_client::ImageServiceClient;
use berth_api::runtime::v1::{
    AuthConfig, ImageFilter, ImageFsInfoRequest, ImageSpec, ImageStatusRequest, ListImagesRequest,
    PullImageRequest, RemoveImageRequest, StreamImagesRequest,
};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");
const TOOLS: &[&str] = &[
    "/usr/bin/docker-registry",
    "/usr/bin/openssl",
    "/usr/bin/skopeo",
    "/bin/busybox",
];
const USER: &str = "berth";
const PASSWORD: &str = "berth-test";
/// bcrypt of PASSWORD (docker-registry accepts bcrypt only), for its htpasswd file.
const HTPASSWD: &str = "berth:$2y$12$Z3Eo7obPRcHYzQ7vJsTYt.G.U2heNmNCMg0xKz.ZKOiY29sBgAZ/G";

fn skip_reason() -> Option<String> {
    // /proc/self belongs to the process's effective uid.
    if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return Some("needs root (whiteout device nodes in the test layers)".into());
    }
    TOOLS
        .iter()
        .find(|t| !Path::new(t).exists())
        .map(|t| format!("{t} missing: run hack/images/setup"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A docker-registry on a free loopback port, killed on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(auth: bool) -> Self {
        Self::start_with(auth, None)
    }

    /// `tls`: (certificate, key) PEM files to serve HTTPS with.
    fn start_with(auth: bool, tls: Option<(&Path, &Path)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut extra = String::new();
        if let Some((cert, key)) = tls {
            extra.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            fs::write(&htpasswd, format!("{HTPASSWD}\n")).unwrap();
            extra.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let data = dir.path().join("data");
        Self::spawn(dir, &data, &extra, tls.is_some())
    }

    /// A registry over the storage `data` (pushed to by another registry) that accepts
    /// only bearer tokens signed by `signer` (a self-signed certificate), for service
    /// `berth-registry` from issuer `berth-issuer`.
    fn start_token_auth(data: &Path, signer: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:9/token\n    service: berth-registry\n    issuer: berth-issuer\n    rootcertbundle: {}\n",
            signer.display()
        );
        Self::spawn(dir, data, &extra, false)
    }

    /// `extra`: YAML appended after `http: addr:` (so `  tls:` nests under http).
    fn spawn(dir: tempfile::TempDir, data: &Path, extra: &str, tls: bool) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{extra}",
            data.display()
        );
        let config = dir.path().join("config.yml");
        fs::write(&config, yaml).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = Self {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while (!tls && reg.status_line("/v2/").is_none())
            || (tls && TcpStream::connect(&reg.addr).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "registry on {} did not start",
                reg.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    fn data(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Deletes a blob's data from the registry's storage: the registry still lists it in
    /// manifests but cannot serve it.
    fn break_blob(&self, digest: &str) {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let data = self
            ._dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        fs::remove_file(&data).unwrap();
    }

    fn status_line(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.lines().next().map(str::to_string)
    }

    fn push(&self, layout: &Layout, tag: &str, dest: &str, creds: bool) {
        self.push_with(layout, tag, dest, creds, &[]);
    }

    /// `extra`: skopeo flags (`--format v2s2`, `--all`).
    fn push_with(&self, layout: &Layout, tag: &str, dest: &str, creds: bool, extra: &[&str]) {
        let mut cmd = Command::new("/usr/bin/skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .args(extra);
        if creds {
            cmd.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        let st = cmd
            .arg(format!("oci:{}:{tag}", layout.path.display()))
            .arg(format!("docker://{}/{dest}", self.addr))
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "skopeo copy {tag} -> {dest}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Test images from hack/images/build, and the digests it wrote down.
struct Layout {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Layout {
    fn build() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layout");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/images/build");
        let st = Command::new(script).arg(&path).status().unwrap();
        assert!(st.success(), "hack/images/build");
        Self { _dir: dir, path }
    }

    fn digest(&self, name: &str) -> String {
        let text = fs::read_to_string(self.path.join("digests")).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        line.split(' ').nth(1).unwrap().to_string()
    }
}

/// berthd on a socket in a temp dir, with `config` as its config file; killed on drop.
struct Berthd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Berthd {
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.toml"), config).unwrap();
        let child = Self::spawn(dir.path());
        let b = Berthd { child, dir };
        b.wait_ready();
        b
    }

    fn spawn(dir: &Path) -> Child {
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr"))
            .unwrap();
        Command::new(BERTHD)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .arg("--socket")
            .arg(dir.join("run/berth.sock"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--state")
            .arg(dir.join("run"))
            .args(["--log-level", "debug"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn berthd")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "berthd did not listen; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then a new berthd on the same root, state and socket.
    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(self.dir.path());
        self.wait_ready();
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/berth.sock")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    async fn images(&self) -> ImageServiceClient<Channel> {
        let socket = self.socket();
        // tonic wants a URI; every connection goes to the socket.
        let channel = Endpoint::try_from("http://[::1]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(socket).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await
            .expect("connect to berthd");
        ImageServiceClient::new(channel)
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy to `upstream` that passes responses on slowly (16 KiB per 20 ms, about
/// 800 KB/s) and counts the bytes it passed, so that a test can act mid-download.
struct SlowProxy {
    addr: String,
    forwarded: Arc<AtomicUsize>,
}

impl SlowProxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let (upstream, count) = (upstream.to_string(), forwarded.clone());
        // Lives until the test process ends.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut client_w, mut server_r) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client, &mut server);
                    let _ = server.shutdown(std::net::Shutdown::Write);
                });
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 << 10];
                    loop {
                        match server_r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if client_w.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                                count.fetch_add(n, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                    let _ = client_w.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        SlowProxy { addr, forwarded }
    }
}

/// Temp names (`.tmp-*`) anywhere under `dir`.
fn temp_names(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                out.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) && !p.ends_with("fs") {
                stack.push(p);
            }
        }
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn spec(name: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: name.into(),
        ..Default::default()
    })
}

async fn pull(
    c: &mut ImageServiceClient<Channel>,
    name: &str,
    auth: Option<AuthConfig>,
) -> Result<String, tonic::Status> {
    c.pull_image(PullImageRequest {
        image: spec(name),
        auth,
        sandbox_config: None,
    })
    .await
    .map(|r| r.into_inner().image_ref)
}

async fn status_id(c: &mut ImageServiceClient<Channel>, name: &str) -> Option<String> {
    c.image_status(ImageStatusRequest {
        image: spec(name),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .image
    .map(|i| i.id)
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn pull_status_list_remove_and_fs_info_over_cri() {
    let layout = Layout::build();
    let reg = Registry::start(false);
    reg.push(&layout, "busybox", "test/busybox:1", false);
    let berthd = Berthd::start(&format!(
        "[registry]\nplain_http = [\"{}\"]\nconfig_path = \"/nonexistent/certs.d\"\n",
        reg.addr
    ));
    let config_id = layout.digest("config-amd64");
    let manifest = layout.digest("manifest-amd64");
    let tag = format!("{}/test/busybox:1", reg.addr);
    runtime().block_on(async {
        let mut c = berthd.images().await;

        // Unknown image: no image, not an error; removing it succeeds.
        assert_eq!(status_id(&mut c, "busybox").await, None);
        c.remove_image(RemoveImageRequest {
            image: spec("busybox"),
        })
        .await
        .unwrap();

        let image_ref = pull(&mut c, &tag, None).await.unwrap();
        assert_eq!(image_ref, config_id, "image_ref is the image id");

        // Status by tag, id (with and without sha256:), and repo digest.
        let by_digest = format!("{}/test/busybox@{manifest}", reg.addr);
        let hex = config_id.strip_prefix("sha256:").unwrap().to_string();
        for name in [&tag, &config_id, &hex, &by_digest] {
            assert_eq!(
                status_id(&mut c, name).await.as_deref(),
                Some(config_id.as_str()),
                "{name}"
            );
        }
        let st = c
            .image_status(ImageStatusRequest {
                image: spec(&tag),
                verbose: true,
            })
            .await
            .unwrap()
            .into_inner();
        let img = st.image.unwrap();
        assert_eq!(img.repo_tags, [tag.as_str()]);
        assert_eq!(img.repo_digests, [by_digest.as_str()]);
        assert!(img.size > 0);
        assert!(!img.pinned);
        assert_eq!(img.spec.unwrap().image, config_id);
        let info: serde_json::Value = serde_json::from_str(&st.info["info"]).unwrap();
        assert_eq!(
            info["imageSpec"]["config"]["Entrypoint"],
            serde_json::json!(["/bin/sh"]),
            "{info}"
        );

        // List, and list with a filter.
        let all = c.list_images(ListImagesRequest::default()).await.unwrap();
        assert_eq!(all.into_inner().images.len(), 1);
        for (name, n) in [(tag.as_str(), 1), ("busybox:nope", 0)] {
            let found = c
                .list_images(ListImagesRequest {
                    filter: Some(ImageFilter { image: spec(name) }),
                })
                .await
                .unwrap()
                .into_inner()
                .images;
            assert_eq!(found.len(), n, "{name}");
        }

        // StreamImages: the same, streamed.
        let mut stream = c
            .stream_images(StreamImagesRequest { filter: None })
            .await
            .unwrap()
            .into_inner();
        let mut streamed = Vec::new();
        while let Some(msg) = stream.message().await.unwrap() {
            streamed.extend(msg.images.into_iter().map(|i| i.id));
        }
        assert_eq!(streamed, [config_id.as_str()]);

        // Bad references and missing tags name the reference.
        let err = pull(&mut c, "Bad//Ref", None).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("Bad//Ref"), "{}", err.message());
        let missing = format!("{}/test/busybox:nope", reg.addr);
        let err = pull(&mut c, &missing, None).await.unwrap_err();
        assert!(err.message().contains(&missing), "{}", err.message());

        // Usage of the store and of the snapshots.
        let fs_info = c
            .image_fs_info(ImageFsInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        let images = &fs_info.image_filesystems[0];
        assert_eq!(
            images.fs_id.as_ref().unwrap().mountpoint,
            berthd.root().join("image").display().to_string()
        );
        let used = images.used_bytes.unwrap().value;
        assert!(used > 1_000_000, "busybox is in the store: {used}");
        assert!(images.inodes_used.unwrap().value > 5);
        assert!(images.timestamp > 0);
        let containers = &fs_info.container_filesystems[0];
        assert_eq!(
            containers.fs_id.as_ref().unwrap().mountpoint,
            berthd.root().join("snapshots").display().to_string()
        );

        // Remove by tag: gone, and its blobs and layers collected.
        c.remove_image(RemoveImageRequest { image: spec(&tag) })
            .await
            .unwrap();
        assert_eq!(status_id(&mut c, &config_id).await, None);
        assert_eq!(count_files(&berthd.root().join("image/blobs/sha256")), 0);
        assert_eq!(count_files(&berthd.root().join("image/layers")), 0);
        let after = c
            .image_fs_info(ImageFsInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        let after = after.image_filesystems[0].used_bytes.unwrap().value;
        assert!(after < used / 10, "{after} after remove, {used} before");
    });
}

fn concurrent_pulls_of_one_image_download_it_once() {
    let layout = Layout::build();
    let reg = Registry::start(false);
    reg.push(&layout, "busybox", "test/busybox:1", false);
    // Slow enough that the pulls overlap.
    let proxy = SlowProxy::start(&reg.addr);
    let berthd = Berthd::start(&format!("[registry]\nplain_http = [\"{}\"]\n", proxy.addr));
    let tag = format!("{}/test/busybox:1", proxy.addr);
    let by_digest = format!(
        "{}/test/busybox@{}",
        proxy.addr,
        layout.digest("manifest-amd64")
    );
    let id = layout.digest("config-amd64");
    runtime().block_on(async {
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(berthd.images().await);
        }
        let [a, b, c, d] = &mut clients[..] else {
            unreachable!()
        };
        // Two pulls of one reference, and two of another naming the same image.
        let (ra, rb, rc, rd) = tokio::join!(
            pull(a, &tag, None),
            pull(b, &tag, None),
            pull(c, &by_digest, None),
            pull(d, &by_digest, None)
        );
        for r in [ra, rb, rc, rd] {
            assert_eq!(r.map_err(|e| e.to_string()), Ok(id.clone()));
        }
    });
    let layers: u64 = ["layer1", "layer2"]
        .iter()
        .map(|l| {
            let hex = layout.digest(l);
            let hex = hex.strip_prefix("sha256:").unwrap();
            fs::metadata(layout.path.join("blobs/sha256").join(hex))
                .unwrap()
                .len()
        })
        .sum();
    let forwarded = proxy.forwarded.load(Ordering::SeqCst) as u64;
    assert!(
        forwarded < layers + layers / 2,
        "the layers ({layers} bytes) came once: {forwarded} bytes passed"
    );
    assert_eq!(count_files(&berthd.root().join("image/ingest")), 0);
}

/// hosts.toml: a mirror serving `registry.k8s.io/...` from loopback; a dead mirror and a
/// mirror without the image before the one with it; the `server` alone; and the error
/// when every endpoint fails naming each.
fn mirrors_are_tried_in_order_then_the_upstream() {
    let layout = Layout::build();
    let good = Registry::start(false);
    let empty = Registry::start(false);
    good.push(&layout, "busybox", "test/busybox:1", false);
    good.push_with(
        &layout,
        "busybox",
        "test/busybox:v2s2",
        false,
        &["--format", "v2s2"],
    );
    good.push_with(&layout, "multi", "test/busybox:multi", false, &["--all"]);
    // Serves the manifest and config, but not the first layer.
    let broken = Registry::start(false);
    broken.push(&layout, "busybox", "test/busybox:1", false);
    broken.break_blob(&layout.digest("layer1"));
    let dead = format!("127.0.0.1:{}", free_port());
    let certs = tempfile::tempdir().unwrap();
    let hosts = |registry: &str, text: String| {
        let d = certs.path().join(registry);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("hosts.toml"), text).unwrap();
    };
    hosts(
        "registry.k8s.io",
        format!(
            "[host.\"http://{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            good.addr
        ),
    );
    hosts(
        "fallback.example",
        format!(
            "server = \"http://{}\"\n[host.\"http://{dead}\"]\n[host.\"http://{}\"]\n",
            good.addr, empty.addr
        ),
    );
    hosts(
        "upstream.example",
        format!("server = \"http://{}\"\n", good.addr),
    );
    hosts(
        "blobs-elsewhere.example",
        format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\n",
            good.addr, broken.addr
        ),
    );
    hosts(
        "nowhere.example",
        format!(
            "server = \"http://{}\"\n[host.\"http://{dead}\"]\n",
            empty.addr
        ),
    );
    let berthd = Berthd::start(&format!(
        "[registry]\nconfig_path = \"{}\"\n",
        certs.path().display()
    ));
    let id = layout.digest("config-amd64");
    runtime().block_on(async {
        let mut c = berthd.images().await;
        // First, while the store is empty: the mirror resolves but lacks a layer, which
        // then comes from the upstream.
        for name in [
            "blobs-elsewhere.example/test/busybox:1",
            "registry.k8s.io/test/busybox:1",
            "fallback.example/test/busybox:1",
            "upstream.example/test/busybox:1",
        ] {
            let got = pull(&mut c, name, None).await;
            assert_eq!(got.map_err(|e| e.to_string()), Ok(id.clone()), "{name}");
            assert_eq!(status_id(&mut c, name).await.as_deref(), Some(id.as_str()));
        }
        // Every fixture manifest kind through the mirror: Docker v2s2, and an index
        // (linux/amd64 chosen; the repo digest is the index's).
        for name in [
            "registry.k8s.io/test/busybox:v2s2",
            "registry.k8s.io/test/busybox:multi",
        ] {
            let got = pull(&mut c, name, None).await;
            assert_eq!(got.map_err(|e| e.to_string()), Ok(id.clone()), "{name}");
        }
        let img = c
            .image_status(ImageStatusRequest {
                image: spec(&id),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .image
            .unwrap();
        assert!(
            img.repo_digests.contains(&format!(
                "registry.k8s.io/test/busybox@{}",
                layout.digest("index")
            )),
            "{img:?}"
        );
        assert!(
            img.repo_tags
                .contains(&"registry.k8s.io/test/busybox:1".to_string()),
            "the image keeps the name it was asked by: {img:?}"
        );
        let err = pull(&mut c, "nowhere.example/test/busybox:1", None)
            .await
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains("nowhere.example/test/busybox:1")
                && msg.contains(&dead)
                && msg.contains(&empty.addr),
            "{msg}"
        );
        // hosts.toml is read at each pull: a change applies with no restart or reload.
        hosts(
            "nowhere.example",
            format!("server = \"http://{}\"\n", good.addr),
        );
        let got = pull(&mut c, "nowhere.example/test/busybox:1", None).await;
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Ok(id.clone()),
            "after the change"
        );
    });
    let stderr = berthd.stderr();
    assert!(
        stderr.contains("endpoint failed, trying the next") && stderr.contains("blob fetch failed"),
        "fallbacks are logged"
    );
}

/// A registry with htpasswd basic auth: anonymous is refused with a message naming the
/// registry; the CRI AuthConfig (username/password, or `auth`) and a docker config.json
/// each let the pull through.
fn pull_with_credentials() {
    let layout = Layout::build();
    let reg = Registry::start(true);
    assert!(reg.status_line("/v2/").unwrap().contains("401"));
    reg.push(&layout, "busybox", "private/busybox:1", true);
    let tag = format!("{}/private/busybox:1", reg.addr);
    let id = layout.digest("config-amd64");
    let docker = tempfile::tempdir().unwrap();
    let docker_config = docker.path().join("config.json");
    // base64("berth:berth-test")
    fs::write(
        &docker_config,
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"YmVydGg6YmVydGgtdGVzdA==\"}}}}}}",
            reg.addr
        ),
    )
    .unwrap();
    // mirrored.example: the auth registry as its mirror, and a dead upstream.
    let certs = tempfile::tempdir().unwrap();
    let mirrored = certs.path().join("mirrored.example");
    fs::create_dir_all(&mirrored).unwrap();
    fs::write(
        mirrored.join("hosts.toml"),
        format!(
            "server = \"http://127.0.0.1:{}\"\n[host.\"http://{}\"]\n",
            free_port(),
            reg.addr
        ),
    )
    .unwrap();
    let plain = format!(
        "[registry]\nplain_http = [\"{}\"]\nconfig_path = \"{}\"\n",
        reg.addr,
        certs.path().display()
    );
    let mirrored_tag = "mirrored.example/private/busybox:1";
    let with_docker = format!("{plain}docker_config = \"{}\"\n", docker_config.display());
    let rt = runtime();

    let berthd = Berthd::start(&plain);
    rt.block_on(async {
        let mut c = berthd.images().await;
        let err = pull(&mut c, &tag, None).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unknown, "{err:?}");
        assert!(
            err.message().contains(&reg.addr) && err.message().contains("private/busybox"),
            "{}",
            err.message()
        );
        let wrong = AuthConfig {
            username: USER.into(),
            password: "wrong".into(),
            ..Default::default()
        };
        assert!(pull(&mut c, &tag, Some(wrong)).await.is_err());
        let basic = AuthConfig {
            username: USER.into(),
            password: PASSWORD.into(),
            ..Default::default()
        };
        assert_eq!(pull(&mut c, &tag, Some(basic)).await.unwrap(), id);
    });
    drop(berthd);

    let berthd = Berthd::start(&plain);
    rt.block_on(async {
        let mut c = berthd.images().await;
        let encoded = AuthConfig {
            auth: "YmVydGg6YmVydGgtdGVzdA==".into(),
            ..Default::default()
        };
        assert_eq!(pull(&mut c, &tag, Some(encoded)).await.unwrap(), id);
        // The pull's credential is for mirrored.example, not for its mirror: not sent there.
        let basic = AuthConfig {
            username: USER.into(),
            password: PASSWORD.into(),
            ..Default::default()
        };
        let err = pull(&mut c, mirrored_tag, Some(basic)).await.unwrap_err();
        assert!(err.message().contains(&reg.addr), "{}", err.message());
    });
    drop(berthd);

    let berthd = Berthd::start(&with_docker);
    rt.block_on(async {
        let mut c = berthd.images().await;
        assert_eq!(pull(&mut c, &tag, None).await.unwrap(), id);
        // The mirror gets the docker config's credential for its own host.
        assert_eq!(pull(&mut c, mirrored_tag, None).await.unwrap(), id);
    });
}

/// `max_layer_bytes` caps what a layer may unpack to: busybox's 2 MB layer against a
/// 100 kB cap fails the pull, names the layer, and leaves no unpacked layer behind.
fn layer_larger_than_max_layer_bytes_fails_the_pull() {
    let layout = Layout::build();
    let reg = Registry::start(false);
    reg.push(&layout, "busybox", "test/busybox:1", false);
    let berthd = Berthd::start(&format!(
        "[registry]\nplain_http = [\"{}\"]\nmax_layer_bytes = 100000\n",
        reg.addr
    ));
    let tag = format!("{}/test/busybox:1", reg.addr);
    runtime().block_on(async {
        let mut c = berthd.images().await;
        let err = pull(&mut c, &tag, None).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unknown, "{err:?}");
        assert!(
            err.message().contains("more than 100000 bytes"),
            "{}",
            err.message()
        );
        assert_eq!(status_id(&mut c, &tag).await, None);
    });
    assert_eq!(count_files(&berthd.root().join("image/layers")), 0);
}

/// `[registry] pinned_images`: the image is pinned when pulled, and RemoveImage refuses
/// it with FailedPrecondition naming it.
fn pinned_images_are_not_removed() {
    let layout = Layout::build();
    let reg = Registry::start(false);
    reg.push(&layout, "busybox", "test/pause:1", false);
    let tag = format!("{}/test/pause:1", reg.addr);
    let berthd = Berthd::start(&format!(
        "[registry]\nplain_http = [\"{}\"]\npinned_images = [\"{tag}\"]\n",
        reg.addr
    ));
    runtime().block_on(async {
        let mut c = berthd.images().await;
        let id = pull(&mut c, &tag, None).await.unwrap();
        let img = c
            .image_status(ImageStatusRequest {
                image: spec(&id),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .image
            .unwrap();
        assert!(img.pinned, "{img:?}");
        let err = c
            .remove_image(RemoveImageRequest { image: spec(&tag) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("pinned"), "{}", err.message());
        assert_eq!(status_id(&mut c, &tag).await, Some(id));
    });
}

/// berthd SIGKILLed in the middle of a layer download: after a restart the store holds
/// no temp files, a new pull succeeds, and after its removal ImageFsInfo counts nothing
/// left over (blobs and layers of the killed pull are collected).
fn killed_pull_then_restart_leaves_nothing_stray() {
    let layout = Layout::build();
    let reg = Registry::start(false);
    reg.push(&layout, "busybox", "test/busybox:1", false);
    let proxy = SlowProxy::start(&reg.addr);
    let tag = format!("{}/test/busybox:1", proxy.addr);
    let mut berthd = Berthd::start(&format!("[registry]\nplain_http = [\"{}\"]\n", proxy.addr));
    let socket = berthd.socket();
    let pull_tag = tag.clone();
    let puller = std::thread::spawn(move || {
        runtime().block_on(async {
            let channel = Endpoint::try_from("http://[::1]:50051")
                .unwrap()
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(socket).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .unwrap();
            pull(&mut ImageServiceClient::new(channel), &pull_tag, None).await
        })
    });
    // Kill once a few hundred kB of the ~1 MB busybox layer have come through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.forwarded.load(Ordering::SeqCst) < 300_000 {
        assert!(Instant::now() < deadline, "the pull did not progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    berthd.kill_and_restart();
    assert!(puller.join().unwrap().is_err(), "the killed pull failed");

    let store = berthd.root().join("image");
    assert_eq!(temp_names(&store), Vec::<PathBuf>::new());
    assert_eq!(count_files(&store.join("ingest")), 0);
    runtime().block_on(async {
        let mut c = berthd.images().await;
        assert_eq!(status_id(&mut c, &tag).await, None);
        let id = pull(&mut c, &tag, None).await.unwrap();
        assert_eq!(id, layout.digest("config-amd64"));
        c.remove_image(RemoveImageRequest { image: spec(&id) })
            .await
            .unwrap();
        let fs_info = c
            .image_fs_info(ImageFsInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        let used = fs_info.image_filesystems[0].used_bytes.unwrap().value;
        assert!(used < 100_000, "only empty directories and records: {used}");
    });
    assert_eq!(count_files(&store.join("blobs/sha256")), 0);
    assert_eq!(count_files(&store.join("layers")), 0);
}

/// A CA and a certificate it signed for 127.0.0.1, made with openssl in `dir`:
/// (ca.crt, server.crt, server.key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

/// An HTTPS registry with a certificate from a private CA: refused without the CA,
/// pulled with hosts.toml `ca`, and with `skip_verify`.
fn private_ca_from_hosts_toml() {
    let layout = Layout::build();
    let certs_dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(certs_dir.path());
    let reg = Registry::start_with(false, Some((&cert, &key)));
    reg.push(&layout, "busybox", "test/busybox:1", false);
    let certs = tempfile::tempdir().unwrap();
    let hosts = |registry: &str, text: String| {
        let d = certs.path().join(registry);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("hosts.toml"), text).unwrap();
    };
    hosts(
        "no-ca.example",
        format!("server = \"https://{}\"\n", reg.addr),
    );
    hosts(
        "with-ca.example",
        format!(
            "server = \"https://{}\"\nca = \"{}\"\n",
            reg.addr,
            ca.display()
        ),
    );
    hosts(
        "insecure.example",
        format!("[host.\"https://{}\"]\nskip_verify = true\n", reg.addr),
    );
    let berthd = Berthd::start(&format!(
        "[registry]\nconfig_path = \"{}\"\n",
        certs.path().display()
    ));
    let id = layout.digest("config-amd64");
    runtime().block_on(async {
        let mut c = berthd.images().await;
        let err = pull(&mut c, "no-ca.example/test/busybox:1", None)
            .await
            .unwrap_err();
        assert!(err.message().contains(&reg.addr), "{}", err.message());
        for name in [
            "with-ca.example/test/busybox:1",
            "insecure.example/test/busybox:1",
        ] {
            let got = pull(&mut c, name, None).await;
            assert_eq!(got.map_err(|e| e.to_string()), Ok(id.clone()), "{name}");
        }
    });
}

/// base64 (standard alphabet, with padding) or base64url (no padding).
fn base64(data: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

/// A registry token (JWT, RS256) for pulling `repository`, signed with openssl by a
/// self-signed key made in `dir`; returns (token, signer certificate).
fn mint_token(dir: &Path, repository: &str) -> (String, PathBuf) {
    fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=berth token signer",
        "-keyout",
        "signer.key",
        "-out",
        "signer.crt",
    ]);
    let der = run(&["x509", "-in", "signer.crt", "-outform", "DER"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [base64(&der, false)]});
    let claims = serde_json::json!({
        "iss": "berth-issuer", "sub": "berth", "aud": "berth-registry",
        "exp": now + 3600, "nbf": now - 60, "iat": now - 60, "jti": "berth-test",
        "access": [{"type": "repository", "name": repository, "actions": ["pull"]}],
    });
    let signing_input = format!(
        "{}.{}",
        base64(header.to_string().as_bytes(), true),
        base64(claims.to_string().as_bytes(), true)
    );
    fs::write(dir.join("input"), &signing_input).unwrap();
    let sig = run(&["dgst", "-sha256", "-sign", "signer.key", "input"]);
    (
        format!("{signing_input}.{}", base64(&sig, true)),
        dir.join("signer.crt"),
    )
}

/// A registry that takes bearer tokens only: refused anonymously, pulled with the CRI
/// `registry_token`.
fn pull_with_a_registry_token() {
    let layout = Layout::build();
    let open = Registry::start(false);
    open.push(&layout, "busybox", "private/busybox:1", false);
    let keys = tempfile::tempdir().unwrap();
    let (token, signer) = mint_token(keys.path(), "private/busybox");
    let reg = Registry::start_token_auth(&open.data(), &signer);
    assert!(reg.status_line("/v2/").unwrap().contains("401"));
    let berthd = Berthd::start(&format!("[registry]\nplain_http = [\"{}\"]\n", reg.addr));
    let tag = format!("{}/private/busybox:1", reg.addr);
    runtime().block_on(async {
        let mut c = berthd.images().await;
        let err = pull(&mut c, &tag, None).await.unwrap_err();
        assert!(err.message().contains(&reg.addr), "{}", err.message());
        // The same claims under another key's signature are refused.
        let (forged, _) = mint_token(&keys.path().join("other"), "private/busybox");
        let forged = format!(
            "{}.{}",
            token.rsplit_once('.').unwrap().0,
            forged.rsplit_once('.').unwrap().1
        );
        let forged = AuthConfig {
            registry_token: forged,
            ..Default::default()
        };
        assert!(pull(&mut c, &tag, Some(forged)).await.is_err());
        let bearer = AuthConfig {
            registry_token: token,
            ..Default::default()
        };
        let got = pull(&mut c, &tag, Some(bearer)).await;
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Ok(layout.digest("config-amd64"))
        );
    });
}

/// Own harness (libtest-mimic): a missing prerequisite marks every test ignored with the
/// reason, and fails it when `CI` is set (CI must run them).
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let skip = skip_reason();
    let tests: &[(&str, fn())] = &[
        (
            "pull_status_list_remove_and_fs_info_over_cri",
            pull_status_list_remove_and_fs_info_over_cri,
        ),
        (
            "concurrent_pulls_of_one_image_download_it_once",
            concurrent_pulls_of_one_image_download_it_once,
        ),
        (
            "mirrors_are_tried_in_order_then_the_upstream",
            mirrors_are_tried_in_order_then_the_upstream,
        ),
        ("pull_with_credentials", pull_with_credentials),
        ("pull_with_a_registry_token", pull_with_a_registry_token),
        (
            "killed_pull_then_restart_leaves_nothing_stray",
            killed_pull_then_restart_leaves_nothing_stray,
        ),
        ("private_ca_from_hosts_toml", private_ca_from_hosts_toml),
        (
            "pinned_images_are_not_removed",
            pinned_images_are_not_removed,
        ),
        (
            "layer_larger_than_max_layer_bytes_fails_the_pull",
            layer_larger_than_max_layer_bytes_fails_the_pull,
        ),
    ];
    let trials = berth_test_support::panicking_trials(tests, skip, "CI");
    libtest_mimic::run(&args, trials).exit();
}
