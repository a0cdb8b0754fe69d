//! Network configurations: discovery in the conf dir and the readiness check.
//!
//! The rule (the one the kubelet's NetworkReady condition expects, and libcni's): take the
//! files of the conf dir ending in .conflist, .conf or .json, in name order; the first one
//! that parses as a network (a `name` and plugin `type`s) is the network. A .conf/.json
//! file is a single plugin configuration and is wrapped as a list of that one plugin. The
//! network is usable when every plugin it names (and each plugin's IPAM plugin) has an
//! executable in one of the bin dirs.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Error, Result};

/// The CNI version assumed for a configuration that names none (as libcni does).
const DEFAULT_CNI_VERSION: &str = "0.1.0";

const EXTENSIONS: &[&str] = &["conflist", "conf", "json"];

/// A loaded network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The file it was read from.
    pub file: PathBuf,
    pub name: String,
    pub cni_version: String,
    /// `disableCheck` of the list: CHECK is then skipped.
    pub disable_check: bool,
    /// The plugin configurations, in order, as written.
    pub plugins: Vec<Value>,
    /// The file's JSON, as written.
    pub raw: Value,
}

impl Network {
    /// Parses one configuration file: a .conflist has `plugins`, a .conf/.json is a single
    /// plugin configuration with its own `type`.
    pub fn load(file: &Path) -> Result<Network> {
        let text = std::fs::read_to_string(file).map_err(|source| Error::Io {
            op: "read cni config",
            path: file.to_path_buf(),
            source,
        })?;
        let raw: Value = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: file.to_path_buf(),
            reason: format!("invalid json: {e}"),
        })?;
        let is_list = file.extension().is_some_and(|x| x == "conflist");
        Network::from_value(file, raw, is_list).map_err(|reason| Error::Config {
            path: file.to_path_buf(),
            reason,
        })
    }

    /// A network from JSON: a list (`plugins`) when `is_list`, else one plugin.
    pub(crate) fn from_value(file: &Path, raw: Value, is_list: bool) -> Result<Network, String> {
        let name = raw
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("no network name")?
            .to_string();
        let cni_version = raw
            .get("cniVersion")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_CNI_VERSION)
            .to_string();
        let plugins: Vec<Value> = if is_list {
            raw.get("plugins")
                .and_then(Value::as_array)
                .filter(|p| !p.is_empty())
                .ok_or("no plugins")?
                .clone()
        } else {
            vec![raw.clone()]
        };
        for plugin in &plugins {
            if !plugin.is_object() {
                return Err("a plugin configuration is not an object".into());
            }
            plugin_type(plugin)?;
            if let Some(ipam) = ipam(plugin) {
                plugin_type(ipam)?;
            }
        }
        let disable_check = is_list
            && raw
                .get("disableCheck")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        Ok(Network {
            file: file.to_path_buf(),
            name,
            cni_version,
            disable_check,
            plugins,
            raw,
        })
    }

    /// The plugin binaries this network needs, each once, in order: every plugin's `type`
    /// and its IPAM plugin's (bridge -> host-local).
    pub fn plugin_types(&self) -> Vec<String> {
        let mut types: Vec<String> = Vec::new();
        for plugin in &self.plugins {
            let kinds = std::iter::once(plugin).chain(ipam(plugin));
            for kind in kinds.filter_map(|p| plugin_type(p).ok()) {
                if !types.contains(&kind) {
                    types.push(kind);
                }
            }
        }
        types
    }

    /// The list as berth runs it, whatever the file's form: what the result cache keeps.
    pub fn as_conflist(&self) -> Value {
        let mut list = Map::new();
        list.insert("cniVersion".into(), self.cni_version.clone().into());
        list.insert("name".into(), self.name.clone().into());
        if self.disable_check {
            list.insert("disableCheck".into(), true.into());
        }
        list.insert("plugins".into(), Value::Array(self.plugins.clone()));
        Value::Object(list)
    }

    /// Whether CHECK applies: the spec added it in 0.4.0, and a list may opt out.
    pub fn supports_check(&self) -> bool {
        !self.disable_check && version_at_least(&self.cni_version, (0, 4, 0))
    }
}

/// The outcome of a readiness check.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    Ready(Network),
    NotReady { message: String },
}

