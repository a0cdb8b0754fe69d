//! Where berthctl connects: the crictl-style config file and the endpoint precedence.
//!
//! Precedence, highest first (as crictl): the command-line flag, its environment variable
//! (`CONTAINER_RUNTIME_ENDPOINT`, `IMAGE_SERVICE_ENDPOINT`), the config file, berth's socket.
//! The image endpoint falls back to the runtime endpoint.

use std::path::Path;
use std::time::Duration;

use crate::error::Error;

/// berthd's socket: the endpoint when nothing else names one.
pub const DEFAULT_ENDPOINT: &str = "unix:///run/berth/berth.sock";
/// crictl's config file, which berthctl reads too.
pub const DEFAULT_CONFIG: &str = "/etc/crictl.yaml";
/// crictl's default per-call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The keys of a crictl config file berthctl understands; others are ignored.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FileConfig {
    pub runtime_endpoint: Option<String>,
    pub image_endpoint: Option<String>,
    pub timeout: Option<Duration>,
    pub debug: Option<bool>,
}

impl FileConfig {
    /// Reads `path`; a missing file is an empty config, as in crictl.
    pub fn load(path: &Path) -> Result<FileConfig, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => FileConfig::parse(&text).map_err(|message| Error::Config {
                path: path.display().to_string(),
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            Err(source) => Err(Error::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses the flat `key: value` lines of a crictl config (YAML subset: comments,
    /// quoted or bare scalars).
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        let mut cfg = FileConfig::default();
        for (n, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            if line.is_empty() || line == "---" {
                continue;
            }
            // YAML: the key ends at ": " (or a ':' ending the line); keys have no spaces.
            let split = line
                .split_once(": ")
                .or_else(|| line.strip_suffix(':').map(|k| (k, "")));
            let Some((key, value)) = split.filter(|(k, _)| !k.trim().contains(' ')) else {
                return Err(format!("line {}: expected `key: value`", n + 1));
            };
            let value = unquote(value.trim());
            match key.trim() {
                "runtime-endpoint" => cfg.runtime_endpoint = non_empty(value),
                "image-endpoint" => cfg.image_endpoint = non_empty(value),
                "timeout" => {
                    // crictl's timeout is whole seconds; accept "10s" style durations too.
                    let d = match value.parse::<u64>() {
                        Ok(secs) => Duration::from_secs(secs),
                        Err(_) => humantime::parse_duration(value)
                            .map_err(|e| format!("line {}: timeout {value:?}: {e}", n + 1))?,
                    };
                    cfg.timeout = Some(d);
                }
                "debug" => {
                    cfg.debug = Some(match value {
                        "true" | "True" | "yes" => true,
                        "false" | "False" | "no" | "" => false,
                        other => return Err(format!("line {}: debug {other:?}", n + 1)),
                    })
                }
                _ => {}
            }
        }
        Ok(cfg)
    }
}

fn strip_comment(line: &str) -> &str {
    // A '#' starts a comment at the line start or after a space (YAML), not inside a URL.
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

/// The endpoints and settings in force after precedence.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub runtime_endpoint: String,
    pub image_endpoint: String,
    pub timeout: Duration,
    pub debug: bool,
}

/// What the command line (flags, or their environment variables) said.
#[derive(Debug, Default, Clone)]
pub struct Given {
    pub runtime_endpoint: Option<String>,
    pub image_endpoint: Option<String>,
    pub timeout: Option<Duration>,
    pub debug: bool,
}

/// Applies the precedence flag/env > config file > default.
pub fn resolve(given: &Given, file: &FileConfig) -> Resolved {
    let runtime_endpoint = given
        .runtime_endpoint
        .clone()
        .or_else(|| file.runtime_endpoint.clone())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let image_endpoint = given
        .image_endpoint
        .clone()
        .or_else(|| file.image_endpoint.clone())
        .unwrap_or_else(|| runtime_endpoint.clone());
    Resolved {
        runtime_endpoint,
        image_endpoint,
        timeout: given.timeout.or(file.timeout).unwrap_or(DEFAULT_TIMEOUT),
        debug: given.debug || file.debug.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_keys_are_parsed() {
        let cfg = FileConfig::parse(
            "# crictl config\nruntime-endpoint: unix:///run/containerd/containerd.sock\n\
             image-endpoint: \"unix:///run/img.sock\"\ntimeout: 10\ndebug: true\n\
             pull-image-on-create: false\n",
        )
        .unwrap();
        assert_eq!(
            cfg,
            FileConfig {
                runtime_endpoint: Some("unix:///run/containerd/containerd.sock".into()),
                image_endpoint: Some("unix:///run/img.sock".into()),
                timeout: Some(Duration::from_secs(10)),
                debug: Some(true),
            }
        );
    }

    #[test]
    fn config_file_accepts_duration_timeouts_and_trailing_comments() {
        let cfg = FileConfig::parse("timeout: 1m30s # long\nruntime-endpoint: ''\n").unwrap();
        assert_eq!(cfg.timeout, Some(Duration::from_secs(90)));
        assert_eq!(cfg.runtime_endpoint, None);
    }

    #[test]
    fn config_file_rejects_garbage_lines() {
        assert!(FileConfig::parse("runtime-endpoint unix:///x").is_err());
        assert!(FileConfig::parse("debug: maybe").is_err());
    }

    #[test]
    fn missing_config_file_is_empty() {
        let cfg = FileConfig::load(Path::new("/nonexistent/crictl.yaml")).unwrap();
        assert_eq!(cfg, FileConfig::default());
    }

    #[test]
    fn default_endpoint_is_berths_socket() {
        let r = resolve(&Given::default(), &FileConfig::default());
        assert_eq!(r.runtime_endpoint, DEFAULT_ENDPOINT);
        assert_eq!(r.image_endpoint, DEFAULT_ENDPOINT);
        assert_eq!(r.timeout, DEFAULT_TIMEOUT);
        assert!(!r.debug);
    }

    #[test]
    fn flag_beats_config_file_and_image_endpoint_follows_runtime() {
        let file = FileConfig {
            runtime_endpoint: Some("unix:///file.sock".into()),
            timeout: Some(Duration::from_secs(9)),
            ..Default::default()
        };
        let given = Given {
            runtime_endpoint: Some("unix:///flag.sock".into()),
            ..Default::default()
        };
        let r = resolve(&given, &file);
        assert_eq!(r.runtime_endpoint, "unix:///flag.sock");
        assert_eq!(r.image_endpoint, "unix:///flag.sock");
        assert_eq!(r.timeout, Duration::from_secs(9));
    }

    #[test]
    fn config_file_beats_default_and_image_endpoint_is_separate() {
        let file = FileConfig {
            runtime_endpoint: Some("unix:///file.sock".into()),
            image_endpoint: Some("unix:///image.sock".into()),
            debug: Some(true),
            ..Default::default()
        };
        let r = resolve(&Given::default(), &file);
        assert_eq!(r.runtime_endpoint, "unix:///file.sock");
        assert_eq!(r.image_endpoint, "unix:///image.sock");
        assert!(r.debug);
    }
}
