//! The container's uid, gid and supplementary groups, from the CRI security context and the
//! image's `User`, looked up in the image's own /etc/passwd and /etc/group.
//!
//! Those files belong to the image, so they are opened with openat2(RESOLVE_IN_ROOT): a
//! symlink such as /etc/passwd -> /etc/shadow or -> ../../../host/file resolves inside the
//! rootfs, never on the host.

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::{User, UserBuilder};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::{Error, Result, build_err};

/// What the CRI and the image ask for.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserRequest<'a> {
    /// security_context.run_as_user.
    pub run_as_user: Option<i64>,
    /// security_context.run_as_username (empty: unset).
    pub run_as_username: &'a str,
    /// security_context.run_as_group: overrides the gid.
    pub run_as_group: Option<i64>,
    /// security_context.supplemental_groups: added to the groups.
    pub supplemental_groups: &'a [i64],
    /// SupplementalGroupsPolicy Strict: the image's /etc/group memberships are not added.
    pub strict_groups: bool,
    /// The image config's `User`: "uid", "uid:gid", "name", "name:group".
    pub image_user: Option<&'a str>,
}

/// One /etc/passwd line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// One /etc/group line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.trim().parse().ok()?,
                gid: f.get(3)?.trim().parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads `rel` (relative, e.g. "etc/passwd") inside `rootfs`, every symlink resolved as if
/// `rootfs` were `/`. None when the file (or a directory on the way) does not exist.
pub fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>> {
    let fail = |e: Errno| Error::Build(format!("read {rel} in rootfs {}: {e}", rootfs.display()));
    let root = rustix::fs::open(
        rootfs,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail)?;
    let fd = match rustix::fs::openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    let stat = rustix::fs::fstat(&fd).map_err(fail)?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Error::Build(format!(
            "read {rel} in rootfs {}: not a regular file",
            rootfs.display()
        )));
    }
    let mut text = String::new();
    // A passwd file larger than this is not one.
    std::fs::File::from(fd)
        .take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| Error::Build(format!("read {rel} in rootfs {}: {e}", rootfs.display())))?;
    Ok(Some(text))
}

fn id(value: i64, field: &str, container: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        Error::InvalidArgument(format!(
            "container {container}: {field} {value} is not a valid id"
        ))
    })
}

/// A user or group as written: a number or a name.
enum Who<'a> {
    Id(u32),
    Name(&'a str),
}

fn who(s: &str) -> Who<'_> {
    match s.parse::<u32>() {
        Ok(n) => Who::Id(n),
        Err(_) => Who::Name(s),
    }
}

