//! Registry credentials: the docker `config.json` `auths` map, and the `auth` field format
//! (base64 of `user:password`) it shares with the CRI `AuthConfig`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pull::RegistryAuth;
use crate::{Error, Result};

/// Decodes an `auth` value (standard base64 of `user:password`) into a basic credential.
pub fn decode_basic(auth: &str) -> Result<RegistryAuth, String> {
    let bytes = base64_decode(auth.trim()).ok_or("auth is not valid base64")?;
    let text = String::from_utf8(bytes).map_err(|_| "auth is not UTF-8")?;
    let (user, password) = text
        .split_once(':')
        .ok_or("auth is not of the form user:password")?;
    Ok(RegistryAuth::Basic(user.into(), password.into()))
}

/// Standard base64 (padding optional); None on any other character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A docker `config.json`, as far as credentials go.
#[derive(Debug, Default)]
pub struct DockerConfig {
    path: PathBuf,
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
    #[serde(default, rename = "registrytoken")]
    registry_token: Option<String>,
}

impl DockerConfig {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            auths: std::collections::BTreeMap<String, AuthEntry>,
        }
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: path.into(),
                    ..Default::default()
                });
            }
            Err(e) => return Err(Error::io("read", path)(e)),
        };
        let raw: Raw = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
            path: path.into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            path: path.into(),
            auths: raw.auths,
        })
    }

    /// The credential for `registry` (`host[:port]`), if the file has one. Keys may be a
    /// bare host or a URL (`https://host/v1/`); docker.io also matches `index.docker.io`.
    pub fn lookup(&self, registry: &str) -> Result<Option<RegistryAuth>> {
        let wanted: &[&str] = if registry == "docker.io" {
            &["docker.io", "index.docker.io", "registry-1.docker.io"]
        } else {
            &[registry]
        };
        let host_of = |key: &str| -> String {
            let k = key
                .strip_prefix("https://")
                .or_else(|| key.strip_prefix("http://"))
                .unwrap_or(key);
            k.split('/').next().unwrap_or(k).to_string()
        };
        let Some(entry) = self
            .auths
            .iter()
            .find(|(k, _)| wanted.contains(&host_of(k).as_str()))
            .map(|(_, v)| v)
        else {
            return Ok(None);
        };
        let bad = |reason: String| Error::Corrupt {
            path: self.path.clone(),
            reason: format!("auths entry for {registry}: {reason}"),
        };
        if let Some(t) = entry.registry_token.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(RegistryAuth::Bearer(t.into())));
        }
        if let Some(a) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            return decode_basic(a).map(Some).map_err(bad);
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(RegistryAuth::Basic(u.clone(), p.clone())));
        }
        if entry.identity_token.is_some() {
            return Err(bad("identity tokens are not supported".into()));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(a: &RegistryAuth) -> (&str, &str) {
        match a {
            RegistryAuth::Basic(u, p) => (u, p),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(
            base64_decode("YmVydGg6YmVydGgtdGVzdA==").unwrap(),
            b"berth:berth-test"
        );
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("Y").is_none());
        assert!(base64_decode("a b").is_none());
        let a = decode_basic("dTpwOnE=").unwrap();
        assert_eq!(basic(&a), ("u", "p:q"));
        assert!(
            decode_basic("bm9jb2xvbg==")
                .unwrap_err()
                .contains("user:password")
        );
    }

    #[test]
    fn docker_config_is_looked_up_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "ZDpodWI="},
                "127.0.0.1:5000": {"username": "u", "password": "p"},
                "bad.io": {"auth": "!!"}
            }}"#,
        )
        .unwrap();
        let c = DockerConfig::load(&path).unwrap();
        assert_eq!(
            basic(&c.lookup("docker.io").unwrap().unwrap()),
            ("d", "hub")
        );
        assert_eq!(
            basic(&c.lookup("127.0.0.1:5000").unwrap().unwrap()),
            ("u", "p")
        );
        assert!(c.lookup("quay.io").unwrap().is_none());
        let err = c.lookup("bad.io").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("bad.io"),
            "{err}"
        );
        let none = DockerConfig::load(&dir.path().join("absent.json")).unwrap();
        assert!(none.lookup("docker.io").unwrap().is_none());
    }
}
