//! Layer unpack against hostile and ordinary layers. Needs root (ownership, device nodes,
//! whiteouts as 0/0 character devices, trusted.* xattrs); skipped with the reason otherwise.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::unpack::unpack_layer;
use berth_image::{Digest, Error};
use tar::{EntryType, Header};

/// One tar entry, written with raw header fields so that names the tar crate's own setters
/// refuse (`..`, absolute) can be built.
struct E<'a> {
    name: &'a str,
    kind: EntryType,
    link: &'a str,
    data: &'a [u8],
    mode: u32,
    uid: u64,
    pax: Vec<(&'a str, &'a [u8])>,
}

fn e(name: &str, kind: EntryType) -> E<'_> {
    E {
        name,
        kind,
        link: "",
        data: b"",
        mode: 0o644,
        uid: 0,
        pax: Vec::new(),
    }
}

fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for en in entries {
        if !en.pax.is_empty() {
            b.append_pax_extensions(en.pax.iter().copied()).unwrap();
        }
        let mut h = Header::new_ustar();
        {
            let raw = h.as_old_mut();
            raw.name[..en.name.len()].copy_from_slice(en.name.as_bytes());
            raw.linkname[..en.link.len()].copy_from_slice(en.link.as_bytes());
        }
        h.set_entry_type(en.kind);
        h.set_size(en.data.len() as u64);
        h.set_mode(en.mode);
        h.set_uid(en.uid);
        h.set_gid(en.uid);
        h.set_mtime(1_000_000_000);
        if en.kind == EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        b.append(&h, en.data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A store directory and, beside it, a directory with a victim file that no layer may touch.
struct Fixture {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    outside: PathBuf,
    victim: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let outside = tmp.path().join("outside");
        fs::create_dir(&store).unwrap();
        fs::create_dir(&outside).unwrap();
        let victim = outside.join("victim");
        fs::write(&victim, "original").unwrap();
        // Explicit modes: one test changes the (process-wide) umask for a moment.
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            _tmp: tmp,
            store,
            outside,
            victim,
        }
    }

    fn target(&self) -> PathBuf {
        self.store.join("layer")
    }

    fn unpack(&self, blob: &[u8]) -> Result<berth_image::unpack::Unpacked, Error> {
        unpack_layer(blob, &self.target(), &Digest::of(blob), None)
    }

    /// The victim is unchanged and nothing new appeared outside the store.
    fn assert_outside_untouched(&self) {
        assert_eq!(fs::read_to_string(&self.victim).unwrap(), "original");
        let md = fs::symlink_metadata(&self.victim).unwrap();
        assert_eq!(md.nlink(), 1, "victim gained a hard link");
        assert_eq!(md.mode() & 0o7777, 0o644);
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"]);
        let parent: Vec<_> = fs::read_dir(self.store.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(parent.len(), 2, "{parent:?}");
    }

    fn assert_store_empty(&self) {
        let left: Vec<_> = fs::read_dir(&self.store)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    fn rel_outside(&self) -> String {
        // From store/layer/<entry> up to the victim.
        "../../outside/victim".to_string()
    }
}

fn assert_unsafe(r: Result<berth_image::unpack::Unpacked, Error>, what: &str) {
    match r {
        Err(Error::UnsafeEntry { .. }) => {}
        other => panic!("{what}: expected an unsafe-entry error, got {other:?}"),
    }
}

fn lstat(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn unpack_preserves_metadata_and_converts_whiteouts() {
    let f = Fixture::new();
    let mut file = e("bin/tool", EntryType::Regular);
    file.data = b"#!/bin/sh\n";
    file.mode = 0o4755;
    file.uid = 1000;
    let mut dir = e("bin/", EntryType::Directory);
    dir.mode = 0o750;
    let mut sym = e("bin/sh", EntryType::Symlink);
    sym.link = "/bin/busybox";
    let mut hard = e("bin/tool2", EntryType::Link);
    hard.link = "bin/tool";
    let mut xf = e("etc/x", EntryType::Regular);
    xf.data = b"x";
    xf.pax = vec![
        ("SCHILY.xattr.user.berth", b"yes".as_slice()),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc".as_slice()),
    ];
    let mut dev = e("dev/null", EntryType::Char);
    dev.mode = 0o666;
    let tar = tar_of(&[
        e("./", EntryType::Directory),
        dir,
        file,
        sym,
        hard,
        xf,
        dev,
        e("run/fifo", EntryType::Fifo),
        e("etc/.wh.gone", EntryType::Regular),
        e("opq/.wh..wh..opq", EntryType::Regular),
        e("opq/kept", EntryType::Regular),
        e(".wh..wh.plnk/1", EntryType::Regular),
    ]);
    let blob = gzip(&tar);
    let got = f.unpack(&blob).unwrap();
    assert_eq!(got.digest, Digest::of(&blob));
    assert_eq!(got.diff_id, Digest::of(&tar));
    let l = f.target();

    let tool = lstat(&l.join("bin/tool"));
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid kept after chown");
    assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    assert_eq!(tool.mtime(), 1_000_000_000);
    assert_eq!(tool.nlink(), 2);
    assert_eq!(lstat(&l.join("bin/tool2")).ino(), tool.ino());
    let bin = lstat(&l.join("bin"));
    assert_eq!(bin.mode() & 0o7777, 0o750);
    assert_eq!(
        bin.mtime(),
        1_000_000_000,
        "directory mtime set after its children"
    );
    assert_eq!(
        fs::read_link(l.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let null = lstat(&l.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    assert!(lstat(&l.join("run/fifo")).file_type().is_fifo());
    let x = rustix::fs::getxattr(l.join("etc/x"), "user.berth", &mut [0u8; 16]).unwrap();
    assert_eq!(x, 3);
    assert!(
        rustix::fs::getxattr(l.join("etc/x"), "trusted.overlay.redirect", &mut [0u8; 16]).is_err(),
        "overlay xattr from a layer must be dropped"
    );

    let gone = lstat(&l.join("etc/gone"));
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!l.join("etc/.wh.gone").exists());
    let mut buf = [0u8; 4];
    let n = rustix::fs::getxattr(l.join("opq"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(l.join("opq/kept").exists());
    assert!(!l.join("opq/.wh..wh..opq").exists());
    assert!(!l.join(".wh..wh.plnk").exists());
    f.assert_outside_untouched();
}

fn unpack_reads_zstd_and_plain_tar() {
    let mut file = e("a/b", EntryType::Regular);
    file.data = b"hello";
    let tar = tar_of(&[file]);
    let zst = ruzstd::encoding::compress_to_vec(
        tar.as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    for blob in [tar.clone(), zst] {
        let f = Fixture::new();
        let got = unpack_layer(
            blob.as_slice(),
            &f.target(),
            &Digest::of(&blob),
            Some(&Digest::of(&tar)),
        )
        .unwrap();
        assert_eq!(got.diff_id, Digest::of(&tar));
        assert_eq!(fs::read(f.target().join("a/b")).unwrap(), b"hello");
    }
}

fn dotdot_entries_are_refused() {
    let f = Fixture::new();
    let rel = f.rel_outside();
    let mut evil = e(&rel, EntryType::Regular);
    evil.data = b"pwned";
    assert_unsafe(f.unpack(&tar_of(&[evil])), "../ file");
    let mut evil = e("a/../../../outside/victim", EntryType::Regular);
    evil.data = b"pwned";
    assert_unsafe(f.unpack(&gzip(&tar_of(&[evil]))), "a/../../ file");
    f.assert_outside_untouched();
    f.assert_store_empty();
}

fn absolute_entries_land_inside_the_layer() {
    let f = Fixture::new();
    let name = f.victim.to_str().unwrap().to_string();
    let mut evil = e(&name, EntryType::Regular);
    evil.data = b"inside";
    f.unpack(&tar_of(&[evil])).unwrap();
    let inside = f.target().join(f.victim.strip_prefix("/").unwrap());
    assert_eq!(fs::read(inside).unwrap(), b"inside");
    f.assert_outside_untouched();
}

fn symlink_then_path_through_it_is_refused() {
    let f = Fixture::new();
    let mut link = e("a", EntryType::Symlink);
    let outside = f.outside.to_str().unwrap().to_string();
    link.link = &outside;
    let mut through = e("a/victim", EntryType::Regular);
    through.data = b"pwned";
    assert_unsafe(f.unpack(&tar_of(&[link, through])), "absolute symlink dir");

    let mut up = e("up", EntryType::Symlink);
    up.link = "../../outside";
    let mut through = e("up/victim", EntryType::Regular);
    through.data = b"pwned";
    assert_unsafe(f.unpack(&tar_of(&[up, through])), "relative symlink dir");

    // A symlink as a directory entry's parent, and a hard link made through one.
    let mut up = e("up", EntryType::Symlink);
    up.link = "../../outside";
    let mut hl = e("up/new", EntryType::Link);
    hl.link = "etc";
    assert_unsafe(
        f.unpack(&tar_of(&[e("etc", EntryType::Regular), up, hl])),
        "link through symlink",
    );
    f.assert_outside_untouched();
    f.assert_store_empty();
}

fn file_over_symlink_replaces_the_symlink() {
    let f = Fixture::new();
    let victim = f.victim.to_str().unwrap().to_string();
    let mut link = e("a", EntryType::Symlink);
    link.link = &victim;
    let mut over = e("a", EntryType::Regular);
    over.data = b"pwned";
    over.mode = 0o777;
    let mut rel = e("b", EntryType::Symlink);
    rel.link = "../../outside/victim";
    let mut chmod_dir = e("b", EntryType::Directory);
    chmod_dir.mode = 0o777;
    f.unpack(&tar_of(&[link, over, rel, chmod_dir])).unwrap();
    assert_eq!(fs::read(f.target().join("a")).unwrap(), b"pwned");
    assert!(lstat(&f.target().join("b")).is_dir());
    f.assert_outside_untouched();
}

fn a_directory_replaced_later_in_the_layer_is_fine() {
    let f = Fixture::new();
    let mut link = e("d", EntryType::Symlink);
    link.link = "/tmp";
    let mut file = e("d2/f", EntryType::Regular);
    file.data = b"x";
    let mut over = e("d2", EntryType::Regular);
    over.data = b"file now";
    // d: directory, then a symlink; d2: directory with a file, then a plain file.
    f.unpack(&tar_of(&[
        e("d/", EntryType::Directory),
        e("d/x", EntryType::Regular),
        link,
        file,
        over,
    ]))
    .unwrap();
    assert!(lstat(&f.target().join("d")).file_type().is_symlink());
    assert_eq!(fs::read(f.target().join("d2")).unwrap(), b"file now");
    // Parents the tar does not list are made 0755 whatever the umask.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let g = Fixture::new();
    let r = g.unpack(&tar_of(&[e("implicit/f", EntryType::Regular)]));
    rustix::process::umask(old);
    r.unwrap();
    assert_eq!(lstat(&g.target().join("implicit")).mode() & 0o7777, 0o755);
    assert_eq!(lstat(&g.target()).mode() & 0o7777, 0o755);
    f.assert_outside_untouched();
}

fn hard_links_out_of_the_layer_are_refused() {
    let f = Fixture::new();
    let victim = f.victim.to_str().unwrap().to_string();
    let mut abs = e("h", EntryType::Link);
    abs.link = &victim;
    assert_unsafe(f.unpack(&tar_of(&[abs])), "absolute hard link");
    let rel_path = f.rel_outside();
    let mut rel = e("h", EntryType::Link);
    rel.link = &rel_path;
    assert_unsafe(f.unpack(&tar_of(&[rel])), "../ hard link");
    // A hard link to an in-layer symlink that points outside links the symlink itself.
    let mut s = e("s", EntryType::Symlink);
    s.link = &victim;
    let mut viasym = e("h", EntryType::Link);
    viasym.link = "s";
    f.unpack(&tar_of(&[s, viasym])).unwrap();
    assert!(lstat(&f.target().join("h")).file_type().is_symlink());
    f.assert_outside_untouched();
}

fn whiteout_and_symlink_tricks_stay_inside() {
    let f = Fixture::new();
    let outside = f.outside.to_str().unwrap().to_string();
    // A whiteout and an opaque marker below a symlink to the outside.
    let mut link = e("d", EntryType::Symlink);
    link.link = &outside;
    assert_unsafe(
        f.unpack(&tar_of(&[link, e("d/.wh.victim", EntryType::Regular)])),
        "whiteout through symlink",
    );
    let mut link = e("d", EntryType::Symlink);
    link.link = &outside;
    assert_unsafe(
        f.unpack(&tar_of(&[link, e("d/.wh..wh..opq", EntryType::Regular)])),
        "opaque through symlink",
    );
    assert_unsafe(
        f.unpack(&tar_of(&[e("../.wh.outside", EntryType::Regular)])),
        "whiteout with ..",
    );
    f.assert_outside_untouched();
    f.assert_store_empty();
    let perm = fs::metadata(&f.outside).unwrap().permissions().mode();
    assert_eq!(perm & 0o7777, 0o755);
    assert!(rustix::fs::getxattr(&f.outside, "trusted.overlay.opaque", &mut [0u8; 4]).is_err());
}

fn corrupted_blob_fails_and_leaves_nothing() {
    let f = Fixture::new();
    let mut file = e("a", EntryType::Regular);
    file.data = b"hello";
    let tar = tar_of(&[file]);
    let blob = gzip(&tar);
    let wrong = Digest::of(b"something else");
    match unpack_layer(blob.as_slice(), &f.target(), &wrong, None) {
        Err(Error::DigestMismatch {
            what: "layer blob", ..
        }) => {}
        other => panic!("expected a blob digest mismatch, got {other:?}"),
    }
    f.assert_store_empty();
    match unpack_layer(
        blob.as_slice(),
        &f.target(),
        &Digest::of(&blob),
        Some(&wrong),
    ) {
        Err(Error::DigestMismatch {
            what: "layer diffID",
            ..
        }) => {}
        other => panic!("expected a diffID mismatch, got {other:?}"),
    }
    f.assert_store_empty();
    // A flipped byte inside the gzip stream, and a truncated stream.
    let mut flipped = blob.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    assert!(unpack_layer(flipped.as_slice(), &f.target(), &Digest::of(&blob), None).is_err());
    f.assert_store_empty();
    let cut = &blob[..blob.len() - 12];
    assert!(unpack_layer(cut, &f.target(), &Digest::of(cut), None).is_err());
    f.assert_store_empty();
    f.assert_outside_untouched();
}

/// Why these tests cannot run here, if they cannot.
fn skip_reason() -> Option<String> {
    (!rustix::process::geteuid().is_root())
        .then(|| "needs root (ownership, device nodes, trusted.* xattrs)".to_string())
}

/// Own harness (libtest-mimic), as in crates/executor: a missing prerequisite marks every
/// test ignored with the reason, and fails it when `CI` is set (CI must run them).
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let skip = skip_reason();
    let tests: &[(&str, fn())] = &[
        (
            "unpack_preserves_metadata_and_converts_whiteouts",
            unpack_preserves_metadata_and_converts_whiteouts,
        ),
        (
            "unpack_reads_zstd_and_plain_tar",
            unpack_reads_zstd_and_plain_tar,
        ),
        ("dotdot_entries_are_refused", dotdot_entries_are_refused),
        (
            "absolute_entries_land_inside_the_layer",
            absolute_entries_land_inside_the_layer,
        ),
        (
            "symlink_then_path_through_it_is_refused",
            symlink_then_path_through_it_is_refused,
        ),
        (
            "file_over_symlink_replaces_the_symlink",
            file_over_symlink_replaces_the_symlink,
        ),
        (
            "a_directory_replaced_later_in_the_layer_is_fine",
            a_directory_replaced_later_in_the_layer_is_fine,
        ),
        (
            "hard_links_out_of_the_layer_are_refused",
            hard_links_out_of_the_layer_are_refused,
        ),
        (
            "whiteout_and_symlink_tricks_stay_inside",
            whiteout_and_symlink_tricks_stay_inside,
        ),
        (
            "corrupted_blob_fails_and_leaves_nothing",
            corrupted_blob_fails_and_leaves_nothing,
        ),
    ];
    let trials = berth_test_support::panicking_trials(tests, skip, "CI");
    libtest_mimic::run(&args, trials).exit();
}