/// Finds the network berth uses: the first file of `conf_dir`, in name order, that parses
/// (see the module docs). Errors name the dir and each file skipped and why.
pub fn discover(conf_dir: &Path) -> Result<Network> {
    let entries = std::fs::read_dir(conf_dir).map_err(|source| Error::Io {
        op: "read cni config dir",
        path: conf_dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXTENSIONS.contains(&x))
                && p.is_file()
        })
        .collect();
    files.sort();

    let mut skipped = Vec::new();
    for file in &files {
        match Network::load(file) {
            Ok(net) => return Ok(net),
            Err(why) => skipped.push(why.to_string()),
        }
    }
    Err(Error::NoNetwork {
        dir: conf_dir.to_path_buf(),
        skipped: if skipped.is_empty() {
            String::new()
        } else {
            format!(" (skipped {})", skipped.join("; "))
        },
    })
}

/// Checks `conf_dir` and `bin_dirs` as described in the module docs. Only the presence of
/// the plugin binaries is checked; nothing is run.
pub fn check(conf_dir: &Path, bin_dirs: &[PathBuf]) -> Readiness {
    let network = match discover(conf_dir) {
        Ok(network) => network,
        Err(e) => {
            let message = match e {
                Error::Io { source, .. } => {
                    format!("cni config dir {}: {source}", conf_dir.display())
                }
                e => e.to_string(),
            };
            return Readiness::NotReady { message };
        }
    };
    let missing: Vec<String> = network
        .plugin_types()
        .into_iter()
        .filter(|plugin| find_plugin(plugin, bin_dirs).is_none())
        .collect();
    if !missing.is_empty() {
        return Readiness::NotReady {
            message: format!(
                "cni plugin(s) {} of network {:?} ({}) not found in {}",
                missing.join(", "),
                network.name,
                network.file.display(),
                join_dirs(bin_dirs, ", ")
            ),
        };
    }
    Readiness::Ready(network)
}

/// The first executable named `plugin` in `bin_dirs`.
pub fn find_plugin(plugin: &str, bin_dirs: &[PathBuf]) -> Option<PathBuf> {
    if plugin.is_empty() || plugin.contains('/') {
        return None;
    }
    bin_dirs
        .iter()
        .map(|dir| dir.join(plugin))
        .find(|path| is_executable(path))
}

pub(crate) fn join_dirs(dirs: &[PathBuf], sep: &str) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// A plugin configuration's `type`: a binary name.
pub(crate) fn plugin_type(plugin: &Value) -> Result<String, String> {
    plugin
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && !t.contains('/'))
        .map(str::to_string)
        .ok_or_else(|| "a plugin has no valid type".to_string())
}

