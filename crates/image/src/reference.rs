//! Image references, normalized the way docker and the kubelet do:
//!
//! | written | normalized |
//! | --- | --- |
//! | `busybox` | `docker.io/library/busybox:latest` |
//! | `user/app:1` | `docker.io/user/app:1` |
//! | `registry.k8s.io/pause:3.10` | unchanged |
//! | `localhost:5000/x/y:tag` | unchanged |
//! | `busybox:1.36@sha256:…` | `docker.io/library/busybox:1.36@sha256:…` (the digest decides what is pulled) |
//! | `busybox@sha256:…` | `docker.io/library/busybox@sha256:…` (no `:latest` added) |
//!
//! The first path component is a registry host when it contains a `.` or a `:`, or is
//! `localhost`; otherwise the registry is `docker.io` (`index.docker.io` is folded into it),
//! and a single-component docker.io name gets `library/`.

use std::fmt;
use std::str::FromStr;

use crate::{Digest, Error};

/// The registry that names without a host refer to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag used when a reference has neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A normalized image reference.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry host, with its port if any (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`, the repository (`docker.io/library/busybox`).
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `repository:tag`, the CRI "repo tag", if the reference has a tag.
    pub fn repo_tag(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.repository()))
    }

    /// `repository@digest` for a given manifest digest, the CRI "repo digest".
    pub fn repo_digest(&self, manifest: &Digest) -> String {
        format!("{}@{manifest}", self.repository())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse(s)
    }
}

/// Parses and normalizes `s`; the error names `s` and says what is wrong with it.
pub fn parse(s: &str) -> Result<Reference, Error> {
    let bad = |reason: String| Error::InvalidReference {
        reference: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("empty reference".into()));
    }
    if s.trim() != s || s.chars().any(char::is_whitespace) {
        return Err(bad("contains whitespace".into()));
    }

    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => {
            let digest = d
                .parse::<Digest>()
                .map_err(|e| bad(format!("bad digest: {e}")))?;
            (rest, Some(digest))
        }
        None => (s, None),
    };

    // The tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        validate_tag(t).map_err(|r| bad(r.into()))?;
    }
    if name.is_empty() {
        return Err(bad("missing repository name".into()));
    }

    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DEFAULT_DOMAIN.to_string();
    }
    validate_domain(&domain).map_err(|r| bad(r.into()))?;
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("library/{path}");
    }
    if path.is_empty() {
        return Err(bad("missing repository name".into()));
    }
    for component in path.split('/') {
        validate_path_component(component).map_err(|r| bad(format!("{r}: {component:?}")))?;
    }
    if domain.len() + 1 + path.len() > MAX_NAME_LEN {
        return Err(bad(format!(
            "repository name longer than {MAX_NAME_LEN} characters"
        )));
    }

    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, None) => Some(DEFAULT_TAG.to_string()),
        (None, Some(_)) => None,
    };
    Ok(Reference {
        domain,
        path,
        tag,
        digest,
    })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn validate_tag(t: &str) -> Result<(), &'static str> {
    let ok_first = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = |b: u8| ok_first(b) || b == b'.' || b == b'-';
    match t.as_bytes() {
        [] => Err("empty tag"),
        _ if t.len() > MAX_TAG_LEN => Err("tag longer than 128 characters"),
        [first, rest @ ..] if ok_first(*first) && rest.iter().all(|b| ok(*b)) => Ok(()),
        _ => Err(
            "tag may hold only letters, digits, '_', '.' and '-', and not start with '.' or '-'",
        ),
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn validate_path_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        return Err("empty path component");
    }
    if c.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err("path component must start and end with a letter or digit");
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let dashes = sep.bytes().all(|x| x == b'-');
        if !(sep == "." || sep == "_" || sep == "__" || dashes) {
            return Err("path component has an invalid separator or character");
        }
    }
    Ok(())
}

/// A host name or IPv4 address, or a bracketed IPv6 address, with an optional port.
fn validate_domain(d: &str) -> Result<(), &'static str> {
    let (host, port) = match d.strip_prefix('[') {
        Some(rest) => {
            let (h, after) = rest.split_once(']').ok_or("unterminated IPv6 address")?;
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err("invalid IPv6 address");
            }
            match after {
                "" => (None, None),
                p => (
                    None,
                    Some(
                        p.strip_prefix(':')
                            .ok_or("invalid text after IPv6 address")?,
                    ),
                ),
            }
        }
        None => match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        },
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err("registry port must be a number");
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    match host {
        Some(h) if !h.split('.').all(label_ok) => Err("invalid registry host name"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_string()
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalizes_docker_hub_names() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox:1"),
            "docker.io/library/busybox:1"
        );
    }

    #[test]
    fn keeps_other_registries() {
        assert_eq!(
            norm("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(norm("localhost:5000/x/y:tag"), "localhost:5000/x/y:tag");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("127.0.0.1:5000/a/b/c"), "127.0.0.1:5000/a/b/c:latest");
        assert_eq!(norm("[::1]:5000/a:b"), "[::1]:5000/a:b");
        let r = parse("localhost:5000/x/y:tag").unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("localhost:5000", "x/y", Some("tag"))
        );
    }

    #[test]
    fn digests() {
        assert_eq!(
            norm(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        let r = parse(&format!("busybox:1.36@{D}")).unwrap();
        assert_eq!(r.tag(), Some("1.36"));
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(
            r.repo_digest(r.digest().unwrap()),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(r.repo_tag().unwrap(), "docker.io/library/busybox:1.36");
    }

    #[test]
    fn errors_name_the_reference() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:abc",
            "busybox@md5:00",
            "a//b",
            "a/b/",
            "/a",
            "a b",
            "localhost:port/x",
            "-a/b",
            "a..b",
            "a/.b",
        ] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let long = format!("x:{}", "a".repeat(129));
        assert!(parse(&long).is_err());
    }
}
