//! The content store: blobs, layers by chain ID, image records, removal, GC, crash cleanup.
//! Layers here hold only plain files and directories, so these run as any user.

use std::collections::HashSet;
use std::fs;
use std::io::Write;

use berth_image::store::{RECORD_VERSION, parse_config};
use berth_image::{Digest, Error, Store, chain_ids};

fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn diff_id(gz: &[u8]) -> Digest {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out).unwrap();
    Digest::of(&out)
}

fn config(diff_ids: &[Digest], extra: &str) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"User":"1000:1000","Env":["PATH=/bin"],"Entrypoint":["/bin/sh"],"Cmd":["-c","true"],"WorkingDir":"/w","Volumes":{{"/data":{{}}}},"StopSignal":"SIGQUIT","Labels":{{"a":"b{extra}"}}}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
    .into_bytes()
}

/// Writes two layers and a config into the store and makes an image of them.
fn add_image(store: &Store, tag: &str, extra: &str) -> berth_image::ImageRecord {
    let l1 = layer(&[("bin/a", "one"), ("etc/x", "x")]);
    let l2 = layer(&[("bin/b", &format!("two{extra}"))]);
    let blobs: Vec<Digest> = [&l1, &l2].iter().map(|b| Digest::of(b)).collect();
    for (b, d) in [&l1, &l2].iter().zip(&blobs) {
        store.write_blob(b.as_slice(), d).unwrap();
    }
    let cfg = config(&[diff_id(&l1), diff_id(&l2)], extra);
    let id = Digest::of(&cfg);
    store.write_blob(cfg.as_slice(), &id).unwrap();
    let manifest = format!("{{\"manifest\":\"{extra}\"}}").into_bytes();
    let md = Digest::of(&manifest);
    store.write_blob(manifest.as_slice(), &md).unwrap();
    let r: berth_image::Reference = tag.parse().unwrap();
    store
        .create_image(
            &id,
            &blobs,
            std::slice::from_ref(&md),
            vec![r.repo_tag().unwrap()],
            vec![r.repo_digest(&md)],
        )
        .unwrap()
}

#[test]
fn blob_is_verified_before_it_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let wrong = Digest::of(b"other");
    match store.write_blob(b"data".as_slice(), &wrong) {
        Err(Error::DigestMismatch { .. }) => {}
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(!store.has_blob(&wrong));
    assert_eq!(fs::read_dir(tmp.path().join("ingest")).unwrap().count(), 0);
    let d = Digest::of(b"data");
    assert_eq!(store.write_blob(b"data".as_slice(), &d).unwrap(), 4);
    assert_eq!(store.read_blob(&d).unwrap(), b"data");
    assert_eq!(
        store.blob_path(&d),
        tmp.path().join("blobs/sha256").join(d.hex())
    );
}

#[test]
fn image_layers_are_unpacked_by_chain_id_and_found_by_any_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let rec = add_image(&store, "busybox", "");
    assert_eq!(rec.repo_tags, ["docker.io/library/busybox:latest"]);
    assert_eq!(rec.layers.len(), 2);
    let chain = chain_ids(
        &rec.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>(),
    );
    assert_eq!(rec.layers[1].chain_id, chain[1]);
    let top = store.layer_path(&chain[1]);
    assert_eq!(
        top,
        tmp.path().join("layers").join(chain[1].hex()).join("fs")
    );
    assert_eq!(fs::read_to_string(top.join("bin/b")).unwrap(), "two");
    assert!(
        !top.join("bin/a").exists(),
        "a layer dir holds only its own diff"
    );

    assert_eq!(rec.config.user.as_deref(), Some("1000:1000"));
    assert_eq!(rec.config.entrypoint, ["/bin/sh"]);
    assert_eq!(rec.config.cmd, ["-c", "true"]);
    assert_eq!(rec.config.volumes, ["/data"]);
    assert_eq!(rec.config.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(rec.config.working_dir.as_deref(), Some("/w"));
    assert_eq!(rec.config.labels["a"], "b");
    assert_eq!(rec.version, RECORD_VERSION);

    for name in [
        "busybox".to_string(),
        "docker.io/library/busybox:latest".to_string(),
        rec.id.to_string(),
        rec.id.hex().to_string(),
        rec.repo_digests[0].clone(),
    ] {
        assert_eq!(
            store.status(&name).unwrap().as_ref().map(|r| &r.id),
            Some(&rec.id),
            "{name}"
        );
    }
    assert!(store.status("busybox:other").unwrap().is_none());

    // Records survive a reopen.
    drop(store);
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.list().unwrap(), [rec]);
}

