//! Running one plugin: the binary from the bin dirs, the CNI_* environment, the plugin's
//! configuration on stdin, its result (or its error) on stdout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::attachment::Attachment;
use super::config::{find_plugin, join_dirs, plugin_type};
use super::{Error, Result};

/// CNI_COMMAND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The plugin's stdin: its configuration with the list's `name` and `cniVersion`, the
/// `prevResult` and the `runtimeConfig` of the capabilities it declares.
pub(crate) fn plugin_stdin(
    network: &str,
    cni_version: &str,
    plugin: &Value,
    prev_result: Option<&Value>,
    att: &Attachment,
) -> Value {
    let mut conf = plugin.as_object().cloned().unwrap_or_default();
    conf.insert("name".into(), network.into());
    conf.insert("cniVersion".into(), cni_version.into());
    match prev_result {
        Some(prev) => conf.insert("prevResult".into(), prev.clone()),
        None => conf.remove("prevResult"),
    };
    match att.capabilities.for_plugin(plugin) {
        Some(rc) => conf.insert("runtimeConfig".into(), rc),
        None => conf.remove("runtimeConfig"),
    };
    Value::Object(conf)
}

/// The error a plugin prints on failure.
#[derive(Debug, Deserialize)]
struct PluginError {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// What to run and where.
pub(crate) struct Invoker<'a> {
    pub bin_dirs: &'a [PathBuf],
    pub timeout: Duration,
}

impl Invoker<'_> {
    /// Runs `plugin` (a configuration of network `network`) with `command`. Returns what
    /// it printed as JSON on success (`None` for an empty stdout: DEL and CHECK print
    /// nothing).
    pub async fn invoke(
        &self,
        network: &str,
        command: Command,
        stdin: &Value,
        att: &Attachment,
    ) -> Result<Option<Value>> {
        let kind = plugin_type(stdin).map_err(|reason| Error::Config {
            path: PathBuf::from(network),
            reason,
        })?;
        let plugin_err = |msg: String| Error::Plugin {
            network: network.to_string(),
            plugin: kind.clone(),
            command,
            code: None,
            msg,
            details: String::new(),
        };
        let binary = find_plugin(&kind, self.bin_dirs).ok_or_else(|| Error::PluginNotFound {
            network: network.to_string(),
            plugin: kind.clone(),
            dirs: join_dirs(self.bin_dirs, ", "),
        })?;
        let input = serde_json::to_vec(stdin).map_err(|e| plugin_err(e.to_string()))?;
        debug!(
            network,
            plugin = %kind,
            command = command.as_str(),
            container_id = %att.container_id,
            netns = %att.netns.display(),
            "invoking cni plugin"
        );

        let mut child = tokio::process::Command::new(&binary)
            .env("CNI_COMMAND", command.as_str())
            .env("CNI_CONTAINERID", &att.container_id)
            .env("CNI_NETNS", &att.netns)
            .env("CNI_IFNAME", &att.ifname)
            .env("CNI_ARGS", att.cni_args())
            .env("CNI_PATH", join_dirs(self.bin_dirs, ":"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Exec {
                network: network.to_string(),
                plugin: kind.clone(),
                path: binary.clone(),
                source,
            })?;
        let mut pipe = child.stdin.take();
        let feed = async move {
            if let Some(pipe) = pipe.as_mut() {
                // A plugin that exits without reading all of stdin is judged by its exit.
                let _ = pipe.write_all(&input).await;
            }
            drop(pipe);
        };
        let run = async { tokio::join!(feed, child.wait_with_output()).1 };
        let output = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| Error::Timeout {
                network: network.to_string(),
                plugin: kind.clone(),
                command,
                timeout: self.timeout,
            })?
            .map_err(|source| Error::Exec {
                network: network.to_string(),
                plugin: kind.clone(),
                path: binary.clone(),
                source,
            })?;

        if !output.status.success() {
            return Err(failure(
                network,
                &kind,
                command,
                &binary,
                output.status,
                &output.stdout,
                &output.stderr,
            ));
        }
        let stderr = trim(&output.stderr);
        if !stderr.is_empty() {
            debug!(
                network,
                plugin = %kind,
                command = command.as_str(),
                stderr = %String::from_utf8_lossy(tail_bytes(stderr, 4096)),
                "cni plugin stderr"
            );
        }
        let stdout = trim(&output.stdout);
        if stdout.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(stdout)
            .map(Some)
            .map_err(|e| Error::InvalidResult {
                network: network.to_string(),
                plugin: kind.clone(),
                command,
                reason: format!("stdout is not json: {e}"),
            })
    }
}

