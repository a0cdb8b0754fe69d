//! Registry hosts configuration, in the spirit of containerd's `certs.d`.
//!
//! For a registry `H` (`host` or `host:port`, as written in the image reference) the file
//! `<config_path>/H/hosts.toml` is read, or else `<config_path>/_default/hosts.toml`, or
//! else nothing (the registry itself over HTTPS). Format:
//!
//! ```toml
//! server = "https://registry.example.com"   # the upstream; default: the registry itself
//!
//! [host."http://127.0.0.1:5000"]            # mirrors, tried in the order written
//! capabilities = ["pull", "resolve"]        # default both; "resolve" = may answer tags
//! skip_verify = false                       # do not check the TLS certificate
//! ca = "/etc/berth/certs.d/H/ca.crt"        # a PEM CA (or a list) to trust for this host
//! ```
//!
//! The mirrors come first, in file order, then the upstream. `http://` endpoints speak
//! plain HTTP; a host name without a scheme means HTTPS. Hosts listed in `plain_http`
//! (`PullConfig::plain_http`) speak plain HTTP too.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// One place a registry's content can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` to connect to.
    pub host: String,
    /// Plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Accept any TLS certificate.
    pub skip_verify: bool,
    /// Extra CA certificates (PEM files) to trust.
    pub ca: Vec<PathBuf>,
    /// May resolve tags to manifests (false: only content addressed by digest).
    pub resolve: bool,
    /// May serve content at all.
    pub pull: bool,
    /// The upstream (not a mirror).
    pub upstream: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    skip_verify: Option<bool>,
    #[serde(default)]
    ca: Option<OneOrMany>,
    #[serde(default)]
    host: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    #[serde(default)]
    capabilities: Option<Vec<String>>,
    #[serde(default)]
    skip_verify: Option<bool>,
    #[serde(default)]
    ca: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<PathBuf> {
        match self {
            OneOrMany::One(p) => vec![p],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The endpoints to try, in order, for `registry`: mirrors from its hosts.toml, then the
/// upstream. `config_path` None or missing means no configuration.
pub fn endpoints(
    config_path: Option<&Path>,
    registry: &str,
    plain_http: &[String],
) -> Result<Vec<Endpoint>> {
    let file = match config_path {
        Some(dir) => find_hosts_file(dir, registry)?,
        None => None,
    };
    let (path, text) = match file {
        Some(f) => f,
        None => return Ok(vec![upstream(registry, None, plain_http, None)?]),
    };
    parse(&path, &text, registry, plain_http)
}

fn find_hosts_file(dir: &Path, registry: &str) -> Result<Option<(PathBuf, String)>> {
    if registry.contains('/') || registry.starts_with('.') {
        return Err(Error::InvalidReference {
            reference: registry.into(),
            reason: "not a registry host".into(),
        });
    }
    for name in [registry, "_default"] {
        let path = dir.join(name).join("hosts.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(Some((path, text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &path)(e)),
        }
    }
    Ok(None)
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Splits `http://host:port`, `https://host` or `host` into (host, plain_http).
fn split_url(path: &Path, url: &str) -> Result<(String, bool)> {
    let (plain, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (false, r)
    } else if url.contains("://") {
        return Err(bad(path, format!("host {url:?}: only http and https")));
    } else {
        (false, url)
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(bad(
            path,
            format!("host {url:?}: a scheme and host[:port] only, no path"),
        ));
    }
    Ok((host.to_string(), plain))
}

fn capabilities(path: &Path, caps: Option<Vec<String>>) -> Result<(bool, bool)> {
    let Some(caps) = caps else {
        return Ok((true, true));
    };
    let (mut pull, mut resolve) = (false, false);
    for c in &caps {
        match c.as_str() {
            "pull" => pull = true,
            "resolve" => resolve = true,
            "push" => {}
            other => return Err(bad(path, format!("unknown capability {other:?}"))),
        }
    }
    Ok((pull, resolve))
}

fn upstream(
    registry: &str,
    server: Option<(&Path, &str)>,
    plain_http: &[String],
    file: Option<&HostsFile>,
) -> Result<Endpoint> {
    let (host, plain) = match server {
        Some((path, url)) => split_url(path, url)?,
        None => (registry.to_string(), false),
    };
    let plain = plain || plain_http.iter().any(|h| h == &host);
    Ok(Endpoint {
        host,
        plain_http: plain,
        skip_verify: file.and_then(|f| f.skip_verify).unwrap_or(false),
        ca: Vec::new(),
        resolve: true,
        pull: true,
        upstream: true,
    })
}

fn parse(path: &Path, text: &str, registry: &str, plain_http: &[String]) -> Result<Vec<Endpoint>> {
    let mut file: HostsFile = toml::from_str(text).map_err(|e| bad(path, e.message()))?;
    let mut out = Vec::new();
    // toml's `preserve_order` keeps the hosts in file order.
    for (url, value) in std::mem::take(&mut file.host) {
        let entry: HostEntry = value
            .try_into()
            .map_err(|e: toml::de::Error| bad(path, format!("host {url:?}: {}", e.message())))?;
        let (host, plain) = split_url(path, &url)?;
        let (pull, resolve) = capabilities(path, entry.capabilities)?;
        out.push(Endpoint {
            plain_http: plain || plain_http.iter().any(|h| h == &host),
            host,
            skip_verify: entry.skip_verify.unwrap_or(false),
            ca: entry.ca.map(OneOrMany::into_vec).unwrap_or_default(),
            resolve,
            pull,
            upstream: false,
        });
    }
    let server = file.server.as_deref().map(|s| (path, s));
    let mut up = upstream(registry, server, plain_http, Some(&file))?;
    let (pull, resolve) = capabilities(path, file.capabilities.take())?;
    up.pull = pull;
    up.resolve = resolve;
    up.ca = file.ca.take().map(OneOrMany::into_vec).unwrap_or_default();
    out.push(up);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configuration_means_the_registry_over_https() {
        let dir = tempfile::tempdir().unwrap();
        for cfg in [
            None,
            Some(dir.path()),
            Some(Path::new("/nonexistent/certs.d")),
        ] {
            let e = endpoints(cfg, "registry.k8s.io", &[]).unwrap();
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].host, "registry.k8s.io");
            assert!(!e[0].plain_http && e[0].upstream && e[0].resolve);
        }
        let e = endpoints(None, "127.0.0.1:5000", &["127.0.0.1:5000".into()]).unwrap();
        assert!(e[0].plain_http);
    }

    #[test]
    fn mirrors_come_in_file_order_then_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("registry.k8s.io");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("hosts.toml"),
            r#"
server = "https://upstream.example:8443"
[host."http://zeta:5000"]
capabilities = ["pull", "resolve"]
[host."https://alpha"]
capabilities = ["pull"]
skip_verify = true
ca = "/etc/ca.crt"
"#,
        )
        .unwrap();
        let e = endpoints(Some(dir.path()), "registry.k8s.io", &[]).unwrap();
        let hosts: Vec<&str> = e.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(hosts, ["zeta:5000", "alpha", "upstream.example:8443"]);
        assert!(e[0].plain_http && e[0].resolve && !e[0].upstream);
        assert!(!e[1].plain_http && e[1].skip_verify && !e[1].resolve && e[1].pull);
        assert_eq!(e[1].ca, [PathBuf::from("/etc/ca.crt")]);
        assert!(e[2].upstream && !e[2].plain_http);
    }

    #[test]
    fn default_file_applies_to_other_registries() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("_default");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("hosts.toml"), "[host.\"http://m:1\"]\n").unwrap();
        let e = endpoints(Some(dir.path()), "docker.io", &[]).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].host.as_str(), e[1].host.as_str()),
            ("m:1", "docker.io")
        );
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("r.io");
        std::fs::create_dir_all(&d).unwrap();
        for (text, want) in [
            ("[host.\"ftp://x\"]\n", "only http and https"),
            ("[host.\"http://x/v2\"]\n", "no path"),
            ("[host.\"http://x\"]\ncapabilities = [\"fly\"]\n", "fly"),
            ("servr = \"x\"\n", "servr"),
        ] {
            std::fs::write(d.join("hosts.toml"), text).unwrap();
            let err = endpoints(Some(dir.path()), "r.io", &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains("hosts.toml") && err.contains(want), "{err}");
        }
    }
}
