//! The files a pod writes once for all its containers: hostname, hosts, resolv.conf, and
//! the pod's /dev/shm (a tmpfs shared by its containers when they share IPC).

use std::fs;
use std::path::{Path, PathBuf};

use berth_api::runtime::v1::{DnsConfig, PodSandboxConfig};
use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};

use crate::spec::PodFiles;
use crate::{Error, Result};

const DEFAULT_HOSTS: &str = "\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
";

/// Writes the pod files into `dir` (which exists); mounts the shm tmpfs when `shared_ipc`.
pub fn write(
    dir: &Path,
    config: &PodSandboxConfig,
    host_network: bool,
    shared_ipc: bool,
) -> Result<PodFiles> {
    let hostname = if host_network || config.hostname.is_empty() {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    } else {
        config.hostname.clone()
    };
    let hostname_path = dir.join("hostname");
    write_file(&hostname_path, format!("{hostname}\n").as_bytes())?;

    let hosts_path = dir.join("hosts");
    let hosts = if host_network {
        fs::read("/etc/hosts").unwrap_or_else(|_| DEFAULT_HOSTS.as_bytes().to_vec())
    } else {
        DEFAULT_HOSTS.as_bytes().to_vec()
    };
    write_file(&hosts_path, &hosts)?;

    let resolv_path = dir.join("resolv.conf");
    let resolv = match &config.dns_config {
        Some(dns)
            if !dns.servers.is_empty() || !dns.searches.is_empty() || !dns.options.is_empty() =>
        {
            resolv_conf(dns).into_bytes()
        }
        _ => fs::read("/etc/resolv.conf").unwrap_or_default(),
    };
    write_file(&resolv_path, &resolv)?;

    let shm = if shared_ipc {
        let shm = dir.join("shm");
        fs::create_dir_all(&shm).map_err(Error::io("create", &shm))?;
        // 64 MiB, as containerd and docker size a pod's /dev/shm.
        mount(
            "shm",
            &shm,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"mode=1777,size=65536k",
        )
        .map_err(|e| Error::io("mount tmpfs on", &shm)(e.into()))?;
        Some(shm)
    } else {
        None
    };
    Ok(PodFiles {
        hostname: Some(hostname_path),
        hosts: Some(hosts_path),
        resolv_conf: Some(resolv_path),
        shm,
    })
}

/// The PodFiles of a pod whose files exist already (recovery, container create).
pub fn existing(dir: &Path) -> PodFiles {
    let some = |p: PathBuf| p.exists().then_some(p);
    PodFiles {
        hostname: some(dir.join("hostname")),
        hosts: some(dir.join("hosts")),
        resolv_conf: some(dir.join("resolv.conf")),
        shm: some(dir.join("shm")).filter(|p| is_mountpoint(p)),
    }
}

/// Unmounts the pod's shm (if mounted) and removes the pod dir. Idempotent.
pub fn remove(dir: &Path) -> Result<()> {
    let shm = dir.join("shm");
    match unmount(&shm, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(Error::io("unmount", &shm)(e.into())),
    }
    crate::remove_dir(dir)
}

fn resolv_conf(dns: &DnsConfig) -> String {
    let mut s = String::new();
    for server in &dns.servers {
        s.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.searches.is_empty() {
        s.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    if !dns.options.is_empty() {
        s.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    s
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    fs::write(path, data).map_err(Error::io("write", path))
}

/// True when `path` is a mount point (its device differs from its parent's).
pub fn is_mountpoint(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Some(parent)) = (fs::symlink_metadata(path), path.parent()) else {
        return false;
    };
    fs::metadata(parent).is_ok_and(|p| p.dev() != m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_follows_the_dns_config() {
        let dns = DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec![
                "default.svc.cluster.local".into(),
                "svc.cluster.local".into(),
            ],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n"
        );
    }

    #[test]
    fn files_are_written_without_shm() {
        let dir = tempfile::tempdir().unwrap();
        let config = PodSandboxConfig {
            hostname: "web-0".into(),
            ..Default::default()
        };
        let files = write(dir.path(), &config, false, false).unwrap();
        assert_eq!(
            fs::read_to_string(files.hostname.unwrap()).unwrap(),
            "web-0\n"
        );
        assert!(
            fs::read_to_string(files.hosts.unwrap())
                .unwrap()
                .contains("localhost")
        );
        assert!(files.shm.is_none());
        remove(dir.path()).unwrap();
        assert!(!dir.path().exists());
    }
}