fn ipam(plugin: &Value) -> Option<&Value> {
    plugin.get("ipam").filter(|i| i.get("type").is_some())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `version >= min` for "x.y.z" versions; an unparsable version counts as old.
pub(crate) fn version_at_least(version: &str, min: (u32, u32, u32)) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>());
    let (Some(Ok(a)), b, c) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let b = b.and_then(Result::ok).unwrap_or(0);
    let c = c.and_then(Result::ok).unwrap_or(0);
    (a, b, c) >= min
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const BRIDGE: &str = r#"{"cniVersion":"1.0.0","name":"berth","plugins":[
        {"type":"bridge","bridge":"berth0","ipam":{"type":"host-local"}},
        {"type":"portmap","capabilities":{"portMappings":true}}]}"#;

    fn bin_dir(plugins: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for p in plugins {
            let path = dir.path().join(p);
            std::fs::write(&path, "").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn missing_conf_dir_is_not_ready() {
        let bins = bin_dir(&[]);
        let r = check(Path::new("/nonexistent/net.d"), &[bins.path().into()]);
        assert!(
            matches!(r, Readiness::NotReady { message } if message.contains("/nonexistent/net.d"))
        );
    }

    #[test]
    fn conflist_with_all_plugins_is_ready() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(conf.path().join("10-berth.conflist"), BRIDGE).unwrap();
        let bins = bin_dir(&["bridge", "host-local", "portmap"]);
        match check(
            conf.path(),
            &[PathBuf::from("/nonexistent"), bins.path().into()],
        ) {
            Readiness::Ready(net) => {
                assert_eq!(net.name, "berth");
                assert_eq!(net.cni_version, "1.0.0");
                assert_eq!(net.plugins.len(), 2);
                assert_eq!(net.plugin_types(), ["bridge", "host-local", "portmap"]);
                assert!(net.supports_check());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_plugin_is_named() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(conf.path().join("10-berth.conflist"), BRIDGE).unwrap();
        let bins = bin_dir(&["bridge", "portmap"]);
        match check(conf.path(), &[bins.path().into()]) {
            Readiness::NotReady { message } => {
                assert!(message.contains("plugin(s) host-local of"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn first_parsable_file_by_name_wins_and_a_conf_is_wrapped_as_a_list() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(conf.path().join("00-broken.conflist"), "{not json").unwrap();
        std::fs::write(conf.path().join("05-notes.txt"), "ignored").unwrap();
        std::fs::write(
            conf.path().join("10-single.conf"),
            r#"{"name":"single","type":"bridge","cniVersion":"0.3.1"}"#,
        )
        .unwrap();
        std::fs::write(conf.path().join("20-berth.conflist"), BRIDGE).unwrap();
        let bins = bin_dir(&["bridge"]);
        match check(conf.path(), &[bins.path().into()]) {
            Readiness::Ready(net) => {
                assert_eq!(net.name, "single");
                assert_eq!(net.plugins, vec![net.raw.clone()]);
                assert!(!net.supports_check(), "0.3.1 has no CHECK");
                assert_eq!(
                    net.as_conflist(),
                    serde_json::json!({"cniVersion": "0.3.1", "name": "single",
                        "plugins": [{"name":"single","type":"bridge","cniVersion":"0.3.1"}]})
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn skipped_files_are_named_with_the_reason() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(conf.path().join("00-broken.conflist"), "{not json").unwrap();
        std::fs::write(conf.path().join("10-noplugins.conflist"), r#"{"name":"x"}"#).unwrap();
        let err = discover(conf.path()).unwrap_err().to_string();
        assert!(err.contains("00-broken.conflist: invalid json"), "{err}");
        assert!(err.contains("10-noplugins.conflist: no plugins"), "{err}");
    }

    #[test]
    fn a_version_less_conf_defaults_and_disable_check_is_read() {
        let net = Network::from_value(
            Path::new("x.conf"),
            serde_json::json!({"name": "n", "type": "bridge"}),
            false,
        )
        .unwrap();
        assert_eq!(net.cni_version, DEFAULT_CNI_VERSION);
        let net = Network::from_value(
            Path::new("x.conflist"),
            serde_json::json!({"name": "n", "cniVersion": "1.0.0", "disableCheck": true,
                "plugins": [{"type": "bridge"}]}),
            true,
        )
        .unwrap();
        assert!(!net.supports_check());
        assert_eq!(net.as_conflist()["disableCheck"], true);
    }

    #[test]
    fn plugin_without_type_is_rejected() {
        let err = Network::from_value(
            Path::new("x.conflist"),
            serde_json::json!({"name": "n", "plugins": [{"type": "bridge", "ipam": {"type": ""}}]}),
            true,
        )
        .unwrap_err();
        assert!(err.contains("no valid type"), "{err}");
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("0.4.0", (0, 4, 0)));
        assert!(version_at_least("1.0.0", (0, 4, 0)));
        assert!(version_at_least("0.10.0", (0, 4, 0)));
        assert!(!version_at_least("0.3.1", (0, 4, 0)));
        assert!(!version_at_least("junk", (0, 4, 0)));
    }

    #[test]
    fn non_executable_plugin_does_not_count() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(
            conf.path().join("10-single.conf"),
            r#"{"name":"single","type":"bridge"}"#,
        )
        .unwrap();
        let bins = tempfile::tempdir().unwrap();
        std::fs::write(bins.path().join("bridge"), "").unwrap();
        std::fs::set_permissions(
            bins.path().join("bridge"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            check(conf.path(), &[bins.path().into()]),
            Readiness::NotReady { .. }
        ));
    }

    #[test]
    fn empty_dir_reports_no_config() {
        let conf = tempfile::tempdir().unwrap();
        let Readiness::NotReady { message } = check(conf.path(), &[]) else {
            panic!("ready with no config");
        };
        assert!(
            message.starts_with("no valid cni network config"),
            "{message}"
        );
    }
}
