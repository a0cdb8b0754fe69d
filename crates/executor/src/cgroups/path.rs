//! Mapping OCI `linux.cgroupsPath` to a cgroup path (absolute, from the hierarchy root).
//!
//! - absent or empty: like runc's cgroupfs driver, the container id taken as a relative path
//!   (so it lands in the calling process's own cgroup; runc 1.1 does the same);
//! - "/a/b": "/a/b";
//! - "a/b": relative to the calling process's own cgroup (read from /proc/self/cgroup). On pure
//!   v2 this is the *parent* of the caller's cgroup, as runc does there, because the caller's
//!   own cgroup holds processes and so cannot enable controllers for a child. On v1/hybrid,
//!   runc resolves per hierarchy; berth uses one path in every hierarchy, taken from the
//!   memory hierarchy's line (the one whose placement matters: these machines put every
//!   process in a memory cgroup of its own);
//! - "slice:prefix:name" (anything containing ':'), the systemd driver's form, laid out on
//!   cgroupfs the way systemd would: every dash in the slice opens a parent slice, and the unit
//!   is "<prefix>-<name>.scope" (or `name` itself when it ends in ".slice"). An empty slice is
//!   "system.slice", "-.slice" is the root slice.

use std::path::{Component, Path, PathBuf};

use super::{CgroupError, Result};

const PROC_SELF_CGROUP: &str = "/proc/self/cgroup";

/// Turns the OCI `linux.cgroupsPath` into the cgroup path. See the module documentation.
pub fn resolve_path(cgroups_path: Option<&str>, container_id: &str) -> Result<PathBuf> {
    let needs_own = match cgroups_path {
        None | Some("") => true,
        Some(p) => !p.contains(':') && !p.starts_with('/'),
    };
    let own = if needs_own {
        let content = std::fs::read_to_string(PROC_SELF_CGROUP).map_err(|e| CgroupError::Read {
            path: PROC_SELF_CGROUP.into(),
            source: e.into(),
        })?;
        own_cgroup(&content)?
    } else {
        PathBuf::from("/")
    };
    resolve_with(cgroups_path, container_id, &own)
}

/// `resolve_path` with the base for relative paths given (already adjusted for v2).
pub(crate) fn resolve_with(
    cgroups_path: Option<&str>,
    container_id: &str,
    own: &Path,
) -> Result<PathBuf> {
    let value = match cgroups_path {
        None | Some("") => {
            check_id(container_id)?;
            container_id
        }
        Some(p) => p,
    };
    let err = |reason: &str| CgroupError::Path {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if value.contains('\0') {
        return Err(err("contains a NUL byte"));
    }
    if value.contains(':') {
        return systemd_path(value);
    }
    let clean = clean(value).ok_or_else(|| err("'..' is not allowed"))?;
    if value.starts_with('/') {
        Ok(clean)
    } else {
        Ok(own.join(clean.strip_prefix("/").unwrap_or(&clean)))
    }
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(CgroupError::Path {
            value: id.to_string(),
            reason: "container id cannot name a cgroup".into(),
        });
    }
    Ok(())
}

/// "/" followed by the normal components of `p`; `None` when `p` has a ".." component.
fn clean(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return None,
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// The base for relative cgroup paths, from the content of /proc/self/cgroup.
pub(crate) fn own_cgroup(proc_self_cgroup: &str) -> Result<PathBuf> {
    let mut unified = None;
    let mut memory = None;
    let mut any_v1 = false;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if ctrls.is_empty() {
            unified = Some(path);
        } else {
            if !ctrls.starts_with("name=") {
                any_v1 = true;
            }
            if ctrls.split(',').any(|c| c == "memory") {
                memory = Some(path);
            }
        }
    }
    let bad = |reason: &str| CgroupError::Layout {
        reason: format!("{PROC_SELF_CGROUP}: {reason}"),
    };
    let own = if any_v1 {
        memory.ok_or_else(|| bad("no memory hierarchy line"))?
    } else {
        unified.ok_or_else(|| bad("no cgroup line"))?
    };
    // a cgroup outside our namespace's root reads as "/../x": treat it as the root
    let mut own = clean(own).unwrap_or_else(|| PathBuf::from("/"));
    if !any_v1 {
        if let Some(parent) = own.parent() {
            own = parent.to_path_buf();
        }
    }
    Ok(own)
}

