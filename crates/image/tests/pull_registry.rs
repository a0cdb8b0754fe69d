//! Pulls from a real distribution registry (Debian's docker-registry) started on loopback,
//! with images built by hack/images/build and pushed by skopeo. Needs those tools
//! (hack/images/setup installs them) and root (the layers hold whiteouts); skipped with the
//! reason otherwise.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::{Digest, Error, PullConfig, Puller, Reference, RegistryAuth, Snapshotter, Store};

const TOOLS: &[&str] = &[
    "/usr/bin/docker-registry",
    "/usr/bin/skopeo",
    "/bin/busybox",
];
const USER: &str = "berth";
const PASSWORD: &str = "berth-test";
/// bcrypt of PASSWORD, for the registry's htpasswd file.
const HTPASSWD: &str = "berth:$2y$12$Z3Eo7obPRcHYzQ7vJsTYt.G.U2heNmNCMg0xKz.ZKOiY29sBgAZ/G";

fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (whiteout device nodes in the test layers)".into());
    }
    TOOLS
        .iter()
        .find(|t| !Path::new(t).exists())
        .map(|t| format!("{t} missing: run hack/images/setup"))
}

/// A docker-registry on a free loopback port, killed on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(auth: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            fs::write(&htpasswd, format!("{HTPASSWD}\n")).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth\n    path: {}\n",
                htpasswd.display()
            ));
        }
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
        while reg.get("/v2/").is_none() {
            assert!(
                Instant::now() < deadline,
                "registry on {} did not start",
                reg.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// The status line of a plain GET, if the registry answers.
    fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(&self.addr).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.lines().next().map(str::to_string)
    }

    fn push(&self, layout: &Path, tag: &str, dest: &str, extra: &[&str], creds: bool) {
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
            .arg(format!("oci:{}:{tag}", layout.display()))
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

    fn digest(&self, name: &str) -> Digest {
        let text = fs::read_to_string(self.path.join("digests")).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        line.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn puller(store: &Arc<Store>, reg: &Registry) -> Puller {
    Puller::new(
        store.clone(),
        PullConfig {
            plain_http: vec![reg.addr.clone()],
            ..Default::default()
        },
    )
}

/// The pulled busybox image is complete: record, layers, whiteouts, and a working rootfs.
fn check_busybox(store: &Store, layout: &Layout, rec: &berth_image::ImageRecord, root: &Path) {
    assert_eq!(rec.id, layout.digest("config-amd64"));
    assert_eq!(rec.config.cmd, ["-c", "echo hello"]);
    assert_eq!(rec.config.entrypoint, ["/bin/sh"]);
    assert_eq!(rec.config.working_dir.as_deref(), Some("/data"));
    assert_eq!(rec.config.volumes, ["/data"]);
    assert_eq!(rec.layers.len(), 2);
    let l2 = store.layer_path(&rec.layers[1].chain_id);
    let wh = fs::symlink_metadata(l2.join("etc/removed")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);

    let snaps = Snapshotter::open(root.join("snapshots")).unwrap();
    let chain: Vec<Digest> = rec.layers.iter().map(|l| l.chain_id.clone()).collect();
    let id = format!("pull-{}", &rec.id.hex()[..12]);
    let rootfs = snaps.prepare(store, &id, &chain, false).unwrap();
    assert!(!rootfs.join("etc/removed").exists());
    assert!(!rootfs.join("data/old").exists());
    assert_eq!(
        fs::read_to_string(rootfs.join("data/new")).unwrap(),
        "new\n"
    );
    let out = Command::new(rootfs.join("bin/busybox"))
        .args(["echo", "from the rootfs"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the rootfs\n");
    snaps.remove(&id).unwrap();
}

fn pull_oci_docker_v2s2_and_index_from_a_local_registry() {
    let layout = Layout::build();
    let reg = Registry::start(false);
    reg.push(&layout.path, "busybox", "test/busybox:oci", &[], false);
    reg.push(
        &layout.path,
        "busybox",
        "test/busybox:v2s2",
        &["--format", "v2s2"],
        false,
    );
    reg.push(
        &layout.path,
        "multi",
        "test/busybox:multi",
        &["--all"],
        false,
    );

    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(tmp.path().join("images")).unwrap());
    let p = puller(&store, &reg);
    let rt = runtime();
    let anon = RegistryAuth::Anonymous;

    let r: Reference = format!("{}/test/busybox:oci", reg.addr).parse().unwrap();
    let rec = rt.block_on(p.pull(&r, &anon)).unwrap();
    assert_eq!(rec.repo_tags, [format!("{}/test/busybox:oci", reg.addr)]);
    assert_eq!(
        rec.repo_digests,
        [format!(
            "{}/test/busybox@{}",
            reg.addr,
            layout.digest("manifest-amd64")
        )]
    );
    check_busybox(&store, &layout, &rec, tmp.path());

    // Docker v2 schema 2: same config and layers, other manifest; the tag joins the image.
    let r2: Reference = format!("{}/test/busybox:v2s2", reg.addr).parse().unwrap();
    let rec2 = rt.block_on(p.pull(&r2, &anon)).unwrap();
    assert_eq!(rec2.id, rec.id);
    let is_v2s2 = rec2.blobs.iter().any(|b| {
        String::from_utf8_lossy(&store.read_blob(b).unwrap())
            .contains("application/vnd.docker.distribution.manifest.v2+json")
    });
    assert!(is_v2s2, "the v2s2 manifest is kept: {rec2:?}");
    assert_eq!(
        rec2.repo_digests.len(),
        2,
        "both manifests name the image: {rec2:?}"
    );

    // An index: linux/amd64 is chosen; the repo digest is the index's.
    let r3: Reference = format!("{}/test/busybox:multi", reg.addr).parse().unwrap();
    let rec3 = rt.block_on(p.pull(&r3, &anon)).unwrap();
    assert_eq!(rec3.id, layout.digest("config-amd64"));
    assert!(rec3.repo_digests.contains(&format!(
        "{}/test/busybox@{}",
        reg.addr,
        layout.digest("index")
    )));
    assert!(
        !store.has_blob(&layout.digest("config-arm64")),
        "the arm64 image is not fetched"
    );

    // By digest.
    let by_digest: Reference = format!(
        "{}/test/busybox@{}",
        reg.addr,
        layout.digest("manifest-amd64")
    )
    .parse()
    .unwrap();
    assert_eq!(rt.block_on(p.pull(&by_digest, &anon)).unwrap().id, rec.id);
    // A digest that does not match what the registry serves for it is refused.
    let wrong: Reference = format!("{}/test/busybox:oci@{}", reg.addr, Digest::of(b"x"))
        .parse()
        .unwrap();
    assert!(rt.block_on(p.pull(&wrong, &anon)).is_err());
    // A missing tag names the reference in its error.
    let missing: Reference = format!("{}/test/busybox:nope", reg.addr).parse().unwrap();
    let err = rt
        .block_on(p.pull(&missing, &anon))
        .unwrap_err()
        .to_string();
    assert!(err.contains("test/busybox:nope"), "{err}");

    let found = store
        .status(&format!("{}/test/busybox:v2s2", reg.addr))
        .unwrap()
        .unwrap();
    assert_eq!(found.id, rec.id);
    for tag in ["oci", "v2s2", "multi"] {
        assert!(
            found
                .repo_tags
                .contains(&format!("{}/test/busybox:{tag}", reg.addr)),
            "{found:?}"
        );
    }
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(
        fs::read_dir(tmp.path().join("images/ingest"))
            .unwrap()
            .next()
            .is_none()
    );
}

fn pull_with_basic_auth() {
    let layout = Layout::build();
    let reg = Registry::start(true);
    assert!(reg.get("/v2/").unwrap().contains("401"));
    reg.push(&layout.path, "busybox", "private/busybox:1", &[], true);

    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(tmp.path().join("images")).unwrap());
    let rt = runtime();
    let r: Reference = format!("{}/private/busybox:1", reg.addr).parse().unwrap();

    let anon = rt.block_on(puller(&store, &reg).pull(&r, &RegistryAuth::Anonymous));
    assert!(matches!(anon, Err(Error::Registry { .. })), "{anon:?}");
    let bad = rt
        .block_on(puller(&store, &reg).pull(&r, &RegistryAuth::Basic(USER.into(), "wrong".into())));
    assert!(bad.is_err());
    let rec = rt
        .block_on(puller(&store, &reg).pull(&r, &RegistryAuth::Basic(USER.into(), PASSWORD.into())))
        .unwrap();
    assert_eq!(rec.id, layout.digest("config-amd64"));
}

/// Own harness (libtest-mimic), as in crates/executor: a missing prerequisite marks every
/// test ignored with the reason, and fails it when `CI` is set (CI must run them).
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let skip = skip_reason();
    let tests: &[(&str, fn())] = &[
        (
            "pull_oci_docker_v2s2_and_index_from_a_local_registry",
            pull_oci_docker_v2s2_and_index_from_a_local_registry,
        ),
        ("pull_with_basic_auth", pull_with_basic_auth),
    ];
    let trials = berth_test_support::panicking_trials(tests, skip, "CI");
    libtest_mimic::run(&args, trials).exit();
}
