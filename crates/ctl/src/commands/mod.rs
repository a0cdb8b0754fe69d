//! One file per command, named as crictl names it. Each has an `Args` (its flags) and a
//! `run`; what several share lives here.

pub mod attach;
pub mod completion;
pub mod create;
pub mod events;
pub mod exec;
pub mod imagefsinfo;
pub mod images;
pub mod info;
pub mod inspect;
pub mod inspecti;
pub mod inspectp;
pub mod logs;
pub mod pods;
pub mod port_forward;
pub mod ps;
pub mod pull;
pub mod rm;
pub mod rmi;
pub mod rmp;
pub mod run;
pub mod runp;
pub mod start;
pub mod stats;
pub mod statsp;
pub mod stop;
pub mod stopp;
pub mod update;
pub mod version;

use std::collections::HashMap;
use std::path::Path;

use berth_api::runtime::v1::{
    ContainerState, ListContainersRequest, ListPodSandboxRequest, PodSandboxState,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::client::Ctx;
use crate::error::Error;

/// The table word for a container state, as crictl prints it.
pub fn container_state_word(state: i32) -> &'static str {
    match ContainerState::try_from(state) {
        Ok(ContainerState::ContainerCreated) => "Created",
        Ok(ContainerState::ContainerRunning) => "Running",
        Ok(ContainerState::ContainerExited) => "Exited",
        _ => "Unknown",
    }
}

/// The table word for a pod state.
pub fn pod_state_word(state: i32) -> &'static str {
    match PodSandboxState::try_from(state) {
        Ok(PodSandboxState::SandboxReady) => "Ready",
        _ => "NotReady",
    }
}

/// `--state` for containers: crictl's words, case-insensitive, or the enum names.
pub fn parse_container_state(s: &str) -> Result<ContainerState, Error> {
    let lower = s.to_ascii_lowercase();
    Ok(match lower.trim_start_matches("container_") {
        "created" => ContainerState::ContainerCreated,
        "running" => ContainerState::ContainerRunning,
        "exited" => ContainerState::ContainerExited,
        "unknown" => ContainerState::ContainerUnknown,
        _ => {
            return Err(Error::Usage(format!(
                "--state {s}: want created, running, exited or unknown"
            )));
        }
    })
}

/// `--state` for pods.
pub fn parse_pod_state(s: &str) -> Result<PodSandboxState, Error> {
    let lower = s.to_ascii_lowercase();
    Ok(match lower.trim_start_matches("sandbox_") {
        "ready" => PodSandboxState::SandboxReady,
        "notready" => PodSandboxState::SandboxNotready,
        _ => return Err(Error::Usage(format!("--state {s}: want ready or notready"))),
    })
}

/// `--label k=v` flags as a selector.
pub fn parse_labels(labels: &[String]) -> Result<HashMap<String, String>, Error> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::Usage(format!("--label {l:?}: want key=value"))),
        })
        .collect()
}

/// Reads a pod or container config: JSON, or YAML (the subset in [`crate::yaml`]), with
/// the proto field names crictl's sample configs use (`log_directory`).
pub fn load_config<T: DeserializeOwned>(path: &str) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_string(),
        source,
    })?;
    let parse_err = |message: String| Error::Parse {
        path: path.to_string(),
        message,
    };
    let ext = Path::new(path).extension().and_then(|e| e.to_str());
    let json_like = text.trim_start().starts_with('{') || ext == Some("json");
    if json_like {
        return serde_json::from_str(&text).map_err(|e| parse_err(e.to_string()));
    }
    let value = crate::yaml::parse(&text).map_err(parse_err)?;
    serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))
}

/// Full ids for what the user typed: an exact id, or a unique id prefix, among the
/// runtime's containers (crictl leaves prefixes to the runtime; not every runtime takes them).
pub async fn resolve_containers(ctx: &mut Ctx, given: &[String]) -> Result<Vec<String>, Error> {
    let mut rt = ctx.runtime().await?;
    let list = ctx
        .call(
            "ListContainers",
            rt.list_containers(ListContainersRequest::default()),
        )
        .await?;
    let ids: Vec<&str> = list.containers.iter().map(|c| c.id.as_str()).collect();
    Ok(given.iter().map(|g| resolve_one(&ids, g)).collect())
}

