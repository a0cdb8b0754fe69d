//! Mounts and device nodes of a container: the runtime's defaults, the pod's shared files,
//! then what the kubelet asks for.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use berth_api::runtime::v1::{Device, Mount as CriMount, MountPropagation};
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    Mount, MountBuilder,
};

use super::{Error, PodFiles, Result, build_err};

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(build_err("mounts"))
}

fn bind(dest: &str, source: &Path, options: Vec<String>) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .map_err(build_err("mounts"))
}

/// The kernel filesystems every process gets: /proc, /dev, /dev/pts, /dev/mqueue, /sys.
fn base_mounts(sys_rw: bool) -> Result<Vec<Mount>> {
    let sys_mode = if sys_rw { "rw" } else { "ro" };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        )?,
    ])
}

/// A private /dev/shm of 64 MiB.
fn private_shm() -> Result<Mount> {
    mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    )
}

/// The pod infra process's mounts.
pub fn pod_mounts() -> Result<Vec<Mount>> {
    let mut m = base_mounts(false)?;
    m.insert(3, private_shm()?);
    Ok(m)
}

/// A container's default mounts and the pod's files (before the kubelet's mounts).
pub fn container_defaults(
    files: &PodFiles,
    privileged: bool,
    readonly_rootfs: bool,
) -> Result<Vec<Mount>> {
    let mut m = base_mounts(privileged)?;
    m.push(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &[
            "nosuid",
            "noexec",
            "nodev",
            "relatime",
            if privileged { "rw" } else { "ro" },
        ],
    )?);
    match &files.shm {
        Some(shm) => m.push(bind(
            "/dev/shm",
            shm,
            vec!["rbind".into(), "rprivate".into(), "rw".into()],
        )?),
        None => m.push(private_shm()?),
    }
    let mode = if readonly_rootfs { "ro" } else { "rw" };
    for (dest, src) in [
        ("/etc/hostname", &files.hostname),
        ("/etc/hosts", &files.hosts),
        ("/etc/resolv.conf", &files.resolv_conf),
    ] {
        if let Some(src) = src {
            m.push(bind(
                dest,
                src,
                vec!["rbind".into(), "rprivate".into(), mode.into()],
            )?);
        }
    }
    Ok(m)
}

/// `/a//b/./c/` as `/a/b/c`, for comparing destinations.
fn clean(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// How the kubelet's mounts change the root's propagation (containerd's rule): rshared when
/// any mount is bidirectional, else rslave when any receives host mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum RootPropagation {
    #[default]
    Private,
    Slave,
    Shared,
}

impl RootPropagation {
    pub fn as_option(self) -> Option<&'static str> {
        match self {
            RootPropagation::Private => None,
            RootPropagation::Slave => Some("rslave"),
            RootPropagation::Shared => Some("rshared"),
        }
    }
}

/// Adds the kubelet's mounts to `mounts`, each replacing an earlier mount at the same place.
/// Returns the propagation the rootfs needs.
pub fn add_cri_mounts(
    mounts: &mut Vec<Mount>,
    cri: &[CriMount],
    container: &str,
) -> Result<RootPropagation> {
    let mut root = RootPropagation::Private;
    for m in cri {
        let dest = Path::new(&m.container_path);
        if !dest.is_absolute() || dest.components().any(|c| c == Component::ParentDir) {
            return Err(Error::InvalidArgument(format!(
                "container {container}: mount destination {:?} must be an absolute path without \"..\"",
                m.container_path
            )));
        }
        if m.host_path.is_empty() && m.image.as_ref().is_some_and(|i| !i.image.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "container {container}: image volume at {} is not supported",
                m.container_path
            )));
        }
        let src = Path::new(&m.host_path);
        if !src.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "container {container}: mount source {:?} is not an absolute path",
                m.host_path
            )));
        }
        // The kubelet's paths may be symlinks (e.g. /var/lib/kubelet on another disk).
        let src = std::fs::canonicalize(src).map_err(|e| {
            Error::InvalidArgument(format!(
                "container {container}: mount source {}: {e}",
                m.host_path
            ))
        })?;
        let propagation = match m.propagation() {
            MountPropagation::PropagationPrivate => "rprivate",
            MountPropagation::PropagationHostToContainer => {
                root = root.max(RootPropagation::Slave);
                "rslave"
            }
            MountPropagation::PropagationBidirectional => {
                root = root.max(RootPropagation::Shared);
                "rshared"
            }
        };
        if m.recursive_read_only {
            if !m.readonly {
                return Err(Error::InvalidArgument(format!(
                    "container {container}: mount {}: recursive_read_only needs readonly",
                    m.container_path
                )));
            }
            if m.propagation() != MountPropagation::PropagationPrivate {
                return Err(Error::InvalidArgument(format!(
                    "container {container}: mount {}: recursive_read_only needs private propagation",
                    m.container_path
                )));
            }
        }
        let mut options = vec!["rbind".to_owned(), propagation.to_owned()];
        options.push(if m.readonly { "ro" } else { "rw" }.to_owned());
        if m.recursive_read_only {
            options.push("rro".to_owned());
        }
        let dest_clean = clean(dest);
        mounts.retain(|old| clean(old.destination()) != dest_clean);
        mounts.push(bind(&dest_clean.to_string_lossy(), &src, options)?);
    }
    Ok(root)
}

