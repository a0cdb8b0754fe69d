//! Overlay snapshots of store layers. Needs root (mounts, whiteout devices); skipped with
//! the reason otherwise.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_image::{Digest, Error, Snapshotter, Store, chain_ids};

/// A gzip-less tar layer of (name, kind, data); kind 'f' file, 'd' directory.
fn layer(entries: &[(&str, char, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(if *kind == 'd' {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_size(data.len() as u64);
        h.set_mode(if *kind == 'd' { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// Stores an image of `layers` (bottom first) and returns the layers' chain IDs.
fn image(store: &Store, layers: &[Vec<u8>]) -> Vec<Digest> {
    let blobs: Vec<Digest> = layers.iter().map(|l| Digest::of(l)).collect();
    for (l, d) in layers.iter().zip(&blobs) {
        store.write_blob(l.as_slice(), d).unwrap();
    }
    let ids: Vec<String> = blobs.iter().map(|d| format!("\"{d}\"")).collect();
    let cfg = format!(
        r#"{{"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    );
    let id = Digest::of(cfg.as_bytes());
    store.write_blob(cfg.as_bytes(), &id).unwrap();
    store
        .create_image(&id, &blobs, &[], vec![], vec![])
        .unwrap();
    chain_ids(&blobs)
}

fn is_mount_point(p: &Path) -> bool {
    fs::metadata(p).unwrap().dev() != fs::metadata(p.parent().unwrap()).unwrap().dev()
}

fn two_layers(store: &Store) -> Vec<Digest> {
    let lower = layer(&[
        ("a", 'f', "old"),
        ("gone", 'f', "x"),
        ("d/", 'd', ""),
        ("d/x", 'f', "x"),
        ("keep", 'f', "k"),
    ]);
    let upper = layer(&[
        ("a", 'f', "new"),
        (".wh.gone", 'f', ""),
        ("d/", 'd', ""),
        ("d/.wh..wh..opq", 'f', ""),
        ("d/y", 'f', "y"),
    ]);
    image(store, &[lower, upper])
}

fn check_merged(rootfs: &Path) {
    assert_eq!(fs::read_to_string(rootfs.join("a")).unwrap(), "new");
    assert_eq!(fs::read_to_string(rootfs.join("keep")).unwrap(), "k");
    assert!(
        !rootfs.join("gone").exists(),
        "whiteout hides the lower file"
    );
    let d: Vec<_> = fs::read_dir(rootfs.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(d, ["y"], "opaque dir hides the lower contents");
}

fn rw_and_view(snap: &Snapshotter) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("images")).unwrap();
    let chain = two_layers(&store);

    let rootfs = snap.prepare(&store, "c1", &chain, false).unwrap();
    assert!(is_mount_point(&rootfs));
    check_merged(&rootfs);
    fs::write(rootfs.join("new"), "written").unwrap();
    fs::remove_file(rootfs.join("keep")).unwrap();
    let upper = rootfs.parent().unwrap().join("upper");
    assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "written");
    assert!(
        store.layer_path(&chain[0]).join("keep").exists(),
        "lower layer untouched"
    );
    assert!(matches!(
        snap.prepare(&store, "c1", &chain, false),
        Err(Error::SnapshotExists(_))
    ));

    let view = snap.prepare(&store, "v1", &chain, true).unwrap();
    check_merged(&view);
    assert_eq!(
        fs::write(view.join("x"), "no").unwrap_err().raw_os_error(),
        Some(libc_erofs())
    );
    // A one-layer view (overlay needs two lowers without an upper).
    let one = snap.prepare(&store, "v2", &chain[..1], true).unwrap();
    assert_eq!(fs::read_to_string(one.join("a")).unwrap(), "old");

    assert_eq!(
        snap.layers_in_use().unwrap(),
        chain.iter().cloned().collect::<HashSet<_>>()
    );
    assert_eq!(snap.list().unwrap().len(), 3);
    // GC keeps layers under snapshots even with no image.
    let id = store.list().unwrap()[0].id.to_string();
    store.remove(&id).unwrap();
    store.gc(&snap.layers_in_use().unwrap()).unwrap();
    assert!(store.has_layer(&chain[1]));

    for id in ["c1", "v1", "v2"] {
        let dir = snap.rootfs(id).unwrap().parent().unwrap().to_path_buf();
        snap.remove(id).unwrap();
        assert!(!dir.exists());
        snap.remove(id).unwrap();
    }
    assert!(snap.list().unwrap().is_empty());
    assert_eq!(
        fs::read_to_string(store.layer_path(&chain[0]).join("a")).unwrap(),
        "old"
    );
}

fn libc_erofs() -> i32 {
    rustix::io::Errno::ROFS.raw_os_error()
}

fn overlay_snapshot_merges_layers_and_removes_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    rw_and_view(&Snapshotter::open(tmp.path()).unwrap());
}

fn overlay_snapshot_with_mount2_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    rw_and_view(&Snapshotter::open(tmp.path()).unwrap().with_legacy_mount());
}

/// 150 layers under a long root: far more than one page of `lowerdir=` text.
fn many_layers(snap: &Snapshotter, root: &Path) {
    let deep = root.join("x".repeat(200)).join("y".repeat(200));
    let store = Store::open(&deep).unwrap();
    let diff_ids: Vec<Digest> = (0..150)
        .map(|i| Digest::of(format!("{i}").as_bytes()))
        .collect();
    let chain = chain_ids(&diff_ids);
    for (i, c) in chain.iter().enumerate() {
        let fs_dir = store.layer_path(c);
        fs::create_dir_all(&fs_dir).unwrap();
        fs::write(fs_dir.join(format!("f{i}")), "").unwrap();
        fs::write(fs_dir.join("top"), format!("{i}")).unwrap();
    }
    let total: usize = chain
        .iter()
        .map(|c| store.layer_path(c).as_os_str().len() + 1)
        .sum();
    assert!(total > 4 * 4096, "{total}");
    for readonly in [false, true] {
        let id = format!("many-{readonly}");
        let rootfs = snap.prepare(&store, &id, &chain, readonly).unwrap();
        assert!(rootfs.join("f0").exists() && rootfs.join("f149").exists());
        assert_eq!(fs::read_to_string(rootfs.join("top")).unwrap(), "149");
        snap.remove(&id).unwrap();
    }
}

fn overlay_snapshot_of_150_layers_with_long_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let snap = Snapshotter::open(tmp.path().join("snapshots")).unwrap();
    many_layers(&snap, tmp.path());
    let legacy = Snapshotter::open(tmp.path().join("snapshots2"))
        .unwrap()
        .with_legacy_mount();
    many_layers(&legacy, tmp.path());
}

fn prepare_failures_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("images")).unwrap();
    let snap = Snapshotter::open(tmp.path().join("snapshots")).unwrap();
    assert!(matches!(
        snap.prepare(&store, "../x", &[], false),
        Err(Error::InvalidSnapshotId(_))
    ));
    assert!(matches!(
        snap.prepare(&store, "a", &[Digest::of(b"nope")], false),
        Err(Error::LayerNotFound(_))
    ));
    assert_eq!(
        fs::read_dir(tmp.path().join("snapshots")).unwrap().count(),
        0
    );
    // A container of an image with no layers gets an empty writable root.
    let rootfs = snap.prepare(&store, "scratch", &[], false).unwrap();
    fs::write(rootfs.join("f"), "").unwrap();
    snap.remove("scratch").unwrap();
    assert_eq!(
        fs::read_dir(tmp.path().join("snapshots")).unwrap().count(),
        0
    );
    assert_eq!(
        fs::metadata(tmp.path().join("nope"))
            .map_err(|e| e.kind())
            .unwrap_err(),
        ErrorKind::NotFound
    );
}

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    (!rustix::process::geteuid().is_root()).then(|| "needs root (overlay mounts)".to_string())
}

/// Own harness (libtest-mimic), as in crates/executor: a missing prerequisite marks every
/// test ignored with the reason, and fails it when `CI` is set (CI must run them).
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let skip = skip_reason();
    let tests: &[(&str, fn())] = &[
        (
            "overlay_snapshot_merges_layers_and_removes_cleanly",
            overlay_snapshot_merges_layers_and_removes_cleanly,
        ),
        (
            "overlay_snapshot_with_mount2_fallback",
            overlay_snapshot_with_mount2_fallback,
        ),
        (
            "overlay_snapshot_of_150_layers_with_long_paths",
            overlay_snapshot_of_150_layers_with_long_paths,
        ),
        (
            "prepare_failures_leave_nothing",
            prepare_failures_leave_nothing,
        ),
    ];
    let trials = berth_test_support::panicking_trials(tests, skip, "CI");
    libtest_mimic::run(&args, trials).exit();
}
