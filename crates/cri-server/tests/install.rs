//! hack/install into a temp DESTDIR (prefix /usr/local): every file in place with its mode
//! and content, the unit accepted by `systemd-analyze verify`, an existing CNI config left
//! alone, idempotent reinstalls, and `--uninstall` removing exactly what was installed.
//!
//! No root needed. The binaries installed are the debug ones beside this test's berthd
//! (`cargo build --workspace` puts berth-shim and berth-oci there); nothing is built. A
//! missing binary or tool (bash, sha256sum, systemd-analyze) fails the test: never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_cri_server::config::Config;

const BERTHD: &str = env!("CARGO_BIN_EXE_berthd");
const MANIFEST: &str = "/usr/local/share/berth/install.manifest";
const UNIT: &str = "/etc/systemd/system/berth.service";
const CONFIG: &str = "/etc/berth/config.toml";
const CONFLIST: &str = "/etc/cni/net.d/99-berth.conflist";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory of the built binaries, checked to hold the three hack/install needs.
fn bin_dir() -> PathBuf {
    let dir = Path::new(BERTHD).parent().unwrap().to_path_buf();
    for bin in ["berthd", "berth-shim", "berth-oci"] {
        assert!(
            dir.join(bin).is_file(),
            "needs {bin} in {} (cargo build --workspace)",
            dir.display()
        );
    }
    dir
}

/// The binaries hack/install is expected to install from `bin_dir`.
fn binaries() -> Vec<&'static str> {
    let mut bins = vec!["berthd", "berth-shim", "berth-oci"];
    if bin_dir().join("berthctl").is_file() {
        bins.push("berthctl");
    }
    bins
}

/// Runs hack/install with `args` (DESTDIR unset unless `env_destdir`) and returns its
/// stdout; fails the test with its output when it fails.
fn run_install(args: &[&str], env_destdir: Option<&Path>) -> String {
    run_install_from(&bin_dir(), args, env_destdir)
}

fn run_install_from(bins: &Path, args: &[&str], env_destdir: Option<&Path>) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("hack/install"))
        .arg("--bin-dir")
        .arg(bins)
        .args(args)
        .env_remove("DESTDIR");
    if let Some(dir) = env_destdir {
        cmd.env("DESTDIR", dir);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run bash hack/install: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hack/install {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn install(destdir: &Path, extra: &[&str]) -> String {
    let d = destdir.to_str().unwrap();
    let mut args = vec!["--prefix", "/usr/local", "--destdir", d];
    args.extend_from_slice(extra);
    run_install(&args, None)
}

fn uninstall(destdir: &Path) -> String {
    install(destdir, &["--uninstall"])
}

/// Every file (and symlink) under `root`, as absolute paths on the target ("/etc/...").
fn files(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.insert(format!("/{}", rel.display()));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Everything under `root`, directories included.
fn entries(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

fn at(destdir: &Path, path: &str) -> PathBuf {
    destdir.join(path.trim_start_matches('/'))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("run sha256sum: {e}"));
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: String,
    sha: String,
}

fn manifest(destdir: &Path, path: &str) -> BTreeMap<String, Entry> {
    let text = fs::read_to_string(at(destdir, path)).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("# berth install manifest v1"), "{text}");
    lines
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 3, "manifest line {line:?}");
            let entry = Entry {
                kind: f[0].to_string(),
                sha: f[1].to_string(),
            };
            (f[2].to_string(), entry)
        })
        .collect()
}

/// The unit's keys, by section; a key given twice keeps both values.
fn unit_keys(text: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut section = String::new();
    let mut keys: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("unit line {line:?}"));
        keys.entry((section.clone(), key.to_string()))
            .or_default()
            .push(value.to_string());
    }
    keys
}