#[test]
fn a_tag_moves_to_the_newer_image() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let old = add_image(&store, "app:1", "old");
    let new = add_image(&store, "app:1", "new");
    assert_ne!(old.id, new.id);
    let old_now = store.status(&old.id.to_string()).unwrap().unwrap();
    assert!(old_now.repo_tags.is_empty());
    assert_eq!(store.status("app:1").unwrap().unwrap().id, new.id);
    // The first layer is shared: one directory for both images.
    assert_eq!(old.layers[0].chain_id, new.layers[0].chain_id);
    assert_eq!(fs::read_dir(tmp.path().join("layers")).unwrap().count(), 3);
}

#[test]
fn remove_and_gc_keep_pinned_and_shared_content() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = add_image(&store, "a:1", "a");
    let b = add_image(&store, "b:1", "b");
    let mut pinned = b.clone();
    pinned.pinned = true;
    store.put_image(pinned).unwrap();
    match store.remove("b:1") {
        Err(Error::Pinned(_)) => {}
        other => panic!("expected pinned, got {other:?}"),
    }
    assert!(matches!(
        store.remove("nope:1"),
        Err(Error::ImageNotFound(_))
    ));
    store.remove("a:1").unwrap();
    assert!(store.status("a:1").unwrap().is_none());

    // Nothing is collected while a lease (a pull) is held.
    {
        let _lease = store.lease();
        let report = store.gc(&HashSet::new()).unwrap();
        assert!(report.deferred && report.blobs.is_empty());
        assert!(store.has_blob(&a.id));
    }
    // A layer in use by a snapshot survives GC even without an image.
    let keep = a.layers[1].chain_id.clone();
    let report = store.gc(&HashSet::from([keep.clone()])).unwrap();
    assert!(store.has_layer(&keep));
    assert_eq!(report.layers, vec![]);
    // a's config, manifest and second layer blob go; the shared first layer stays.
    assert_eq!(report.blobs.len(), 3, "{report:?}");
    assert!(store.has_blob(&a.layers[0].blob));
    assert!(!store.has_blob(&a.id));
    let report = store.gc(&HashSet::new()).unwrap();
    assert_eq!(report.layers, vec![keep.clone()]);
    for l in &b.layers {
        assert!(store.has_layer(&l.chain_id) && store.has_blob(&l.blob));
    }
    assert!(store.has_blob(&b.id));
}

#[test]
fn open_removes_what_a_crash_left() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let rec = add_image(&store, "a:1", "");
    drop(store);
    let r = tmp.path();
    fs::write(r.join("ingest/.tmp-half"), "half a blob").unwrap();
    fs::write(r.join("images/.tmp-x-1-1"), "{").unwrap();
    let unfinished = r.join("layers").join(Digest::of(b"x").hex());
    fs::create_dir_all(unfinished.join(".tmp-fs-1-1/etc")).unwrap();
    let done = r.join("layers").join(rec.layers[0].chain_id.hex());
    fs::create_dir_all(done.join(".tmp-fs-9-9")).unwrap();

    let store = Store::open(r).unwrap();
    assert_eq!(fs::read_dir(r.join("ingest")).unwrap().count(), 0);
    assert!(!r.join("images/.tmp-x-1-1").exists());
    assert!(!unfinished.exists());
    assert!(!done.join(".tmp-fs-9-9").exists());
    assert!(done.join("fs/bin/a").exists());
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn newer_record_versions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let rec = add_image(&store, "a:1", "");
    let p = tmp
        .path()
        .join("images")
        .join(format!("{}.json", rec.id.hex()));
    let text = fs::read_to_string(&p)
        .unwrap()
        .replace("\"version\": 1", "\"version\": 99");
    fs::write(&p, text).unwrap();
    let err = store.list().unwrap_err().to_string();
    assert!(err.contains("version 99"), "{err}");
}

#[test]
fn config_parsing() {
    let d = Digest::of(b"x");
    let parsed = parse_config(&config(std::slice::from_ref(&d), "")).unwrap();
    assert_eq!(parsed.diff_ids, [d]);
    let bare = parse_config(br#"{"rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
    assert_eq!(bare.config, Default::default());
    assert!(parse_config(br#"{"rootfs":{"type":"other","diff_ids":[]}}"#).is_err());
}

#[test]
fn set_pinned_by_name_guards_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let a = add_image(&store, "a:1", "a");
    assert!(store.set_pinned("nope:1", true).unwrap().is_none());
    assert!(store.set_pinned("a:1", true).unwrap().unwrap().pinned);
    assert!(store.status(&a.id.to_string()).unwrap().unwrap().pinned);
    assert!(matches!(store.remove("a:1"), Err(Error::Pinned(_))));
    assert!(!store.set_pinned(a.id.hex(), false).unwrap().unwrap().pinned);
    store.remove("a:1").unwrap();
}