/// As [`resolve_containers`], for pods.
pub async fn resolve_pods(ctx: &mut Ctx, given: &[String]) -> Result<Vec<String>, Error> {
    let mut rt = ctx.runtime().await?;
    let list = ctx
        .call(
            "ListPodSandbox",
            rt.list_pod_sandbox(ListPodSandboxRequest::default()),
        )
        .await?;
    let ids: Vec<&str> = list.items.iter().map(|p| p.id.as_str()).collect();
    Ok(given.iter().map(|g| resolve_one(&ids, g)).collect())
}

/// The one id `given` is a prefix of, else `given` unchanged (the runtime then says
/// "not found" in its own words).
pub fn resolve_one(ids: &[&str], given: &str) -> String {
    if ids.contains(&given) || given.is_empty() {
        return given.to_string();
    }
    let mut hits = ids.iter().filter(|id| id.starts_with(given));
    match (hits.next(), hits.next()) {
        (Some(one), None) => one.to_string(),
        _ => given.to_string(),
    }
}

/// A CRI `info` map: values that are JSON are shown as JSON, others as strings.
pub fn info_value(info: &HashMap<String, String>) -> Value {
    let map = info
        .iter()
        .map(|(k, v)| {
            let parsed = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()));
            (k.clone(), parsed)
        })
        .collect();
    Value::Object(map)
}

/// The `info` of inspect, inspectp and inspecti as crictl shows it: runtimes put their
/// verbose record under the key "info", which is shown in place of the map; other keys
/// are shown beside it only when there is no such key.
pub fn verbose_info(info: &HashMap<String, String>) -> Value {
    let mut all = info_value(info);
    match all.get_mut("info").map(Value::take) {
        Some(inner) => inner,
        None => all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_prefixes_resolve_to_full_ids() {
        let ids = ["abc123", "abd456", "xyz"];
        assert_eq!(resolve_one(&ids, "abc"), "abc123");
        assert_eq!(resolve_one(&ids, "ab"), "ab");
        assert_eq!(resolve_one(&ids, "xyz"), "xyz");
        assert_eq!(resolve_one(&ids, "nope"), "nope");
    }

    #[test]
    fn states_parse_from_crictl_words() {
        assert_eq!(
            parse_container_state("Running").unwrap(),
            ContainerState::ContainerRunning
        );
        assert_eq!(
            parse_container_state("CONTAINER_EXITED").unwrap(),
            ContainerState::ContainerExited
        );
        assert_eq!(
            parse_pod_state("notready").unwrap(),
            PodSandboxState::SandboxNotready
        );
        assert!(parse_pod_state("gone").is_err());
    }

    #[test]
    fn labels_need_a_key_and_equals() {
        let l = parse_labels(&["app=web".into(), "empty=".into()]).unwrap();
        assert_eq!(l["app"], "web");
        assert_eq!(l["empty"], "");
        assert!(parse_labels(&["novalue".into()]).is_err());
    }

    #[test]
    fn verbose_info_unwraps_the_info_key() {
        let m: HashMap<String, String> = [("info".to_string(), r#"{"pid": 7}"#.to_string())].into();
        assert_eq!(verbose_info(&m), serde_json::json!({"pid": 7}));
        let m: HashMap<String, String> = [("other".to_string(), "x".to_string())].into();
        assert_eq!(verbose_info(&m), serde_json::json!({"other": "x"}));
    }

    #[test]
    fn yaml_and_json_configs_load_alike() {
        use berth_api::runtime::v1::PodSandboxConfig;
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("pod.yaml");
        std::fs::write(
            &yaml,
            "metadata:\n  name: web\n  uid: u1\nlog_directory: /tmp/l\nlabels:\n  app: web\nlinux:\n  security_context:\n    namespace_options: {pid: 1}\n",
        )
        .unwrap();
        let json = dir.path().join("pod.json");
        std::fs::write(
            &json,
            r#"{"metadata": {"name": "web", "uid": "u1"}, "log_directory": "/tmp/l",
               "labels": {"app": "web"},
               "linux": {"security_context": {"namespace_options": {"pid": 1}}}}"#,
        )
        .unwrap();
        let a: PodSandboxConfig = load_config(yaml.to_str().unwrap()).unwrap();
        let b: PodSandboxConfig = load_config(json.to_str().unwrap()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.metadata.unwrap().name, "web");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "metadata: [\n").unwrap();
        let err = load_config::<PodSandboxConfig>(bad.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().starts_with("parse "), "{err}");
    }
}