/// The error of a plugin that exited non-zero: its printed error if it printed one, else
/// the exit status and its stderr.
fn failure(
    network: &str,
    plugin: &str,
    command: Command,
    binary: &Path,
    status: std::process::ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> Error {
    let printed = serde_json::from_slice::<PluginError>(trim(stdout))
        .ok()
        .filter(|e| e.code != 0 || !e.msg.is_empty());
    let (code, msg, details) = match printed {
        Some(e) => (Some(e.code), e.msg, e.details),
        None => {
            let stderr = String::from_utf8_lossy(trim(stderr));
            let stdout = String::from_utf8_lossy(trim(stdout));
            let said = [stderr.as_ref(), stdout.as_ref()]
                .into_iter()
                .find(|s| !s.is_empty())
                .map(|s| format!(": {}", tail(s, 512)))
                .unwrap_or_default();
            (
                None,
                format!("{} {status}{said}", binary.display()),
                String::new(),
            )
        }
    };
    Error::Plugin {
        network: network.to_string(),
        plugin: plugin.to_string(),
        command,
        code,
        msg,
        details,
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

fn tail_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[b.len().saturating_sub(max)..]
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::super::attachment::PortMapping;
    use super::*;

    #[test]
    fn stdin_gets_name_version_prev_result_and_declared_runtime_config() {
        let mut att = Attachment::new("sb", "/n");
        att.capabilities.port_mappings.push(PortMapping {
            host_port: 80,
            container_port: 8080,
            protocol: "tcp".into(),
            host_ip: String::new(),
        });
        let plugin = json!({"type": "portmap", "capabilities": {"portMappings": true},
            "snat": true, "runtimeConfig": {"stale": 1}});
        let prev = json!({"cniVersion": "1.0.0", "ips": []});
        let got = plugin_stdin("net", "1.0.0", &plugin, Some(&prev), &att);
        assert_eq!(
            got,
            json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true,
                "name": "net", "cniVersion": "1.0.0", "prevResult": prev,
                "runtimeConfig": {"portMappings": [
                    {"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}]}})
        );
        let got = plugin_stdin("net", "1.0.0", &json!({"type": "bridge"}), None, &att);
        assert_eq!(
            got,
            json!({"type": "bridge", "name": "net", "cniVersion": "1.0.0"})
        );
    }

    #[test]
    fn printed_error_is_used_else_stderr() {
        let e = failure(
            "net",
            "bridge",
            Command::Add,
            Path::new("/bin/bridge"),
            exit_status(1),
            br#"{"code": 7, "msg": "failed to allocate", "details": "range full"}"#,
            b"",
        );
        let s = e.to_string();
        assert!(s.contains("plugin bridge of network net"), "{s}");
        assert!(s.contains("failed to allocate"), "{s}");
        assert!(s.contains("code 7"), "{s}");
        assert!(s.contains("range full"), "{s}");
        let e = failure(
            "net",
            "bridge",
            Command::Del,
            Path::new("/bin/bridge"),
            exit_status(2),
            b"",
            b"panic: boom\n",
        );
        assert!(e.to_string().contains("panic: boom"), "{e}");
    }

    fn exit_status(code: i32) -> std::process::ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        std::process::ExitStatus::from_raw(code << 8)
    }

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn plugin_sees_the_cni_environment_and_stdin() {
        let bins = tempfile::tempdir().unwrap();
        let out = bins.path().join("seen");
        script(
            bins.path(),
            "echoer",
            &format!(
                "env | grep ^CNI_ | sort > {0}; cat >> {0}; echo '{{\"cniVersion\":\"1.0.0\"}}'",
                out.display()
            ),
        );
        let dirs = vec![PathBuf::from("/nonexistent"), bins.path().to_path_buf()];
        let inv = Invoker {
            bin_dirs: &dirs,
            timeout: Duration::from_secs(10),
        };
        let mut att = Attachment::new("sb1", "/run/ns/sb1").with_pod("ns", "pod", "uid");
        att.ifname = "eth1".into();
        let stdin = plugin_stdin("net", "1.0.0", &json!({"type": "echoer"}), None, &att);
        let got = inv.invoke("net", Command::Add, &stdin, &att).await.unwrap();
        assert_eq!(got, Some(json!({"cniVersion": "1.0.0"})));
        let seen = std::fs::read_to_string(&out).unwrap();
        let want = format!(
            "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;\
             K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=uid\n\
             CNI_COMMAND=ADD\nCNI_CONTAINERID=sb1\nCNI_IFNAME=eth1\nCNI_NETNS=/run/ns/sb1\n\
             CNI_PATH=/nonexistent:{}\n{}",
            bins.path().display(),
            serde_json::to_string(&stdin).unwrap()
        );
        assert_eq!(seen, want);
    }

    #[tokio::test]
    async fn slow_plugin_times_out_and_missing_plugin_is_named() {
        let bins = tempfile::tempdir().unwrap();
        script(bins.path(), "sleeper", "exec sleep 30");
        let dirs = vec![bins.path().to_path_buf()];
        let inv = Invoker {
            bin_dirs: &dirs,
            timeout: Duration::from_millis(200),
        };
        let att = Attachment::new("sb1", "/n");
        let start = std::time::Instant::now();
        let err = inv
            .invoke("net", Command::Del, &json!({"type": "sleeper"}), &att)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
        let err = inv
            .invoke("net", Command::Add, &json!({"type": "nope"}), &att)
            .await
            .unwrap_err();
        let s = err.to_string();
        assert!(s.contains("plugin nope of network net not found in"), "{s}");
    }
}
