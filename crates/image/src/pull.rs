//! Pulling images from a registry into the store.
//!
//! oci-client does the transport (HTTP(S), anonymous / basic / bearer auth and the token
//! dance); berth reads the manifests itself, picks the platform, and verifies everything it
//! stores: each manifest against its digest, each blob while it streams into the store
//! (sha256 and size from the descriptor), each layer again while it unpacks (blob digest and
//! diffID).
//!
//! Accepted: OCI image manifests and indexes, Docker v2 schema 2 manifests and manifest
//! lists; layers uncompressed, gzip or zstd. Refused with an error that says so: schema 1
//! manifests, encrypted layers, non-image artifacts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
pub use oci_client::secrets::RegistryAuth;
use serde::Deserialize;
use tracing::{debug, info, warn};

use crate::auth::DockerConfig;
use crate::hosts::{self, Endpoint};
use crate::store::{ImageRecord, Store};
use crate::{Digest, Error, Reference, Result};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const ACCEPTED: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
/// Manifests larger than this are refused (the distribution registry's own limit).
const MAX_MANIFEST: usize = 4 << 20;

/// How a `Puller` reaches registries.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// Registry hosts (`host:port`) spoken to over plain HTTP.
    pub plain_http: Vec<String>,
    /// Layers fetched at once per image.
    pub max_concurrent_downloads: usize,
    /// Platform wanted from an index: (os, architecture).
    pub platform: (String, String),
    /// The hosts configuration directory (`<dir>/<registry>/hosts.toml`, see [`hosts`]).
    /// None or a missing directory: every registry is its own only endpoint.
    pub hosts_dir: Option<PathBuf>,
    /// A docker `config.json` whose `auths` are used when a pull brings no credentials.
    pub docker_config: Option<PathBuf>,
    /// How long connecting to an endpoint may take before the next one is tried.
    pub connect_timeout: Duration,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            plain_http: Vec::new(),
            max_concurrent_downloads: 3,
            platform: ("linux".into(), "amd64".into()),
            hosts_dir: None,
            docker_config: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Pulls images into one store. Keeps one registry client per kind of endpoint (plain
/// HTTP, TLS settings) and credential, so tokens are reused across pulls with the same
/// credential. (oci-client keeps the first credential it sees for a registry for good: a
/// client shared between credentials would let a pull without credentials use another
/// pull's, and a pull with the right password fail after one with a wrong one.)
pub struct Puller {
    store: Arc<Store>,
    config: PullConfig,
    clients: Mutex<HashMap<ClientKey, oci_client::Client>>,
    /// One lock per reference being pulled: a second pull of the same reference waits for
    /// the first and then finds its content in the store.
    in_flight: Gates,
    /// One lock per blob being downloaded: pulls of different references sharing a blob
    /// download it once (the later one waits, then finds it stored).
    blobs_in_flight: Gates,
}

/// Named async locks, each kept only while someone holds or waits for it.
#[derive(Default)]
struct Gates(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Gates {
    /// Runs `work` while holding the lock named `key`.
    async fn run<T>(&self, key: &str, work: impl Future<Output = T>) -> T {
        let gate = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.to_string()).or_default().clone()
        };
        let result = {
            let _held = gate.lock().await;
            work.await
        };
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map and this call hold it: nobody else waits, drop the entry.
        if Arc::strong_count(&gate) == 2 {
            map.remove(key);
        }
        result
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    plain_http: bool,
    skip_verify: bool,
    ca: Vec<PathBuf>,
    /// sha256 of the credential (not the credential itself).
    credential: Digest,
}

/// At most this many clients are kept; beyond, the cache starts over.
const MAX_CLIENTS: usize = 64;

fn fingerprint(auth: &RegistryAuth) -> Digest {
    let text = match auth {
        RegistryAuth::Anonymous => "anonymous".to_string(),
        RegistryAuth::Basic(u, p) => format!("basic\0{u}\0{p}"),
        RegistryAuth::Bearer(t) => format!("bearer\0{t}"),
    };
    Digest::of(text.as_bytes())
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

impl Puller {
    pub fn new(store: Arc<Store>, config: PullConfig) -> Self {
        Self {
            store,
            config,
            clients: Mutex::new(HashMap::new()),
            in_flight: Gates::default(),
            blobs_in_flight: Gates::default(),
        }
    }

    fn client(&self, e: &Endpoint, auth: &RegistryAuth) -> Result<oci_client::Client> {
        let key = ClientKey {
            plain_http: e.plain_http,
            skip_verify: e.skip_verify,
            ca: e.ca.clone(),
            credential: fingerprint(auth),
        };
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        let mut certs = Vec::new();
        for path in &key.ca {
            let data = std::fs::read(path).map_err(Error::io("read CA certificate", path))?;
            certs.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let client = oci_client::Client::new(ClientConfig {
            protocol: if key.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: key.skip_verify,
            extra_root_certificates: certs,
            platform_resolver: None,
            max_concurrent_download: self.config.max_concurrent_downloads.max(1),
            connect_timeout: Some(self.config.connect_timeout),
            ..Default::default()
        });
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// The credential for the registry itself: the caller's, or else the docker config's
    /// for the registry, or else anonymous.
    fn credentials(&self, registry: &str, auth: &RegistryAuth) -> Result<RegistryAuth> {
        if *auth != RegistryAuth::Anonymous {
            return Ok(auth.clone());
        }
        self.docker_credentials(registry)
    }

    /// The docker config's credential for `host`, or anonymous.
    fn docker_credentials(&self, host: &str) -> Result<RegistryAuth> {
        let Some(path) = &self.config.docker_config else {
            return Ok(RegistryAuth::Anonymous);
        };
        Ok(DockerConfig::load(path)?
            .lookup(host)?
            .unwrap_or(RegistryAuth::Anonymous))
    }

    /// Pulls `reference` (all of it that the store lacks), unpacks its layers, and stores its
    /// record with the reference's tag and the pulled manifest's digest as names.
    ///
    /// The registry's endpoints (see [`hosts`]) are tried in order for the manifest: on any
    /// failure there (connection refused, 404, 5xx, ...) the next one is tried; the content
    /// then comes from the endpoint that answered (blobs it fails to serve from the others).
    /// Concurrent pulls of one reference run one after the other, the later ones finding
    /// the content already stored; a blob shared by concurrent pulls is downloaded once.
    pub async fn pull(&self, reference: &Reference, auth: &RegistryAuth) -> Result<ImageRecord> {
        let shown = reference.to_string();
        self.in_flight
            .run(&shown, self.pull_once(reference, auth))
            .await
    }

    async fn pull_once(&self, reference: &Reference, auth: &RegistryAuth) -> Result<ImageRecord> {
        let shown = reference.to_string();
        let _lease = self.store.lease();
        let bad = |reason: String| Error::Registry {
            reference: shown.clone(),
            reason,
        };
        let (registry, repo) = (reference.domain().to_string(), reference.path().to_string());
        let oci_ref = match (reference.tag(), reference.digest()) {
            (Some(t), Some(d)) => {
                oci_client::Reference::with_tag_and_digest(registry, repo, t.into(), d.to_string())
            }
            (None, Some(d)) => oci_client::Reference::with_digest(registry, repo, d.to_string()),
            (Some(t), None) => oci_client::Reference::with_tag(registry, repo, t.into()),
            (None, None) => oci_client::Reference::with_tag(
                registry,
                repo,
                crate::reference::DEFAULT_TAG.into(),
            ),
        };
        let endpoints = hosts::endpoints(
            self.config.hosts_dir.as_deref(),
            reference.domain(),
            &self.config.plain_http,
        )?;
        // The pull's credential goes to the upstream only; a mirror gets the docker
        // config's credential for its own host, if any (as containerd: a mirror is another
        // party, not to be handed the registry's password).
        let upstream_auth = self.credentials(reference.domain(), auth)?;
        let auths = endpoints
            .iter()
            .map(|e| {
                if e.upstream {
                    Ok(upstream_auth.clone())
                } else {
                    self.docker_credentials(&e.host)
                }
            })
            .collect::<Result<Vec<_>>>()?;

        // Resolve: the first endpoint that serves the manifest wins.
        let mut failures = Vec::new();
        let mut resolved = None;
        for (i, e) in endpoints.iter().enumerate() {
            if !e.pull || (!e.resolve && reference.digest().is_none()) {
                continue;
            }
            let client = self.client(e, &auths[i])?;
            let r = endpoint_ref(&oci_ref, e, reference.domain());
            let scheme = if e.plain_http { "http" } else { "https" };
            match client.pull_manifest_raw(&r, &auths[i], ACCEPTED).await {
                Ok((bytes, _)) => {
                    debug!(reference = %shown, endpoint = %e.host, "manifest resolved");
                    resolved = Some((i, client, r, bytes));
                    break;
                }
                Err(err) => {
                    warn!(reference = %shown, endpoint = %e.host, error = %err, "endpoint failed, trying the next");
                    failures.push(format!("{scheme}://{}: {err}", e.host));
                }
            }
        }
        let Some((won, client, resolved_ref, bytes)) = resolved else {
            return Err(bad(if failures.is_empty() {
                "no endpoint may resolve it (hosts.toml capabilities)".into()
            } else {
                failures.join("; ")
            }));
        };
        // Blobs come from the endpoint that resolved, else from the other endpoints that
        // may serve pulls, in order (content is addressed by digest: any copy will do).
        let mut sources = vec![Source {
            client: client.clone(),
            image: resolved_ref.clone(),
            host: endpoints[won].host.clone(),
        }];
        for (i, e) in endpoints.iter().enumerate() {
            if i != won && e.pull {
                let client = self.client(e, &auths[i])?;
                let image = endpoint_ref(&oci_ref, e, reference.domain());
                client
                    .store_auth_if_needed(image.resolve_registry(), &auths[i])
                    .await;
                sources.push(Source {
                    client,
                    image,
                    host: e.host.clone(),
                });
            }
        }
        let oci_ref = resolved_ref;
        let registry_err = |e: oci_client::errors::OciDistributionError| Error::Registry {
            reference: shown.clone(),
            reason: e.to_string(),
        };
        let auth = &auths[won];
        let top_digest = Digest::of(&bytes);
        if let Some(want) = reference.digest() {
            if *want != top_digest {
                return Err(Error::DigestMismatch {
                    what: "manifest",
                    expected: want.clone(),
                    actual: top_digest,
                });
            }
        }
        let mut manifests = vec![top_digest.clone()];
        let mut manifest = parse_manifest(&bytes).map_err(&bad)?;
        self.store.write_blob(&bytes[..], &top_digest)?;

        if let Some(entries) = &manifest.manifests {
            let (os, arch) = &self.config.platform;
            let chosen = entries
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| &p.os == os && &p.architecture == arch)
                })
                .ok_or_else(|| bad(format!("no manifest for {os}/{arch} in the index")))?;
            let by_digest = oci_ref.clone_with_digest(chosen.digest.to_string());
            let (bytes, _) = client
                .pull_manifest_raw(&by_digest, auth, ACCEPTED)
                .await
                .map_err(registry_err)?;
            let got = Digest::of(&bytes);
            if got != chosen.digest {
                return Err(Error::DigestMismatch {
                    what: "manifest",
                    expected: chosen.digest.clone(),
                    actual: got,
                });
            }
            manifest = parse_manifest(&bytes).map_err(&bad)?;
            if manifest.manifests.is_some() {
                return Err(bad("an index inside an index is not supported".into()));
            }
            self.store.write_blob(&bytes[..], &got)?;
            manifests.push(got);
        }

        let config = manifest
            .config
            .ok_or_else(|| bad("manifest has no config".into()))?;
        if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
            return Err(bad(format!(
                "not a container image: config media type {:?}",
                config.media_type
            )));
        }
        let layers = manifest.layers.unwrap_or_default();
        for l in &layers {
            if l.media_type.contains("encrypted") {
                return Err(bad(format!(
                    "layer {} is encrypted ({}), which berth cannot decrypt",
                    l.digest, l.media_type
                )));
            }
        }
        self.fetch_blob(&sources, &config, &shown).await?;
        // Collected first: a lazily mapped iterator makes the future not provably Send.
        let fetches: Vec<_> = layers
            .iter()
            .map(|l| self.fetch_blob(&sources, l, &shown))
            .collect();
        stream::iter(fetches)
            .buffer_unordered(self.config.max_concurrent_downloads.max(1))
            .try_collect::<Vec<()>>()
            .await?;

        let repo_tags = reference.repo_tag().into_iter().collect();
        let repo_digests = vec![reference.repo_digest(&top_digest)];
        let layer_blobs: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
        let store = self.store.clone();
        let id = config.digest.clone();
        let record = tokio::task::spawn_blocking(move || {
            store.create_image(&id, &layer_blobs, &manifests, repo_tags, repo_digests)
        })
        .await
        .map_err(|e| bad(format!("unpack task: {e}")))??;
        info!(reference = %shown, image_id = %record.id, "image pulled");
        Ok(record)
    }

    /// Streams one blob into the store (skipped when the store has it), verified against
    /// the descriptor's digest and size, from the first source that serves it whole.
    async fn fetch_blob(&self, sources: &[Source], d: &Descriptor, shown: &str) -> Result<()> {
        let key = d.digest.to_string();
        self.blobs_in_flight
            .run(&key, self.fetch_blob_once(sources, d, shown))
            .await
    }

    async fn fetch_blob_once(&self, sources: &[Source], d: &Descriptor, shown: &str) -> Result<()> {
        if self.store.has_blob(&d.digest) {
            debug!(digest = %d.digest, "blob already in the store");
            return Ok(());
        }
        let mut failures = Vec::new();
        for src in sources {
            match self.fetch_blob_from(src, d, shown).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    warn!(reference = %shown, endpoint = %src.host, digest = %d.digest, error = %e, "blob fetch failed");
                    failures.push((src.host.clone(), e));
                }
            }
        }
        if failures.len() == 1 {
            return Err(failures.remove(0).1);
        }
        Err(Error::Registry {
            reference: shown.to_string(),
            reason: failures
                .iter()
                .map(|(host, e)| format!("{host}: {e}"))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    async fn fetch_blob_from(&self, src: &Source, d: &Descriptor, shown: &str) -> Result<()> {
        let digest = d.digest.to_string();
        let registry_err = |e: oci_client::errors::OciDistributionError| Error::Registry {
            reference: shown.to_string(),
            reason: format!("fetch blob {digest}: {e}"),
        };
        let mut s = src
            .client
            .pull_blob_stream(&src.image, digest.as_str())
            .await
            .map_err(registry_err)?;
        let mut ingest = self.store.ingest(&d.digest, Some(d.size))?;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| Error::Registry {
                reference: shown.to_string(),
                reason: format!("fetch blob {digest}: {e}"),
            })?;
            ingest.write(&chunk)?;
        }
        let n = ingest.commit()?;
        debug!(%digest, bytes = n, endpoint = %src.host, "blob fetched");
        Ok(())
    }
}

