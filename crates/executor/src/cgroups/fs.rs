//! Reading and writing cgroupfs files. Every write is one write(2) of the value followed by a
//! newline (what `echo v > file` does; the kernel strips it), into a file opened without
//! O_CREAT (a missing file means a missing controller or feature and must not be created) and
//! with O_APPEND (ignored by cgroupfs; in the plain-file fixtures of the unit tests it keeps every
//! write, so a test sees the exact sequence written to files such as devices.allow).

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::{CgroupError, Result};

/// Writes `value` to `dir/file`.
pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    tracing::trace!(path = %path.display(), value, "cgroup write");
    let mut buf = String::with_capacity(value.len() + 1);
    buf.push_str(value);
    if !buf.ends_with('\n') {
        buf.push('\n');
    }
    let res = OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(buf.as_bytes()));
    res.map_err(|e| CgroupError::Write {
        path,
        value: value.to_string(),
        source: e.into(),
    })
}

/// Reads `dir/file` whole.
pub(crate) fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|e| CgroupError::Read {
        path,
        source: e.into(),
    })
}

/// Reads `dir/file`, or `None` when it does not exist.
pub(crate) fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    match read(dir, file) {
        Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
        other => other.map(Some),
    }
}

pub(crate) fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

fn parse_err(path: PathBuf, content: &str) -> CgroupError {
    CgroupError::Parse {
        path,
        content: content.chars().take(200).collect(),
    }
}

/// Reads a single number; "max" reads as `u64::MAX`.
pub(crate) fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse_u64(&s).ok_or_else(|| parse_err(dir.join(file), &s))
}

/// Like `read_u64`, `None` when the file does not exist.
pub(crate) fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        None => Ok(None),
        Some(s) => parse_u64(&s)
            .map(Some)
            .ok_or_else(|| parse_err(dir.join(file), &s)),
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    // v1 reports "unlimited" as a huge signed number; negative values (-1) read as max too
    s.parse::<u64>()
        .ok()
        .or_else(|| s.parse::<i64>().ok().map(|_| u64::MAX))
}

/// Parses "key value" lines (memory.stat, cpu.stat, memory.events, oom_control ...).
pub(crate) fn read_keyed(dir: &Path, file: &str) -> Result<Vec<(String, u64)>> {
    let s = read(dir, file)?;
    let mut out = Vec::new();
    for line in s.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if let Some(v) = parse_u64(v) {
            out.push((k.to_string(), v));
        }
    }
    Ok(out)
}

/// The value of `key` in a keyed file, `None` when the file or the key is missing.
pub(crate) fn read_key(dir: &Path, file: &str, key: &str) -> Result<Option<u64>> {
    if !exists(dir, file) {
        return Ok(None);
    }
    Ok(read_keyed(dir, file)?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v))
}

/// Reads the pids listed in `dir/cgroup.procs`.
pub(crate) fn read_pids(dir: &Path) -> Result<Vec<i32>> {
    let s = match read_opt(dir, "cgroup.procs")? {
        Some(s) => s,
        None => return Ok(Vec::new()),
    };
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<i32>()
                .map_err(|_| parse_err(dir.join("cgroup.procs"), l))
        })
        .collect()
}

/// `dir` and all directories beneath it, parents before children.
pub(crate) fn walk_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let d = out[i].clone();
        i += 1;
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(CgroupError::Read {
                    path: d,
                    source: e.into(),
                });
            }
        };
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

/// mkdir, EEXIST being fine. Returns whether the directory was created.
pub(crate) fn mkdir(path: &Path) -> Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CgroupError::Mkdir {
            path: path.to_path_buf(),
            source: e.into(),
        }),
    }
}