fn check_unit(destdir: &Path) {
    let path = at(destdir, UNIT);
    assert_eq!(mode(&path), 0o644);
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains('@'), "placeholder left in the unit:\n{text}");
    let keys = unit_keys(&text);
    let get = |section: &str, key: &str| -> Vec<String> {
        keys.get(&(section.to_string(), key.to_string()))
            .cloned()
            .unwrap_or_default()
    };
    for (section, key, want) in [
        ("Unit", "Wants", "network-online.target"),
        ("Unit", "After", "network-online.target local-fs.target"),
        ("Unit", "Before", "kubelet.service"),
        ("Service", "Type", "notify"),
        ("Service", "ExecStartPre", "-/sbin/modprobe overlay"),
        ("Service", "ExecStart", "/usr/local/bin/berthd"),
        ("Service", "KillMode", "process"),
        ("Service", "Delegate", "yes"),
        ("Service", "Restart", "always"),
        ("Service", "LimitNOFILE", "1048576"),
        ("Service", "LimitNPROC", "infinity"),
        ("Service", "TasksMax", "infinity"),
        ("Service", "OOMScoreAdjust", "-999"),
        ("Install", "WantedBy", "multi-user.target"),
    ] {
        assert_eq!(get(section, key), [want], "[{section}] {key} in\n{text}");
    }
    let docs = get("Unit", "Documentation");
    assert_eq!(docs.len(), 1, "Documentation in\n{text}");
    for url in docs[0].split_whitespace() {
        let doc = url
            .strip_prefix("file://")
            .unwrap_or_else(|| panic!("Documentation {url} is not a file:// URL"));
        assert!(
            at(destdir, doc).is_file(),
            "Documentation {doc} not installed"
        );
    }

    // systemd-analyze verify resolves ExecStart= on this machine, not in DESTDIR (its
    // --root wants a whole systemd tree there: "Unit sysinit.target not found"), so a copy
    // of the unit pointed at the DESTDIR's berthd is verified. verify exits 0 on unknown
    // keys and bad values, only printing them: any output is a failure too.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("berth.service");
    let berthd = at(destdir, "/usr/local/bin/berthd");
    fs::write(
        &copy,
        text.replace(
            "ExecStart=/usr/local/bin/berthd",
            &format!("ExecStart={}", berthd.display()),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap_or_else(|e| panic!("run systemd-analyze (Debian's systemd package): {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {} ({}):\n{said}",
        copy.display(),
        out.status
    );
}

fn check_config(destdir: &Path) {
    let path = at(destdir, CONFIG);
    assert_eq!(mode(&path), 0o644);
    let text = fs::read_to_string(&path).unwrap();
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{CONFIG} is not TOML: {e}\n{text}"));
    // Every key is commented out: the file means the built-in defaults.
    assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
    assert!(text.contains("cgroup_driver"), "{text}");
}

fn check_conflist(destdir: &Path) {
    let path = at(destdir, CONFLIST);
    assert_eq!(mode(&path), 0o644);
    let text = fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{CONFLIST} is not JSON: {e}\n{text}"));
    assert_eq!(v["cniVersion"], "1.0.0");
    assert_eq!(v["name"], "berth");
    let plugins = v["plugins"].as_array().unwrap();
    let types: Vec<&str> = plugins
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["bridge", "portmap", "loopback"]);
    assert_eq!(plugins[0]["bridge"], "berth0");
    assert_eq!(plugins[0]["ipam"]["type"], "host-local");
    assert_eq!(plugins[0]["ipam"]["ranges"][0][0]["subnet"], "10.88.0.0/16");
    assert_eq!(plugins[1]["capabilities"]["portMappings"], true);
}

/// The files a fresh install into an empty DESTDIR must produce, the manifest included.
fn expected_files() -> BTreeSet<String> {
    let mut want: BTreeSet<String> = binaries()
        .iter()
        .map(|b| format!("/usr/local/bin/{b}"))
        .collect();
    for doc in fs::read_dir(repo().join("docs")).unwrap() {
        let name = doc.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            want.insert(format!("/usr/local/share/doc/berth/{name}"));
        }
    }
    for path in [UNIT, CONFIG, CONFLIST, MANIFEST] {
        want.insert(path.to_string());
    }
    want
}

/// The manifest names exactly the installed files (all but itself) with their checksums,
/// and only directories that exist.
fn check_manifest(destdir: &Path, installed: &BTreeSet<String>) {
    let m = manifest(destdir, MANIFEST);
    assert_eq!(mode(&at(destdir, MANIFEST)), 0o644);
    let listed: BTreeSet<String> = m
        .iter()
        .filter(|(_, e)| e.kind != "dir")
        .map(|(p, _)| p.clone())
        .collect();
    let mut want = installed.clone();
    want.remove(MANIFEST);
    assert_eq!(listed, want, "manifest files vs installed files");
    for (path, entry) in &m {
        match entry.kind.as_str() {
            "dir" => assert!(at(destdir, path).is_dir(), "manifest dir {path}"),
            "file" | "config" => assert_eq!(entry.sha, sha256(&at(destdir, path)), "{path}"),
            other => panic!("manifest kind {other} for {path}"),
        }
    }
    for path in [CONFIG, CONFLIST] {
        if let Some(e) = m.get(path) {
            assert_eq!(e.kind, "config", "{path}");
        }
    }
}