/// Lays out "slice:prefix:name" the way systemd places the unit on cgroupfs.
fn systemd_path(value: &str) -> Result<PathBuf> {
    let err = |reason: &str| CgroupError::Path {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = value.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(err("systemd form must be \"slice:prefix:name\""));
    };
    if parts.iter().any(|p| p.contains('/')) {
        return Err(err("systemd form cannot contain '/'"));
    }
    if name.is_empty() {
        return Err(err("systemd unit name is empty"));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut path = PathBuf::from("/");
    if slice != "-.slice" {
        let stem = slice
            .strip_suffix(".slice")
            .ok_or_else(|| err("slice must end in \".slice\""))?;
        if stem.is_empty()
            || stem.starts_with('-')
            || stem.ends_with('-')
            || stem.contains("--")
            || stem == "."
            || stem == ".."
        {
            return Err(err("malformed slice name"));
        }
        // "a-b-c.slice" lives in a.slice/a-b.slice/a-b-c.slice
        let mut acc = String::new();
        for (i, piece) in stem.split('-').enumerate() {
            if i > 0 {
                acc.push('-');
            }
            acc.push_str(piece);
            path.push(format!("{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if unit == ".scope" || unit.starts_with('.') {
        return Err(err("malformed unit name"));
    }
    path.push(unit);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: Option<&str>) -> Result<PathBuf> {
        resolve_with(p, "abc", Path::new("/process_api/x"))
    }

    #[test]
    fn absolute_paths_are_kept_and_cleaned() {
        assert_eq!(r(Some("/a/b")).unwrap(), PathBuf::from("/a/b"));
        assert_eq!(r(Some("//a/./b/")).unwrap(), PathBuf::from("/a/b"));
        assert_eq!(
            r(Some("/kubepods/burstable/pod1/abc")).unwrap(),
            PathBuf::from("/kubepods/burstable/pod1/abc")
        );
    }

    #[test]
    fn relative_and_absent_paths_are_under_own_cgroup() {
        assert_eq!(r(Some("a/b")).unwrap(), PathBuf::from("/process_api/x/a/b"));
        assert_eq!(r(None).unwrap(), PathBuf::from("/process_api/x/abc"));
        assert_eq!(r(Some("")).unwrap(), PathBuf::from("/process_api/x/abc"));
    }

    #[test]
    fn dotdot_nul_and_bad_ids_are_rejected_naming_the_value() {
        for bad in ["/a/../b", "../x", "a/..", "/a\0b"] {
            let e = r(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(resolve_with(None, "a/b", Path::new("/")).is_err());
        assert!(resolve_with(None, "..", Path::new("/")).is_err());
    }

    #[test]
    fn systemd_form_maps_like_systemd() {
        assert_eq!(
            r(Some("kubepods-burstable-pod1.slice:cri-containerd:abc")).unwrap(),
            PathBuf::from(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"
            )
        );
        assert_eq!(
            r(Some(":berth:abc")).unwrap(),
            PathBuf::from("/system.slice/berth-abc.scope")
        );
        assert_eq!(
            r(Some("-.slice::abc")).unwrap(),
            PathBuf::from("/abc.scope")
        );
        assert_eq!(
            r(Some("user.slice:x:my.slice")).unwrap(),
            PathBuf::from("/user.slice/my.slice")
        );
    }

    #[test]
    fn malformed_systemd_forms_are_rejected() {
        for bad in [
            "a.slice:b",
            "a.slice:b:c:d",
            "a:b:c",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "a.slice:p:",
            "a/b.slice:p:n",
            "a.slice:p:n/x",
        ] {
            let e = r(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn own_cgroup_uses_memory_line_on_v1_and_parent_on_v2() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/e21\n1:cpu:/\n0::/\n";
        assert_eq!(
            own_cgroup(hybrid).unwrap(),
            PathBuf::from("/process_api/e21")
        );
        let v2 = "0::/user.slice/session-1.scope\n";
        assert_eq!(own_cgroup(v2).unwrap(), PathBuf::from("/user.slice"));
        assert_eq!(own_cgroup("0::/\n").unwrap(), PathBuf::from("/"));
    }
}
