//! The content store: blobs by digest, unpacked layers by chain ID, image records.
//!
//! ```text
//! <root>/blobs/sha256/<hex>          verified blobs (manifests, configs, layers)
//! <root>/ingest/<n>                  blobs being written (removed at open)
//! <root>/layers/<chainid hex>/fs     one unpacked layer (its own diff, overlay form)
//! <root>/layers/<chainid hex>/.tmp-* a layer being unpacked (removed at open)
//! <root>/images/<id hex>.json        one record per image (versioned JSON)
//! <root>/images/.tmp-*               records being written (removed at open)
//! ```
//!
//! Everything becomes visible by a rename after it is complete and verified, so a crash
//! leaves only temp names, which `Store::open` removes. A layer directory without `fs` is
//! an unpack that never finished, and is removed too.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::unpack::{DEFAULT_MAX_LAYER_BYTES, TEMP_PREFIX, unpack_layer_limited};
use crate::{Digest, Error, Result, reference};

/// Version of the image record format written by this code.
pub const RECORD_VERSION: u32 = 1;

/// What a container needs from an image's config (OCI image config `config` object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An OCI image config blob, as far as berth reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedConfig {
    pub config: ImageConfig,
    pub diff_ids: Vec<Digest>,
}

/// Parses an OCI (or Docker v2 schema 2) image config blob.
pub fn parse_config(bytes: &[u8]) -> Result<ParsedConfig> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        config: Option<RawConfig>,
        rootfs: RawRootfs,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct RawConfig {
        user: Option<String>,
        env: Option<Vec<String>>,
        entrypoint: Option<Vec<String>>,
        cmd: Option<Vec<String>>,
        working_dir: Option<String>,
        volumes: Option<BTreeMap<String, serde_json::Value>>,
        stop_signal: Option<String>,
        labels: Option<BTreeMap<String, String>>,
    }
    #[derive(Deserialize)]
    struct RawRootfs {
        #[serde(rename = "type")]
        kind: String,
        diff_ids: Vec<Digest>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        path: PathBuf::from("<image config>"),
        reason: e.to_string(),
    })?;
    if raw.rootfs.kind != "layers" {
        return Err(Error::Corrupt {
            path: PathBuf::from("<image config>"),
            reason: format!("rootfs type {:?}, expected \"layers\"", raw.rootfs.kind),
        });
    }
    let c = raw.config.unwrap_or_default();
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(ParsedConfig {
        config: ImageConfig {
            user: non_empty(c.user),
            env: c.env.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            working_dir: non_empty(c.working_dir),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            stop_signal: non_empty(c.stop_signal),
            labels: c.labels.unwrap_or_default(),
        },
        diff_ids: raw.rootfs.diff_ids,
    })
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The (compressed) blob.
    pub blob: Digest,
    /// Uncompressed tar digest.
    pub diff_id: Digest,
    /// Chain ID: the key of the unpacked layer.
    pub chain_id: Digest,
    /// Blob size in bytes.
    pub size: u64,
}

/// One image, persisted as `images/<id hex>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub version: u32,
    /// The config digest.
    pub id: Digest,
    /// Normalized `repository:tag` names.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// `repository@manifest-digest` names.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Bytes of all the image's blobs (compressed layers, config, manifests).
    pub size: u64,
    pub layers: Vec<LayerRecord>,
    /// Every blob the image holds on to: manifests (and index), config, layers.
    pub blobs: Vec<Digest>,
    pub config: ImageConfig,
    /// A pinned image is never removed (CRI `pinned`, e.g. the pause image).
    #[serde(default)]
    pub pinned: bool,
}

/// What a garbage collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub blobs: Vec<Digest>,
    pub layers: Vec<Digest>,
    /// True when nothing was collected because a lease (a pull) was held.
    pub deferred: bool,
}

/// Held while content is being added (a pull): garbage collection waits for none to be
/// held, so it cannot delete a blob a pull has found present and is about to use.
pub struct Lease<'a> {
    store: &'a Store,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.store.leases.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A handle on the store under one root directory.