#[test]
fn install_into_destdir_puts_every_file_in_place_and_uninstall_removes_all() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    install(d, &[]);

    let installed = files(d);
    assert_eq!(installed, expected_files());
    for bin in binaries() {
        let path = at(d, &format!("/usr/local/bin/{bin}"));
        assert_eq!(mode(&path), 0o755, "{bin}");
        assert_eq!(
            fs::read(&path).unwrap(),
            fs::read(bin_dir().join(bin)).unwrap(),
            "{bin} differs from the built one"
        );
    }
    assert_eq!(
        fs::read(at(d, "/usr/local/share/doc/berth/cri.md")).unwrap(),
        fs::read(repo().join("docs/cri.md")).unwrap()
    );
    check_unit(d);
    check_config(d);
    check_conflist(d);
    check_manifest(d, &installed);

    // Again: the same files, the same manifest.
    let before = fs::read_to_string(at(d, MANIFEST)).unwrap();
    install(d, &[]);
    assert_eq!(files(d), installed);
    assert_eq!(fs::read_to_string(at(d, MANIFEST)).unwrap(), before);

    uninstall(d);
    assert_eq!(entries(d), Vec::<PathBuf>::new(), "left after --uninstall");
}

#[test]
fn existing_cni_config_is_kept_and_no_berth_conflist_is_added() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    let other = at(d, "/etc/cni/net.d/05-cluster.conflist");
    fs::create_dir_all(other.parent().unwrap()).unwrap();
    fs::write(
        &other,
        r#"{"cniVersion":"1.0.0","name":"cluster","plugins":[]}"#,
    )
    .unwrap();

    let said = install(d, &[]);
    assert!(said.contains("not adding 99-berth.conflist"), "{said}");
    assert!(!at(d, CONFLIST).exists());
    let installed = files(d);
    let mut want = expected_files();
    want.remove(CONFLIST);
    want.insert("/etc/cni/net.d/05-cluster.conflist".into());
    assert_eq!(installed, want);
    let m = manifest(d, MANIFEST);
    for path in ["/etc", "/etc/cni", "/etc/cni/net.d"] {
        assert!(!m.contains_key(path), "{path} existed before: not ours");
    }
    let mut ours = installed.clone();
    ours.remove("/etc/cni/net.d/05-cluster.conflist");
    let listed: BTreeSet<String> = m
        .iter()
        .filter(|(_, e)| e.kind != "dir")
        .map(|(p, _)| p.clone())
        .collect();
    ours.remove(MANIFEST);
    assert_eq!(listed, ours);

    uninstall(d);
    assert_eq!(
        files(d),
        BTreeSet::from(["/etc/cni/net.d/05-cluster.conflist".to_string()])
    );
}

#[test]
fn edited_config_is_kept_on_uninstall() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    // DESTDIR from the environment, as image builders pass it.
    run_install(&["--prefix", "/usr/local"], Some(d));
    assert_eq!(files(d), expected_files());

    let config = at(d, CONFIG);
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("\ncgroup_driver = \"systemd\"\n");
    fs::write(&config, &text).unwrap();
    // A reinstall neither overwrites the edit nor forgets the checksum installed.
    let said = run_install(&["--prefix", "/usr/local"], Some(d));
    assert!(
        said.contains("keeping existing /etc/berth/config.toml"),
        "{said}"
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), text);
    assert_ne!(manifest(d, MANIFEST)[CONFIG].sha, sha256(&config));

    let said = run_install(&["--prefix", "/usr/local", "--uninstall"], Some(d));
    assert!(said.contains("keeping /etc/berth/config.toml"), "{said}");
    assert_eq!(files(d), BTreeSet::from([CONFIG.to_string()]));
    assert_eq!(fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn prefix_usr_puts_the_unit_under_usr_lib_systemd() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    run_install(
        &["--prefix", "/usr", "--destdir", d.to_str().unwrap()],
        None,
    );
    let unit = fs::read_to_string(at(d, "/usr/lib/systemd/system/berth.service")).unwrap();
    assert!(unit.contains("\nExecStart=/usr/bin/berthd\n"), "{unit}");
    assert!(!at(d, UNIT).exists());
    assert!(at(d, "/usr/share/berth/install.manifest").is_file());
    run_install(
        &[
            "--prefix",
            "/usr",
            "--destdir",
            d.to_str().unwrap(),
            "--uninstall",
        ],
        None,
    );
    assert_eq!(entries(d), Vec::<PathBuf>::new());
}

/// The default config is exactly what `berthd config default` prints.
#[test]
fn config_is_berthd_config_default() {
    let dest = tempfile::tempdir().unwrap();
    install(dest.path(), &[]);
    let printed = Command::new(bin_dir().join("berthd"))
        .args(["config", "default"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(fs::read(at(dest.path(), CONFIG)).unwrap(), printed.stdout);
}
