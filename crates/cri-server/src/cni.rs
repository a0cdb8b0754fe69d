//! CNI readiness: is there a network configuration berth could use to wire pods?
//!
//! The rule (the same one the kubelet's NetworkReady condition expects): take the files
//! of the conf dir ending in .conflist, .conf or .json, in name order; the first one that
//! parses as a network (a `name` and plugin `type`s) is the network. It is usable when
//! every plugin it names has a binary in one of the bin dirs. Only presence is checked
//! here; invoking the plugins is the sandbox crate's job.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A network configuration that parsed, and the plugin binaries it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub file: PathBuf,
    pub name: String,
    pub plugin_types: Vec<String>,
    /// The file's JSON, as written.
    pub raw: Value,
}

/// The outcome of a readiness check.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    Ready(NetworkConfig),
    NotReady { message: String },
}

const EXTENSIONS: &[&str] = &["conflist", "conf", "json"];

/// Checks `conf_dir` and `bin_dirs` as described in the module docs.
pub fn check(conf_dir: &Path, bin_dirs: &[PathBuf]) -> Readiness {
    let entries = match std::fs::read_dir(conf_dir) {
        Ok(entries) => entries,
        Err(e) => {
            return Readiness::NotReady {
                message: format!("cni config dir {}: {e}", conf_dir.display()),
            };
        }
    };
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
    let Some(network) = files.iter().find_map(|file| match load(file) {
        Ok(net) => Some(net),
        Err(why) => {
            skipped.push(format!("{}: {why}", file.display()));
            None
        }
    }) else {
        let mut message = format!("no valid cni network config in {}", conf_dir.display());
        if !skipped.is_empty() {
            message.push_str(&format!(" (skipped {})", skipped.join("; ")));
        }
        return Readiness::NotReady { message };
    };

    let missing: Vec<&str> = network
        .plugin_types
        .iter()
        .map(String::as_str)
        .filter(|plugin| !bin_dirs.iter().any(|dir| is_executable(&dir.join(plugin))))
        .collect();
    if !missing.is_empty() {
        let dirs: Vec<String> = bin_dirs.iter().map(|d| d.display().to_string()).collect();
        return Readiness::NotReady {
            message: format!(
                "cni plugin(s) {} of network {:?} ({}) not found in {}",
                missing.join(", "),
                network.name,
                network.file.display(),
                dirs.join(", ")
            ),
        };
    }
    Readiness::Ready(network)
}

/// Parses one configuration file: a .conflist has `plugins`, a .conf/.json is a single
/// plugin configuration with its own `type`.
fn load(file: &Path) -> Result<NetworkConfig, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let raw: Value = serde_json::from_str(&text).map_err(|e| format!("invalid json: {e}"))?;
    let name = raw
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("no network name")?
        .to_string();
    let is_list = file.extension().is_some_and(|x| x == "conflist");
    let plugins: Vec<&Value> = if is_list {
        raw.get("plugins")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or("no plugins")?
            .iter()
            .collect()
    } else {
        vec![&raw]
    };
    // A plugin's IPAM plugin (bridge -> host-local) is a binary of its own.
    let mut plugin_types: Vec<String> = Vec::new();
    for plugin in plugins {
        let ipam = plugin.get("ipam").filter(|i| i.get("type").is_some());
        for kind in std::iter::once(plugin_type(plugin)?).chain(ipam.map(plugin_type).transpose()?)
        {
            if !plugin_types.contains(&kind) {
                plugin_types.push(kind);
            }
        }
    }
    Ok(NetworkConfig {
        file: file.to_path_buf(),
        name,
        plugin_types,
        raw,
    })
}

fn plugin_type(plugin: &Value) -> Result<String, String> {
    plugin
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && !t.contains('/'))
        .map(str::to_string)
        .ok_or_else(|| "a plugin has no valid type".to_string())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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
                assert_eq!(net.plugin_types, ["bridge", "host-local", "portmap"]);
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
    fn first_parsable_file_by_name_wins() {
        let conf = tempfile::tempdir().unwrap();
        std::fs::write(conf.path().join("00-broken.conflist"), "{not json").unwrap();
        std::fs::write(conf.path().join("05-notes.txt"), "ignored").unwrap();
        std::fs::write(
            conf.path().join("10-single.conf"),
            r#"{"name":"single","type":"bridge"}"#,
        )
        .unwrap();
        std::fs::write(conf.path().join("20-berth.conflist"), BRIDGE).unwrap();
        let bins = bin_dir(&["bridge"]);
        match check(conf.path(), &[bins.path().into()]) {
            Readiness::Ready(net) => assert_eq!(net.name, "single"),
            other => panic!("{other:?}"),
        }
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