pub struct Store {
    root: PathBuf,
    /// Serializes changes to image records and garbage collection.
    meta: Mutex<()>,
    /// Leases held (pulls in progress).
    leases: AtomicUsize,
    /// What one layer may unpack to at most.
    max_layer_bytes: u64,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, and removes what a crash left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for d in ["blobs/sha256", "ingest", "layers", "images"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(Error::io("create", &p))?;
        }
        let store = Self {
            root,
            meta: Mutex::new(()),
            leases: AtomicUsize::new(0),
            max_layer_bytes: DEFAULT_MAX_LAYER_BYTES,
        };
        store.clean_temp()?;
        Ok(store)
    }

    /// Caps what one layer may unpack to (its tar stream, and the file data it writes);
    /// a larger layer fails its pull with `LayerTooLarge`. Default 64 GiB.
    pub fn with_max_layer_bytes(mut self, max: u64) -> Self {
        self.max_layer_bytes = max;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn clean_temp(&self) -> Result<()> {
        for e in read_dir(&self.root.join("ingest"))? {
            remove_any(&e)?;
        }
        for e in read_dir(&self.root.join("images"))? {
            if name_of(&e).starts_with(TEMP_PREFIX) {
                remove_any(&e)?;
            }
        }
        for layer in read_dir(&self.root.join("layers"))? {
            if !layer.join("fs").is_dir() || name_of(&layer).starts_with(TEMP_PREFIX) {
                info!(path = %layer.display(), "removing unfinished layer");
                remove_any(&layer)?;
                continue;
            }
            for e in read_dir(&layer)? {
                if name_of(&e).starts_with(TEMP_PREFIX) {
                    remove_any(&e)?;
                }
            }
        }
        Ok(())
    }

    /// Where the blob `d` lives once written.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm()).join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.blob_path(d)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::BlobNotFound(d.clone()),
            _ => Error::Io {
                op: "open",
                path: self.blob_path(d),
                source: e,
            },
        })
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut v)
            .map_err(Error::io("read", self.blob_path(d)))?;
        Ok(v)
    }

    /// Writes the blob read from `r`, verifying it against `expected` while it streams into a
    /// temp file; the blob appears under its digest only once verified and synced. Returns
    /// its size. An existing blob is kept and `r` is not read.
    pub fn write_blob(&self, mut r: impl Read, expected: &Digest) -> Result<u64> {
        if let Ok(md) = fs::metadata(self.blob_path(expected)) {
            return Ok(md.len());
        }
        let mut ingest = self.ingest(expected, None)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Io {
                        op: "read blob for",
                        path: ingest.temp.clone(),
                        source: e,
                    });
                }
            };
            ingest.write(&buf[..n])?;
        }
        ingest.commit()
    }

    /// Starts writing the blob `expected` piece by piece (for a download). `size`, if known,
    /// is a limit: more bytes than that fail at once. Nothing is visible until `commit`; a
    /// dropped ingest removes its temp file.
    pub fn ingest(&self, expected: &Digest, size: Option<u64>) -> Result<Ingest> {
        let temp = self.temp_name("ingest", expected.hex());
        let file = File::create_new(&temp).map_err(Error::io("create", &temp))?;
        Ok(Ingest {
            temp,
            target: self.blob_path(expected),
            file,
            hasher: sha2::Digest::new(),
            count: 0,
            limit: size,
            expected: expected.clone(),
            committed: false,
        })
    }

    /// The unpacked directory of the layer with chain ID `chain_id`.
    pub fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex()).join("fs")
    }

    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_path(chain_id).is_dir()
    }

    /// Unpacks each layer whose directory does not exist yet, from its blob (which must be in
    /// the store), checking blob digest and diffID again while streaming.
    pub fn unpack_layers(&self, layers: &[LayerRecord]) -> Result<()> {
        for l in layers {
            let target = self.layer_path(&l.chain_id);
            if target.is_dir() {
                continue;
            }
            let dir = target.parent().unwrap_or(&self.root);
            fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
            let blob = io::BufReader::new(self.open_blob(&l.blob)?);
            match unpack_layer_limited(
                blob,
                &target,
                &l.blob,
                Some(&l.diff_id),
                self.max_layer_bytes,
            ) {
                Ok(_) => debug!(chain_id = %l.chain_id, "layer ready"),
                // Another unpack of the same layer finished first.
                Err(Error::Io {
                    op: "rename into place",
                    ..
                }) if target.is_dir() => {}
                Err(e) => {
                    // The layer's directory, if empty (no concurrent unpack in it), goes
                    // too; Store::open would remove it anyway.
                    let _ = fs::remove_dir(dir);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Makes an image from blobs already in the store: its config (`id`) and its layer blobs,
    /// bottom first. `manifests` are the manifest (and index) blobs it came with; `repo_tags`
    /// and `repo_digests` its names. Unpacks the layers that are not unpacked yet, then
    /// stores the record (taking the tags off other images). An image already stored under
    /// the same id keeps its names and pin; the new names are added.
    pub fn create_image(
        &self,
        id: &Digest,
        layer_blobs: &[Digest],
        manifests: &[Digest],
        repo_tags: Vec<String>,
        repo_digests: Vec<String>,
    ) -> Result<ImageRecord> {
        let parsed = parse_config(&self.read_blob(id)?)?;
        if parsed.diff_ids.len() != layer_blobs.len() {
            return Err(Error::Corrupt {
                path: self.blob_path(id),
                reason: format!(
                    "config lists {} diff_ids, manifest {} layers",
                    parsed.diff_ids.len(),
                    layer_blobs.len()
                ),
            });
        }
        let blob_size = |d: &Digest| -> Result<u64> {
            let p = self.blob_path(d);
            match fs::metadata(&p) {
                Ok(md) => Ok(md.len()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(Error::BlobNotFound(d.clone()))
                }
                Err(e) => Err(Error::Io {
                    op: "stat",
                    path: p,
                    source: e,
                }),
            }
        };
        let chain = crate::chain_ids(&parsed.diff_ids);
        let mut layers = Vec::with_capacity(layer_blobs.len());
        for ((blob, diff_id), chain_id) in layer_blobs.iter().zip(&parsed.diff_ids).zip(chain) {
            layers.push(LayerRecord {
                blob: blob.clone(),
                diff_id: diff_id.clone(),
                chain_id,
                size: blob_size(blob)?,
            });
        }
        self.unpack_layers(&layers)?;
        // Pulling an image again under other names adds the names to it.
        let (mut tags, mut digests, mut pinned) = (Vec::new(), Vec::new(), false);
        let mut blobs: Vec<Digest> = manifests.to_vec();
        if let Some(old) = self.list()?.into_iter().find(|r| &r.id == id) {
            (tags, digests, pinned) = (old.repo_tags, old.repo_digests, old.pinned);
            // Keep the manifests it was pulled by before.
            blobs.extend(old.blobs.into_iter().filter(|b| self.has_blob(b)));
        }
        blobs.push(id.clone());
        blobs.extend(layer_blobs.iter().cloned());
        blobs.sort();
        blobs.dedup();
        let mut size = 0;
        for b in &blobs {
            size += blob_size(b)?;
        }
        for t in repo_tags {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        for d in repo_digests {
            if !digests.contains(&d) {
                digests.push(d);
            }
        }
        let record = ImageRecord {
            version: RECORD_VERSION,
            id: id.clone(),
            repo_tags: tags,
            repo_digests: digests,
            size,
            layers,
            blobs,
            config: parsed.config,
            pinned,
        };
        self.put_image(record.clone())?;
        info!(image_id = %id, "image stored");
        Ok(record)
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    /// Stores `record` (atomically), replacing any record with the same id. Each repo tag
    /// names one image: a tag given to this image is taken off any other.
    pub fn put_image(&self, mut record: ImageRecord) -> Result<()> {
        let _guard = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        record.version = RECORD_VERSION;
        for mut other in self.list_unlocked()? {
            if other.id == record.id {
                continue;
            }
            let before = other.repo_tags.len();
            other.repo_tags.retain(|t| !record.repo_tags.contains(t));
            if other.repo_tags.len() != before {
                self.write_record(&other)?;
            }
        }
        self.write_record(&record)
    }

    fn write_record(&self, record: &ImageRecord) -> Result<()> {
        let path = self.record_path(&record.id);
        let json = serde_json::to_vec_pretty(record).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let temp = self.temp_name("images", record.id.hex());
        let result = (|| {
            let mut f = File::create_new(&temp).map_err(Error::io("create", &temp))?;
            f.write_all(&json).map_err(Error::io("write", &temp))?;
            f.sync_all().map_err(Error::io("sync", &temp))?;
            fs::rename(&temp, &path).map_err(Error::io("rename into place", &path))?;
            sync_dir(&self.root.join("images"))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// All image records.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let _guard = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        self.list_unlocked()
    }

    fn list_unlocked(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for p in read_dir(&self.root.join("images"))? {
            let name = name_of(&p);
            if name.starts_with(TEMP_PREFIX) || !name.ends_with(".json") {
                continue;
            }
            let bytes = fs::read(&p).map_err(Error::io("read", &p))?;
            let rec: ImageRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: p.clone(),
                reason: e.to_string(),
            })?;
            if rec.version > RECORD_VERSION {
                return Err(Error::Corrupt {
                    path: p,
                    reason: format!(
                        "record version {} is newer than {RECORD_VERSION}",
                        rec.version
                    ),
                });
            }
            out.push(rec);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Finds an image by id (`sha256:<hex>` or `<hex>`), repo tag or repo digest (any
    /// reference form: `busybox` finds `docker.io/library/busybox:latest`).
    pub fn status(&self, name: &str) -> Result<Option<ImageRecord>> {
        let images = self.list()?;
        Ok(find(&images, name).cloned())
    }

    /// Pins (or unpins) the image `name` names; None if there is no such image.
    pub fn set_pinned(&self, name: &str, pinned: bool) -> Result<Option<ImageRecord>> {
        let _guard = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let images = self.list_unlocked()?;
        let Some(mut rec) = find(&images, name).cloned() else {
            return Ok(None);
        };
        if rec.pinned != pinned {
            rec.pinned = pinned;
            self.write_record(&rec)?;
            info!(image_id = %rec.id, pinned, "image pin changed");
        }
        Ok(Some(rec))
    }

    /// Removes the image `name` names (all its tags), unless it is pinned. Its blobs and
    /// layers stay until `gc`. Removing an image that does not exist is an error
    /// (`ImageNotFound`); CRI callers treat it as success.
    pub fn remove(&self, name: &str) -> Result<ImageRecord> {
        let _guard = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let images = self.list_unlocked()?;
        let rec = find(&images, name)
            .cloned()
            .ok_or_else(|| Error::ImageNotFound(name.to_string()))?;
        if rec.pinned {
            return Err(Error::Pinned(name.to_string()));
        }
        let path = self.record_path(&rec.id);
        fs::remove_file(&path).map_err(Error::io("remove", &path))?;
        sync_dir(&self.root.join("images"))?;
        info!(image_id = %rec.id, "image removed");
        Ok(rec)
    }

    /// Takes a lease: until it is dropped, `gc` collects nothing.
    pub fn lease(&self) -> Lease<'_> {
        let _guard = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        self.leases.fetch_add(1, Ordering::SeqCst);
        Lease { store: self }
    }

    /// Removes every blob and layer that no image record references and that is not in
    /// `layers_in_use` (chain IDs of layers under live snapshots). While a lease is held it
    /// does nothing and says so (`deferred`).
    pub fn gc(&self, layers_in_use: &HashSet<Digest>) -> Result<GcReport> {
        let _guard = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        if self.leases.load(Ordering::SeqCst) > 0 {
            debug!("image gc deferred: a lease is held");
            return Ok(GcReport {
                deferred: true,
                ..Default::default()
            });
        }
        let images = self.list_unlocked()?;
        let blobs: HashSet<&Digest> = images
            .iter()
            .flat_map(|i| i.blobs.iter().chain(i.layers.iter().map(|l| &l.blob)))
            .collect();
        let layers: HashSet<&Digest> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| &l.chain_id))
            .chain(layers_in_use)
            .collect();
        let mut report = GcReport::default();
        for p in read_dir(&self.root.join("blobs/sha256"))? {
            let Ok(d) = format!("sha256:{}", name_of(&p)).parse::<Digest>() else {
                warn!(path = %p.display(), "stray file in the blob store");
                continue;
            };
            if !blobs.contains(&d) {
                remove_any(&p)?;
                report.blobs.push(d);
            }
        }
        for p in read_dir(&self.root.join("layers"))? {
            let Ok(d) = format!("sha256:{}", name_of(&p)).parse::<Digest>() else {
                continue;
            };
            if !layers.contains(&d) {
                remove_any(&p)?;
                report.layers.push(d);
            }
        }
        if !report.blobs.is_empty() || !report.layers.is_empty() {
            info!(
                blobs = report.blobs.len(),
                layers = report.layers.len(),
                "image gc"
            );
        }
        Ok(report)
    }

    fn temp_name(&self, dir: &str, hint: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(dir)
            .join(format!("{TEMP_PREFIX}{hint}-{}-{n}", std::process::id()))
    }
}

/// A blob being written: hashed as it is written, renamed under its digest by `commit` once
/// verified and synced.
pub struct Ingest {
    temp: PathBuf,
    target: PathBuf,
    file: File,
    hasher: sha2::Sha256,
    count: u64,
    limit: Option<u64>,
    expected: Digest,
    committed: bool,
}

impl Ingest {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.count += data.len() as u64;
        if let Some(limit) = self.limit {
            if self.count > limit {
                return Err(Error::Corrupt {
                    path: self.temp.clone(),
                    reason: format!("blob {} is larger than its {limit} bytes", self.expected),
                });
            }
        }
        sha2::Digest::update(&mut self.hasher, data);
        self.file
            .write_all(data)
            .map_err(Error::io("write", &self.temp))
    }

    /// Verifies digest (and size, if one was given), syncs and renames into place.
    pub fn commit(mut self) -> Result<u64> {
        let got = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if got != self.expected {
            return Err(Error::DigestMismatch {
                what: "blob",
                expected: self.expected.clone(),
                actual: got,
            });
        }
        if let Some(limit) = self.limit {
            if self.count != limit {
                return Err(Error::Corrupt {
                    path: self.temp.clone(),
                    reason: format!(
                        "blob {} has {} bytes, expected {limit}",
                        self.expected, self.count
                    ),
                });
            }
        }
        self.file
            .sync_all()
            .map_err(Error::io("sync", &self.temp))?;
        fs::rename(&self.temp, &self.target)
            .map_err(Error::io("rename into place", &self.target))?;
        self.committed = true;
        if let Some(dir) = self.target.parent() {
            sync_dir(dir)?;
        }
        Ok(self.count)
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The record `name` refers to: an id, a repo tag or a repo digest.
fn find<'a>(images: &'a [ImageRecord], name: &str) -> Option<&'a ImageRecord> {
    let as_id = name.strip_prefix("sha256:").unwrap_or(name);
    if as_id.len() == 64 {
        if let Some(i) = images.iter().find(|i| i.id.hex() == as_id) {
            return Some(i);
        }
    }
    let r = reference::parse(name).ok()?;
    match r.digest() {
        Some(d) => {
            let rd = r.repo_digest(d);
            images.iter().find(|i| i.repo_digests.contains(&rd))
        }
        None => {
            let tag = r.repo_tag()?;
            images.iter().find(|i| i.repo_tags.contains(&tag))
        }
    }
}

fn read_dir(p: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in fs::read_dir(p).map_err(Error::io("read directory", p))? {
        out.push(e.map_err(Error::io("read directory", p))?.path());
    }
    Ok(out)
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Removes a file or a whole tree (std's remove_dir_all never follows symlinks).
fn remove_any(p: &Path) -> Result<()> {
    let md = fs::symlink_metadata(p).map_err(Error::io("stat", p))?;
    if md.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
    .map_err(Error::io("remove", p))
}

fn sync_dir(p: &Path) -> Result<()> {
    File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(Error::io("sync", p))
}