/// The process user of container `container` (named in errors).
pub fn resolve_user(rootfs: &Path, container: &str, req: &UserRequest<'_>) -> Result<User> {
    let (user, group): (Who<'_>, Option<Who<'_>>) = if let Some(uid) = req.run_as_user {
        (Who::Id(id(uid, "run_as_user", container)?), None)
    } else if !req.run_as_username.is_empty() {
        (Who::Name(req.run_as_username), None)
    } else {
        match req.image_user.map(str::trim).filter(|u| !u.is_empty()) {
            None => (Who::Id(0), None),
            Some(spec) => {
                let (u, g) = match spec.split_once(':') {
                    Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
                    None => (spec, None),
                };
                let u = if u.is_empty() { Who::Id(0) } else { who(u) };
                (u, g.map(who))
            }
        }
    };

    let passwd = read_in_root(rootfs, "etc/passwd")?
        .map(|t| parse_passwd(&t))
        .unwrap_or_default();
    let (uid, mut gid, name) = match user {
        Who::Id(uid) => match passwd.iter().find(|e| e.uid == uid) {
            Some(e) => (uid, e.gid, Some(e.name.clone())),
            None => (uid, 0, None),
        },
        Who::Name(n) => match passwd.iter().find(|e| e.name == n) {
            Some(e) => (e.uid, e.gid, Some(e.name.clone())),
            None => {
                return Err(Error::InvalidArgument(format!(
                    "container {container}: user {n:?} not found in the image's /etc/passwd"
                )));
            }
        },
    };

    let needs_groups =
        matches!(group, Some(Who::Name(_))) || (!req.strict_groups && name.is_some());
    let groups = if needs_groups {
        read_in_root(rootfs, "etc/group")?
            .map(|t| parse_group(&t))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    match group {
        None => {}
        Some(Who::Id(g)) => gid = g,
        Some(Who::Name(g)) => match groups.iter().find(|e| e.name == g) {
            Some(e) => gid = e.gid,
            None => {
                return Err(Error::InvalidArgument(format!(
                    "container {container}: group {g:?} not found in the image's /etc/group"
                )));
            }
        },
    }
    if let Some(g) = req.run_as_group {
        gid = id(g, "run_as_group", container)?;
    }

    // The primary group first, then the image's memberships of the user (containerd forgot
    // these: CVE-2023-25173), then the CRI's supplemental groups.
    let mut additional = vec![gid];
    if !req.strict_groups {
        if let Some(name) = &name {
            for g in groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m == name))
            {
                if !additional.contains(&g.gid) {
                    additional.push(g.gid);
                }
            }
        }
    }
    for &g in req.supplemental_groups {
        let g = id(g, "supplemental_groups", container)?;
        if !additional.contains(&g) {
            additional.push(g);
        }
    }
    let mut b = UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .additional_gids(additional);
    if let Some(name) = name {
        b = b.username(name);
    }
    b.build().map_err(build_err("process.user"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        daemon:x:1:1::/:/sbin/nologin\n\
        app:x:1000:1000:app user:/home/app:/bin/sh\n\
        broken line\n";
    const GROUP: &str = "root:x:0:root\n\
        wheel:x:10:root,app\n\
        app:x:1000:\n\
        audio:x:29:daemon, app\n\
        video:x:44:other\n";

    fn rootfs(passwd: Option<&str>, group: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        if let Some(p) = passwd {
            std::fs::write(d.path().join("etc/passwd"), p).unwrap();
        }
        if let Some(g) = group {
            std::fs::write(d.path().join("etc/group"), g).unwrap();
        }
        d
    }

    fn resolve(root: &Path, req: UserRequest<'_>) -> Result<User> {
        resolve_user(root, "web", &req)
    }

    fn ids(u: &User) -> (u32, u32, Vec<u32>) {
        (
            u.uid(),
            u.gid(),
            u.additional_gids().clone().unwrap_or_default(),
        )
    }

    #[test]
    fn image_name_gets_passwd_ids_and_group_memberships_cve_2023_25173() {
        let d = rootfs(Some(PASSWD), Some(GROUP));
        let u = resolve(
            d.path(),
            UserRequest {
                image_user: Some("app"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ids(&u), (1000, 1000, vec![1000, 10, 29]));
        assert_eq!(u.username().as_deref(), Some("app"));
    }

    #[test]
    fn image_uid_gid_and_name_group_forms() {
        let d = rootfs(Some(PASSWD), Some(GROUP));
        let r = |s| {
            resolve(
                d.path(),
                UserRequest {
                    image_user: Some(s),
                    ..Default::default()
                },
            )
        };
        assert_eq!(ids(&r("1000").unwrap()), (1000, 1000, vec![1000, 10, 29]));
        assert_eq!(ids(&r("1000:44").unwrap()), (1000, 44, vec![44, 10, 29]));
        assert_eq!(ids(&r("app:video").unwrap()), (1000, 44, vec![44, 10, 29]));
        assert_eq!(ids(&r("4242").unwrap()), (4242, 0, vec![0]));
        assert_eq!(ids(&r("4242:7").unwrap()), (4242, 7, vec![7]));
        assert_eq!(ids(&r(":44").unwrap()).0, 0);
        let e = r("app:nogroup").unwrap_err().to_string();
        assert!(e.contains("nogroup") && e.contains("web"), "{e}");
    }

    #[test]
    fn default_is_root_with_roots_groups() {
        let d = rootfs(Some(PASSWD), Some(GROUP));
        let u = resolve(d.path(), UserRequest::default()).unwrap();
        assert_eq!(ids(&u), (0, 0, vec![0, 10]));
    }

    #[test]
    fn run_as_user_overrides_image_and_takes_passwd_gid() {
        let d = rootfs(Some(PASSWD), Some(GROUP));
        let u = resolve(
            d.path(),
            UserRequest {
                run_as_user: Some(1000),
                image_user: Some("daemon:1"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ids(&u), (1000, 1000, vec![1000, 10, 29]));
    }

    #[test]
    fn run_as_group_and_supplemental_groups() {
        let d = rootfs(Some(PASSWD), Some(GROUP));
        let u = resolve(
            d.path(),
            UserRequest {
                run_as_username: "app",
                run_as_group: Some(3000),
                supplemental_groups: &[4000, 10],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ids(&u), (1000, 3000, vec![3000, 10, 29, 4000]));
        let strict = resolve(
            d.path(),
            UserRequest {
                run_as_username: "app",
                supplemental_groups: &[4000],
                strict_groups: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ids(&strict), (1000, 1000, vec![1000, 4000]));
    }

    #[test]
    fn unknown_name_names_user_and_container() {
        let d = rootfs(Some(PASSWD), Some(GROUP));
        let e = resolve(
            d.path(),
            UserRequest {
                run_as_username: "nobody",
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)));
        let e = e.to_string();
        assert!(
            e.contains("\"nobody\"") && e.contains("container web"),
            "{e}"
        );
    }

    #[test]
    fn missing_files_fine_for_numeric_users() {
        let d = rootfs(None, None);
        let u = resolve(
            d.path(),
            UserRequest {
                run_as_user: Some(5),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ids(&u), (5, 0, vec![0]));
        let empty = tempfile::tempdir().unwrap();
        let u = resolve(
            empty.path(),
            UserRequest {
                image_user: Some("7:8"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ids(&u), (7, 8, vec![8]));
        assert!(
            resolve(
                empty.path(),
                UserRequest {
                    image_user: Some("app"),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn out_of_range_ids_refused() {
        let d = rootfs(None, None);
        let e = resolve(
            d.path(),
            UserRequest {
                run_as_user: Some(-1),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("run_as_user -1"), "{e}");
        assert!(
            resolve(
                d.path(),
                UserRequest {
                    supplemental_groups: &[1 << 40],
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn hostile_absolute_symlink_stays_inside_the_rootfs() {
        // /etc/passwd -> <a host file> must be looked up as <rootfs>/<that path>.
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("shadow");
        std::fs::write(&secret, "evil:x:0:0::/:/bin/sh\n").unwrap();
        let d = rootfs(None, None);
        symlink(&secret, d.path().join("etc/passwd")).unwrap();
        let e = resolve(
            d.path(),
            UserRequest {
                run_as_username: "evil",
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("\"evil\" not found"),
            "the host file was read: {e}"
        );
        // A numeric user still works: the escaping link just finds nothing.
        let u = resolve(
            d.path(),
            UserRequest {
                run_as_user: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(u.username(), &None);
    }

    #[test]
    fn relative_escape_and_dotdot_links_stay_inside() {
        let host = tempfile::tempdir().unwrap();
        let root = host.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(host.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        symlink("../../../../../../passwd", root.join("etc/passwd")).unwrap();
        assert!(
            resolve(
                &root,
                UserRequest {
                    run_as_username: "evil",
                    ..Default::default()
                }
            )
            .is_err()
        );
        // An absolute link to a file inside the image resolves against the rootfs.
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::fs::create_dir_all(root.join("usr/share")).unwrap();
        std::fs::write(root.join("usr/share/passwd"), PASSWD).unwrap();
        symlink("/usr/share/passwd", root.join("etc/passwd")).unwrap();
        let u = resolve(
            &root,
            UserRequest {
                run_as_username: "app",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(u.uid(), 1000);
    }

    #[test]
    fn passwd_that_is_not_a_file_refused() {
        let d = rootfs(None, None);
        std::fs::create_dir(d.path().join("etc/passwd")).unwrap();
        assert!(
            resolve(
                d.path(),
                UserRequest {
                    run_as_username: "x",
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