/// The device nodes the kubelet asks for, with the cgroup rules allowing them.
pub fn cri_devices(
    devices: &[Device],
    container: &str,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in devices {
        let host = Path::new(&d.host_path);
        if !host.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "container {container}: device {:?} is not an absolute path",
                d.host_path
            )));
        }
        let dest = if d.container_path.is_empty() {
            &d.host_path
        } else {
            &d.container_path
        };
        if !Path::new(dest).is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "container {container}: device destination {dest:?} is not an absolute path"
            )));
        }
        let access = if d.permissions.is_empty() {
            "rwm"
        } else {
            &d.permissions
        };
        if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(Error::InvalidArgument(format!(
                "container {container}: device {}: permissions {access:?} are not a subset of \"rwm\"",
                d.host_path
            )));
        }
        let meta = std::fs::metadata(host).map_err(|e| {
            Error::InvalidArgument(format!(
                "container {container}: device {}: {e}",
                d.host_path
            ))
        })?;
        let typ = if meta.file_type().is_char_device() {
            LinuxDeviceType::C
        } else if meta.file_type().is_block_device() {
            LinuxDeviceType::B
        } else {
            return Err(Error::InvalidArgument(format!(
                "container {container}: device {} is not a device node",
                d.host_path
            )));
        };
        let rdev = meta.rdev();
        let (major, minor) = (
            i64::from(rustix::fs::major(rdev)),
            i64::from(rustix::fs::minor(rdev)),
        );
        nodes.push(
            LinuxDeviceBuilder::default()
                .path(dest)
                .typ(typ)
                .major(major)
                .minor(minor)
                .file_mode(meta.mode() & 0o777)
                .uid(meta.uid())
                .gid(meta.gid())
                .build()
                .map_err(build_err("linux.devices"))?,
        );
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(typ)
                .major(major)
                .minor(minor)
                .access(access)
                .build()
                .map_err(build_err("linux.resources.devices"))?,
        );
    }
    Ok((nodes, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dests(m: &[Mount]) -> Vec<String> {
        m.iter()
            .map(|m| m.destination().display().to_string())
            .collect()
    }

    fn find<'a>(m: &'a [Mount], d: &str) -> &'a Mount {
        m.iter()
            .find(|m| m.destination() == Path::new(d))
            .unwrap_or_else(|| panic!("no {d} in {:?}", dests(m)))
    }

    fn opts(m: &Mount) -> Vec<String> {
        m.options().clone().unwrap_or_default()
    }

    #[test]
    fn defaults_with_pod_files() {
        let files = PodFiles {
            hostname: Some("/run/pod/hostname".into()),
            hosts: Some("/run/pod/hosts".into()),
            resolv_conf: Some("/run/pod/resolv.conf".into()),
            shm: Some("/run/pod/shm".into()),
        };
        let m = container_defaults(&files, false, true).unwrap();
        assert_eq!(
            dests(&m),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/shm",
                "/etc/hostname",
                "/etc/hosts",
                "/etc/resolv.conf"
            ]
        );
        assert!(opts(find(&m, "/sys")).contains(&"ro".into()));
        assert!(opts(find(&m, "/sys/fs/cgroup")).contains(&"ro".into()));
        let shm = find(&m, "/dev/shm");
        assert_eq!(shm.typ().as_deref(), Some("bind"));
        assert_eq!(shm.source().as_deref(), Some(Path::new("/run/pod/shm")));
        assert!(opts(find(&m, "/etc/hosts")).contains(&"ro".into()));
    }

    #[test]
    fn host_ipc_gets_private_shm_and_privileged_rw_sys() {
        let m = container_defaults(&PodFiles::default(), true, false).unwrap();
        let shm = find(&m, "/dev/shm");
        assert_eq!(shm.typ().as_deref(), Some("tmpfs"));
        assert!(opts(shm).contains(&"size=65536k".into()));
        assert!(opts(find(&m, "/sys")).contains(&"rw".into()));
        assert!(!m.iter().any(|m| m.destination() == Path::new("/etc/hosts")));
    }

    fn cri_mount(dest: &str, src: &str) -> CriMount {
        CriMount {
            container_path: dest.into(),
            host_path: src.into(),
            ..Default::default()
        }
    }

    #[test]
    fn cri_mounts_replace_defaults_and_map_options() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().display().to_string();
        let files = PodFiles {
            hosts: Some("/run/pod/hosts".into()),
            ..Default::default()
        };
        let mut m = container_defaults(&files, false, false).unwrap();
        let n = m.len();
        let mut hosts = cri_mount("/etc/hosts", &src);
        hosts.readonly = true;
        let mut data = cri_mount("/data/", &src);
        data.propagation = MountPropagation::PropagationHostToContainer as i32;
        let mut shared = cri_mount("/shared", &src);
        shared.propagation = MountPropagation::PropagationBidirectional as i32;
        let mut rro = cri_mount("/rro", &src);
        rro.readonly = true;
        rro.recursive_read_only = true;
        let root = add_cri_mounts(&mut m, &[hosts, data, shared, rro], "web").unwrap();
        assert_eq!(root, RootPropagation::Shared);
        assert_eq!(m.len(), n + 3, "/etc/hosts replaced: {:?}", dests(&m));
        let h = find(&m, "/etc/hosts");
        assert_eq!(h.source().as_deref(), Some(dir.path()));
        assert_eq!(opts(h), ["rbind", "rprivate", "ro"]);
        assert_eq!(opts(find(&m, "/data")), ["rbind", "rslave", "rw"]);
        assert_eq!(opts(find(&m, "/shared")), ["rbind", "rshared", "rw"]);
        assert_eq!(opts(find(&m, "/rro")), ["rbind", "rprivate", "ro", "rro"]);
    }

    #[test]
    fn slave_only_gives_rslave_root() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = cri_mount("/x", &dir.path().display().to_string());
        m.propagation = MountPropagation::PropagationHostToContainer as i32;
        let root = add_cri_mounts(&mut vec![], &[m], "web").unwrap();
        assert_eq!(root.as_option(), Some("rslave"));
    }

    #[test]
    fn bad_cri_mounts_named() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().display().to_string();
        let missing = dir.path().join("missing").display().to_string();
        for (m, want) in [
            (cri_mount("/x", "relative/dir"), "relative/dir"),
            (cri_mount("/x", &missing), missing.as_str()),
            (cri_mount("x", &src), "\"x\""),
            (cri_mount("/a/../b", &src), "/a/../b"),
        ] {
            let e = add_cri_mounts(&mut vec![], &[m], "web")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("web"), "{e}");
        }
        let mut rro = cri_mount("/x", &src);
        rro.recursive_read_only = true;
        assert!(add_cri_mounts(&mut vec![], &[rro], "web").is_err());
    }

    #[test]
    fn devices_stat_host_nodes() {
        let d = Device {
            container_path: "/dev/mynull".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        };
        let (nodes, rules) = cri_devices(&[d], "web").unwrap();
        assert_eq!(nodes[0].path(), Path::new("/dev/mynull"));
        assert_eq!(nodes[0].typ(), LinuxDeviceType::C);
        assert_eq!((nodes[0].major(), nodes[0].minor()), (1, 3));
        assert!(rules[0].allow());
        assert_eq!(rules[0].access().as_deref(), Some("rw"));
        assert_eq!((rules[0].major(), rules[0].minor()), (Some(1), Some(3)));
    }

    #[test]
    fn bad_devices_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        for (host, perms, want) in [
            (file.display().to_string(), "", "is not a device node"),
            ("/dev/nope-nope".to_owned(), "", "/dev/nope-nope"),
            ("dev/null".to_owned(), "", "dev/null"),
            ("/dev/null".to_owned(), "rwx", "rwx"),
        ] {
            let d = Device {
                container_path: "/dev/x".into(),
                host_path: host,
                permissions: perms.into(),
            };
            let e = cri_devices(&[d], "web").unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