/// Where blobs can come from: one endpoint, its client, and the reference as it names it.
struct Source {
    client: oci_client::Client,
    image: oci_client::Reference,
    host: String,
}

/// `image` as endpoint `e` serves it: the registry itself, or a mirror (`?ns=<registry>`).
fn endpoint_ref(
    image: &oci_client::Reference,
    e: &Endpoint,
    registry: &str,
) -> oci_client::Reference {
    let mut r = image.clone();
    if !(e.upstream && e.host == registry) {
        r.set_mirror_registry(e.host.clone());
    }
    r
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    if bytes.len() > MAX_MANIFEST {
        return Err(format!(
            "manifest of {} bytes is larger than {MAX_MANIFEST}",
            bytes.len()
        ));
    }
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("bad manifest: {e}"))?;
    if m.schema_version != 2 {
        return Err(format!(
            "manifest schema version {} is not supported (only 2)",
            m.schema_version
        ));
    }
    match m.media_type.as_deref() {
        None | Some(OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST) => Ok(m),
        Some(other) => Err(format!("manifest media type {other:?} is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_checked() {
        let d = Digest::of(b"");
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{d}","size":0}},"layers":[]}}"#
        );
        assert!(parse_manifest(m.as_bytes()).unwrap().config.is_some());
        assert!(
            parse_manifest(br#"{"schemaVersion":1}"#)
                .unwrap_err()
                .contains("schema version 1")
        );
        assert!(parse_manifest(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#).is_err());
        assert!(parse_manifest(&vec![b' '; MAX_MANIFEST + 1]).is_err());
    }

    /// berthd runs pulls on a multi-threaded runtime: the future must stay `Send`.
    #[allow(dead_code)]
    fn pull_future_is_send(p: &Puller, r: &Reference, a: &RegistryAuth) {
        fn send<T: Send>(_: T) {}
        send(p.pull(r, a));
    }
}
