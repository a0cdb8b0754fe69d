//! Pieces shared by the pod and container specs: an empty spec to fill, namespaces,
//! capability-free process defaults.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    Linux, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, Process, Root, RootBuilder,
    Spec,
};

use super::{Namespace, Namespaces, Result, build_err};

/// The OCI runtime spec version berth writes.
pub const OCI_VERSION: &str = "1.2.0";

/// PATH when neither the image nor the CRI sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A spec with nothing set (oci-spec's `Default` fills in youki's example values).
pub fn blank_spec() -> Spec {
    let mut s = Spec::default();
    s.set_version(OCI_VERSION.to_owned());
    s.set_root(None);
    s.set_mounts(None);
    s.set_process(None);
    s.set_hostname(None);
    s.set_domainname(None);
    s.set_hooks(None);
    s.set_annotations(None);
    s.set_linux(None);
    s
}

pub fn blank_linux() -> Linux {
    let mut l = Linux::default();
    l.set_resources(None);
    l.set_namespaces(None);
    l.set_masked_paths(None);
    l.set_readonly_paths(None);
    l
}

pub fn blank_process() -> Process {
    let mut p = Process::default();
    p.set_terminal(None);
    p.set_env(None);
    p.set_args(None);
    p.set_capabilities(None);
    p.set_rlimits(None);
    p.set_no_new_privileges(None);
    p
}

pub fn root(path: &Path, readonly: bool) -> Result<Root> {
    RootBuilder::default()
        .path(path)
        .readonly(readonly)
        .build()
        .map_err(build_err("root"))
}

fn entry(typ: LinuxNamespaceType, ns: &Namespace) -> Result<Option<LinuxNamespace>> {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    let b = match ns {
        Namespace::Host => return Ok(None),
        Namespace::New => b,
        Namespace::Join(p) => b.path(p.clone()),
    };
    b.build().map(Some).map_err(build_err("linux.namespaces"))
}

/// The namespace entries: the pod's choices, plus a new mount namespace always.
pub fn namespaces(ns: &Namespaces) -> Result<Vec<LinuxNamespace>> {
    let mut out = vec![
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Mount)
            .build()
            .map_err(build_err("linux.namespaces"))?,
    ];
    for (typ, n) in [
        (LinuxNamespaceType::Network, &ns.network),
        (LinuxNamespaceType::Ipc, &ns.ipc),
        (LinuxNamespaceType::Uts, &ns.uts),
        (LinuxNamespaceType::Pid, &ns.pid),
    ] {
        out.extend(entry(typ, n)?);
    }
    Ok(out)
}

/// `KEY=VALUE` list with later entries replacing earlier ones of the same key, in place.
#[derive(Debug, Default)]
pub struct EnvList {
    vars: Vec<(String, String)>,
}

impl EnvList {
    pub fn set(&mut self, key: &str, value: &str) {
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.vars.push((key.to_owned(), value.to_owned())),
        }
    }

    /// `KEY=VALUE` (or a bare `KEY`, kept with an empty value as Docker does).
    pub fn set_pair(&mut self, pair: &str) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !k.is_empty() {
            self.set(k, v);
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.vars
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// Annotations as containerd's CRI plugin writes them.
pub fn annotations(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_map_host_new_join() {
        let ns = Namespaces {
            network: Namespace::Join("/run/netns/x".into()),
            ipc: Namespace::New,
            uts: Namespace::Host,
            pid: Namespace::New,
        };
        let v = namespaces(&ns).unwrap();
        let types: Vec<_> = v.iter().map(|n| n.typ()).collect();
        assert_eq!(
            types,
            [
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Pid
            ]
        );
        assert_eq!(v[1].path().as_deref(), Some(Path::new("/run/netns/x")));
        assert!(v[2].path().is_none());
    }

    #[test]
    fn env_later_replaces_in_place() {
        let mut e = EnvList::default();
        e.set_pair("A=1");
        e.set_pair("B=x=y");
        e.set_pair("A=2");
        e.set_pair("C");
        e.set_pair("=bad");
        assert_eq!(e.into_vec(), ["A=2", "B=x=y", "C="]);
    }
}
