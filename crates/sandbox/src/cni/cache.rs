//! The result cache: what a successful ADD did, so that DEL and CHECK can replay it.
//!
//! One JSON file per attachment, `<cache dir>/<network>-<container id>-<ifname>.json`,
//! holding a versioned [`Record`]: the network list exactly as it was run, the attachment
//! (args and runtime config) and the final result. It is written atomically (temp file,
//! fsync, rename, fsync of the dir) after the ADD succeeded and removed after the DEL
//! succeeded. DEL and CHECK find it by container id and interface name, so neither a
//! changed conf dir nor a berthd restart changes what DEL undoes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::attachment::Attachment;
use super::{Error, Result};

/// The record version this code writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// One cached attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub version: u32,
    pub network_name: String,
    /// The file the network was read from when ADD ran.
    pub config_file: PathBuf,
    /// The network list as run: `{cniVersion, name, disableCheck?, plugins}`.
    pub network: Value,
    pub attachment: Attachment,
    /// The final ADD result, as the last plugin printed it.
    pub result: Value,
}

/// The cache file of one attachment.
pub fn path(dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir.join(format!("{network}-{container_id}-{ifname}.json"))
}

/// Writes `record` to `path` atomically.
pub fn write(path: &Path, record: &Record) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::Cache {
        path: path.to_path_buf(),
        reason: "no parent dir".into(),
    })?;
    std::fs::create_dir_all(dir).map_err(Error::io("create cni cache dir", dir))?;
    let data = serde_json::to_vec_pretty(record).map_err(|e| Error::Cache {
        path: path.to_path_buf(),
        reason: format!("encode: {e}"),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io {
            op: "write cni cache",
            path: tmp,
            source,
        });
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            op: "rename cni cache into",
            path: path.to_path_buf(),
            source,
        }
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync cni cache dir", dir))
}

/// Reads one record; `None` if the file does not exist.
pub fn read(path: &Path) -> Result<Option<Record>> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                op: "read cni cache",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let version = serde_json::from_slice::<Value>(&data)
        .ok()
        .and_then(|v| v.get("version").and_then(Value::as_u64));
    if version != Some(u64::from(RECORD_VERSION)) {
        return Err(Error::Cache {
            path: path.to_path_buf(),
            reason: format!("unsupported record version {version:?} (want {RECORD_VERSION})"),
        });
    }
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| Error::Cache {
            path: path.to_path_buf(),
            reason: format!("decode: {e}"),
        })
}

/// Removes one record; a missing one is fine.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            op: "remove cni cache",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The records of `container_id` (any network), with their paths, in file name order;
/// `ifname` narrows to one interface. A missing dir has none. Unreadable files of other
/// containers are skipped; an unreadable file that is this container's by name is an error.
pub fn find(
    dir: &Path,
    container_id: &str,
    ifname: Option<&str>,
) -> Result<Vec<(PathBuf, Record)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                op: "read cni cache dir",
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            !name.starts_with('.')
                && name.ends_with(".json")
                && name.contains(&format!("-{container_id}-"))
        })
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let Some(record) = read(&path)? else { continue };
        let att = &record.attachment;
        if att.container_id == container_id && ifname.is_none_or(|i| att.ifname == i) {
            out.push((path, record));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(net: &str, id: &str) -> Record {
        Record {
            version: RECORD_VERSION,
            network_name: net.into(),
            config_file: "/etc/cni/net.d/10-x.conflist".into(),
            network: json!({"cniVersion": "1.0.0", "name": net, "plugins": [{"type": "bridge"}]}),
            attachment: Attachment::new(id, format!("/run/ns/{id}")).with_pod("ns", "p", "u"),
            result: json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}),
        }
    }

    #[test]
    fn record_round_trips_and_is_found_by_container() {
        let dir = tempfile::tempdir().unwrap();
        let a = record("net-a", "c1");
        let pa = path(dir.path(), "net-a", "c1", "eth0");
        assert_eq!(pa.file_name().unwrap(), "net-a-c1-eth0.json");
        write(&pa, &a).unwrap();
        write(
            &path(dir.path(), "net-a", "c11", "eth0"),
            &record("net-a", "c11"),
        )
        .unwrap();
        assert_eq!(read(&pa).unwrap(), Some(a.clone()));
        let found = find(dir.path(), "c1", Some("eth0")).unwrap();
        assert_eq!(found, vec![(pa.clone(), a)]);
        assert!(find(dir.path(), "c1", Some("eth1")).unwrap().is_empty());
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        remove(&pa).unwrap();
        remove(&pa).unwrap();
        assert_eq!(read(&pa).unwrap(), None);
        assert!(
            find(&dir.path().join("missing"), "c1", None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn other_versions_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "n", "c1", "eth0");
        let mut v = serde_json::to_value(record("n", "c1")).unwrap();
        v["version"] = json!(99);
        std::fs::write(&p, v.to_string()).unwrap();
        let err = read(&p).unwrap_err().to_string();
        assert!(
            err.contains("n-c1-eth0.json") && err.contains("99"),
            "{err}"
        );
    }
}
