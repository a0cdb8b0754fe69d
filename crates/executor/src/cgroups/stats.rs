//! Usage figures, serialized like the "data" object of runc's `events --stats` (field names
//! and omissions as runc prints them), filled from whatever files the host has.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Result, fs};

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// nanoseconds
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub raw: HashMap<String, u64>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct BlkioStats {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct HugetlbStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// USER_HZ, the unit of cpuacct.stat.
const CLOCK_TICKS: u64 = 100;

fn keyed(dir: &Path, file: &str) -> Result<HashMap<String, u64>> {
    if !fs::exists(dir, file) {
        return Ok(HashMap::new());
    }
    Ok(fs::read_keyed(dir, file)?.into_iter().collect())
}

fn num(dir: &Path, file: &str) -> Result<u64> {
    Ok(fs::read_u64_opt(dir, file)?.unwrap_or(0))
}

pub(crate) fn v1(dirs: &BTreeMap<String, PathBuf>) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = dirs.get("cpuacct") {
        s.cpu.usage.total = num(d, "cpuacct.usage")?;
        if let Some(p) = fs::read_opt(d, "cpuacct.usage_percpu")? {
            s.cpu.usage.percpu = p
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
        }
        let st = keyed(d, "cpuacct.stat")?;
        let ns = 1_000_000_000 / CLOCK_TICKS;
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * ns;
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * ns;
    }
    if let Some(d) = dirs.get("cpu") {
        let st = keyed(d, "cpu.stat")?;
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = dirs.get("memory") {
        let entry = |prefix: &str| -> Result<MemoryEntry> {
            Ok(MemoryEntry {
                limit: num(d, &format!("{prefix}.limit_in_bytes"))?,
                usage: num(d, &format!("{prefix}.usage_in_bytes"))?,
                max: num(d, &format!("{prefix}.max_usage_in_bytes"))?,
                failcnt: num(d, &format!("{prefix}.failcnt"))?,
            })
        };
        s.memory.usage = entry("memory")?;
        s.memory.swap = entry("memory.memsw")?;
        s.memory.kernel = entry("memory.kmem")?;
        s.memory.kernel_tcp = entry("memory.kmem.tcp")?;
        s.memory.raw = keyed(d, "memory.stat")?;
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = dirs.get("pids") {
        s.pids.current = num(d, "pids.current")?;
        s.pids.limit = num(d, "pids.max")?;
    }
    if let Some(d) = dirs.get("blkio") {
        s.blkio.io_service_bytes_recursive =
            blkio_entries(d, "blkio.throttle.io_service_bytes_recursive")?;
        s.blkio.io_serviced_recursive = blkio_entries(d, "blkio.throttle.io_serviced_recursive")?;
    }
    if let Some(d) = dirs.get("hugetlb") {
        for size in hugetlb_sizes(d, ".limit_in_bytes")? {
            s.hugetlb.insert(
                size.clone(),
                HugetlbStats {
                    usage: num(d, &format!("hugetlb.{size}.usage_in_bytes"))?,
                    max: num(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                    failcnt: num(d, &format!("hugetlb.{size}.failcnt"))?,
                },
            );
        }
    }
    Ok(s)
}

/// "8:0 Read 4096" lines; the "Total" line is left out, as runc does.
fn blkio_entries(dir: &Path, file: &str) -> Result<Vec<BlkioEntry>> {
    let Some(text) = fs::read_opt(dir, file)? else {
        return Ok(Vec::new());
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (dev, op, v) = (it.next()?, it.next()?, it.next()?);
            let (ma, mi) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: ma.parse().ok()?,
                minor: mi.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect())
}

/// Page sizes named by the files "hugetlb.<size><suffix>".
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| super::CgroupError::Read {
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    out.sort();
    Ok(out)
}

pub(crate) fn v2(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    let cpu = keyed(dir, "cpu.stat")?;
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };
    let events = keyed(dir, "memory.events")?;
    s.memory.usage = MemoryEntry {
        limit: num(dir, "memory.max")?,
        usage: num(dir, "memory.current")?,
        max: num(dir, "memory.peak")?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    s.memory.swap = MemoryEntry {
        limit: num(dir, "memory.swap.max")?,
        usage: num(dir, "memory.swap.current")?,
        max: num(dir, "memory.swap.peak")?,
        failcnt: 0,
    };
    s.memory.raw = keyed(dir, "memory.stat")?;
    s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    s.pids.current = num(dir, "pids.current")?;
    s.pids.limit = num(dir, "pids.max")?;
    if let Some(text) = fs::read_opt(dir, "io.stat")? {
        // "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0"
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let Some((ma, mi)) = it.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (ma.parse(), mi.parse()) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value,
                });
            }
        }
    }
    for size in hugetlb_sizes(dir, ".max")? {
        let ev = keyed(dir, &format!("hugetlb.{size}.events"))?;
        s.hugetlb.insert(
            size.clone(),
            HugetlbStats {
                usage: num(dir, &format!("hugetlb.{size}.current"))?,
                max: num(dir, &format!("hugetlb.{size}.max"))?,
                failcnt: ev.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::controller::fixture::dir_with;

    #[test]
    fn v2_fixture_stats_serialize_like_runc() {
        let d = dir_with(&[
            (
                "cpu.stat",
                "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
            ),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("memory.stat", "anon 100\nfile 200\n"),
            ("pids.current", "3\n"),
            ("pids.max", "10\n"),
            (
                "io.stat",
                "8:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n",
            ),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.rsvd.max", "max\n"),
        ]);
        let s = v2(d.path()).unwrap();
        assert_eq!(s.cpu.usage.total, 10_000);
        assert_eq!(s.memory.cache, 200);
        assert_eq!(s.memory.usage.failcnt, 2);
        assert_eq!(s.hugetlb.len(), 1);
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["cpu"]["usage"]["total"], 10_000);
        assert_eq!(j["cpu"]["throttling"]["throttled_time"], 7000);
        assert_eq!(j["memory"]["usage"]["usage"], 4096);
        assert_eq!(j["memory"]["usage"]["limit"], u64::MAX);
        assert_eq!(j["pids"]["current"], 3);
        assert_eq!(j["blkio"]["ioServiceBytesRecursive"][1]["op"], "Write");
        assert_eq!(j["blkio"]["ioServicedRecursive"][1]["value"], 2);
        assert!(j["memory"].get("kernelTCP").is_some());
    }

    #[test]
    fn v1_fixture_stats() {
        let d = dir_with(&[
            ("cpuacct.usage", "123456\n"),
            ("cpuacct.usage_percpu", "100000 23456 \n"),
            ("cpuacct.stat", "user 2\nsystem 1\n"),
            ("memory.usage_in_bytes", "8192\n"),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.stat", "cache 4096\nrss 4096\n"),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 10\n8:0 Write 20\nTotal 30\n",
            ),
        ]);
        let dirs: BTreeMap<String, PathBuf> = ["cpuacct", "memory", "blkio"]
            .iter()
            .map(|c| (c.to_string(), d.path().to_path_buf()))
            .collect();
        let s = v1(&dirs).unwrap();
        assert_eq!(s.cpu.usage.total, 123456);
        assert_eq!(s.cpu.usage.percpu, vec![100000, 23456]);
        assert_eq!(s.cpu.usage.user, 20_000_000);
        assert_eq!(s.memory.cache, 4096);
        assert_eq!(s.memory.usage.usage, 8192);
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    }
}
