//! Usage figures for the CRI stats calls (ContainerStats, ListContainerStats,
//! PodSandboxStats, ListPodSandboxStats).
//!
//! - cpu and memory come from the cgroups berth-oci made, read with berth-executor's cgroup
//!   readers (the ones behind `berth-oci events --stats`, v1 and v2 alike);
//! - the writable layer is the disk usage of the snapshot's `upper/` directory (each inode
//!   once, symlinks not followed);
//! - a pod's network counters come from `/proc/<infra pid>/net/dev`, which shows the
//!   interfaces of the pod's network namespace.
//!
//! The kubelet asks every ~10 s for every container, so everything here reads files; nothing
//! spawns a process. `usage_nano_cores` is a rate: it needs the previous sample of the same
//! container (or pod), which [`Collector`] keeps in memory; the first sample has none.
//!
//! Which containers have stats: those with a cgroup, i.e. created or running, as in
//! containerd (whose stats come from the task's metrics, and exited containers have no task).
//! ContainerStats of an exited container answers with its attributes and writable layer only.
//!
//! A pod's cpu and memory: berth puts each of the pod's processes in `<parent>/<id>`. When the
//! kubelet gave a cgroup parent, it holds that pod alone, so the parent is read; otherwise
//! (berthd's shared default parent) the pod is the sum of its infra and container cgroups.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::runtime::v1::{
    ContainerAttributes, ContainerStats, ContainerStatsFilter, CpuUsage, FilesystemIdentifier,
    FilesystemUsage, LinuxPodSandboxStats, MemoryUsage, NetworkInterfaceUsage, NetworkUsage,
    PodSandboxAttributes, PodSandboxStats, PodSandboxStatsFilter, ProcessUsage, SwapUsage,
    UInt64Value,
};
use berth_executor::cgroups::{Cgroup, Layout, Stats};
use tracing::debug;

use crate::pod::cgroup_path;
use crate::records::{ContainerRecord, ContainerState, PodRecord};
use crate::{Error, Result, Sandboxes, now_ns};

/// The interface CNI plugs every pod into: the pod's default interface.
const DEFAULT_INTERFACE: &str = "eth0";

/// v1 reports "no limit" as a huge page-aligned number (PAGE_COUNTER_MAX pages), v2 as
/// "max" (read as u64::MAX): anything from 2^62 up is no limit.
const UNLIMITED: u64 = 1 << 62;

/// One cgroup's (or the sum of several cgroups') figures at one instant.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CgroupSample {
    /// Total cpu time, nanoseconds.
    pub cpu_ns: u64,
    pub memory: MemorySample,
    /// Processes (tasks) in the cgroup.
    pub processes: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MemorySample {
    pub usage: u64,
    /// usage minus inactive file pages, the figure the kubelet evicts on.
    pub working_set: u64,
    pub rss: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
    /// None when unlimited.
    pub limit: Option<u64>,
    /// None when the host does not account swap.
    pub swap_usage: Option<u64>,
    /// Swap still allowed; None when unlimited or not accounted.
    pub swap_available: Option<u64>,
}

impl CgroupSample {
    /// Adds `other` in; the sum of several cgroups has no one limit.
    fn add(&mut self, other: &CgroupSample) {
        let (m, o) = (&mut self.memory, &other.memory);
        self.cpu_ns += other.cpu_ns;
        self.processes += other.processes;
        m.usage += o.usage;
        m.working_set += o.working_set;
        m.rss += o.rss;
        m.page_faults += o.page_faults;
        m.major_page_faults += o.major_page_faults;
        m.limit = None;
        m.swap_usage = match (m.swap_usage, o.swap_usage) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        m.swap_available = None;
    }
}

fn limited(v: u64) -> Option<u64> {
    (v != 0 && v < UNLIMITED).then_some(v)
}

/// The sample of a cgroup's `stats` (v1 or v2 file names).
pub fn sample_from(stats: &Stats, v2: bool) -> CgroupSample {
    let raw = &stats.memory.raw;
    let get = |k: &str| raw.get(k).copied();
    // v1's total_* figures count the whole subtree, like v2's memory.stat.
    let v1 = |k: &str| get(&format!("total_{k}")).or_else(|| get(k));
    let (inactive_file, rss, page_faults, major) = if v2 {
        (
            get("inactive_file"),
            get("anon"),
            get("pgfault"),
            get("pgmajfault"),
        )
    } else {
        (
            v1("inactive_file"),
            v1("rss"),
            v1("pgfault"),
            v1("pgmajfault"),
        )
    };
    let usage = stats.memory.usage.usage;
    let swap = &stats.memory.swap;
    let (swap_usage, swap_available) = if v2 {
        let accounted = swap.limit != 0;
        (
            accounted.then_some(swap.usage),
            limited(swap.limit).map(|l| l.saturating_sub(swap.usage)),
        )
    } else {
        // memory.memsw.* counts memory and swap together.
        let accounted = swap.limit != 0;
        (
            accounted.then(|| swap.usage.saturating_sub(usage)),
            limited(swap.limit).map(|l| l.saturating_sub(swap.usage)),
        )
    };
    CgroupSample {
        cpu_ns: stats.cpu.usage.total,
        memory: MemorySample {
            usage,
            working_set: usage.saturating_sub(inactive_file.unwrap_or(0)),
            rss: rss.unwrap_or(0),
            page_faults: page_faults.unwrap_or(0),
            major_page_faults: major.unwrap_or(0),
            limit: limited(stats.memory.usage.limit),
            swap_usage,
            swap_available,
        },
        processes: stats.pids.current,
    }
}

/// Cores used between two (timestamp ns, cpu ns) samples, in billionths of a core; None
/// when the clock or the counter went backwards (a counter of a summed pod drops when a
/// container goes away).
pub fn nano_cores(prev: (i64, u64), cur: (i64, u64)) -> Option<u64> {
    let dt = cur.0.checked_sub(prev.0).filter(|d| *d > 0)? as u128;
    let used = cur.1.checked_sub(prev.1)? as u128;
    u64::try_from(used * 1_000_000_000 / dt).ok()
}

/// One interface's counters from /proc/<pid>/net/dev.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

/// Parses /proc/net/dev: two header lines, then "name: 8 receive and 8 transmit columns".
pub fn parse_net_dev(text: &str) -> Vec<InterfaceCounters> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let cols: Vec<u64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<std::result::Result<_, _>>()
                .ok()?;
            if cols.len() < 16 {
                return None;
            }
            Some(InterfaceCounters {
                name: name.trim().to_string(),
                rx_bytes: cols[0],
                rx_errors: cols[2],
                tx_bytes: cols[8],
                tx_errors: cols[10],
            })
        })
        .collect()
}

/// The previous cpu sample of each container and pod, for `usage_nano_cores`, and the host's
/// cgroup layout. Owned by [`Sandboxes`].
pub(crate) struct Collector {
    /// None when the host's cgroups cannot be read (stats then have no cpu or memory).
    layout: Option<Layout>,
    last: Mutex<HashMap<String, (i64, u64)>>,
}

impl Collector {
    pub(crate) fn new() -> Collector {
        let layout = match Layout::detect() {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, "cgroup layout unknown: stats will have no cpu or memory");
                None
            }
        };
        Collector {
            layout,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the cgroup at `path` (absolute, cgroupfs form); None when it does not exist.
    fn read(&self, path: &str) -> Option<CgroupSample> {
        let layout = self.layout.as_ref()?;
        let cg = Cgroup::new(layout, Path::new(path));
        let probe = cg.dir("memory").or_else(|| cg.dir("cpuacct"))?;
        if !probe.is_dir() {
            return None;
        }
        let stats = match cg.stats() {
            Ok(s) => s,
            Err(e) => {
                debug!(cgroup = path, error = %e, "cgroup stats unreadable");
                return None;
            }
        };
        let mut s = sample_from(&stats, layout.is_v2());
        if s.processes == 0 {
            // no pids controller: count the tasks
            s.processes = cg.procs().map(|p| p.len() as u64).unwrap_or(0);
        }
        Some(s)
    }

    /// Records `cpu_ns` at `at` for `key`; the rate since the previous sample, if any.
    fn rate(&self, key: &str, at: i64, cpu_ns: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let prev = last.insert(key.to_string(), (at, cpu_ns));
        prev.and_then(|p| nano_cores(p, (at, cpu_ns)))
    }

    /// Drops the kept sample of a removed container or pod.
    pub(crate) fn forget(&self, id: &str) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.remove(&container_key(id));
        last.remove(&pod_key(id));
    }
}

fn container_key(id: &str) -> String {
    format!("container/{id}")
}

fn pod_key(id: &str) -> String {
    format!("pod/{id}")
}

fn uint(value: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value })
}

fn cpu_usage(at: i64, s: &CgroupSample, nano_cores: Option<u64>) -> CpuUsage {
    CpuUsage {
        timestamp: at,
        usage_core_nano_seconds: uint(s.cpu_ns),
        usage_nano_cores: nano_cores.and_then(uint),
        psi: None,
    }
}

fn memory_usage(at: i64, m: &MemorySample) -> MemoryUsage {
    MemoryUsage {
        timestamp: at,
        working_set_bytes: uint(m.working_set),
        available_bytes: m.limit.and_then(|l| uint(l.saturating_sub(m.working_set))),
        usage_bytes: uint(m.usage),
        rss_bytes: uint(m.rss),
        page_faults: uint(m.page_faults),
        major_page_faults: uint(m.major_page_faults),
        psi: None,
    }
}

fn swap_usage(at: i64, m: &MemorySample) -> Option<SwapUsage> {
    m.swap_usage.map(|used| SwapUsage {
        timestamp: at,
        swap_available_bytes: m.swap_available.and_then(uint),
        swap_usage_bytes: uint(used),
    })
}

fn interface_usage(c: &InterfaceCounters) -> NetworkInterfaceUsage {
    NetworkInterfaceUsage {
        name: c.name.clone(),
        rx_bytes: uint(c.rx_bytes),
        rx_errors: uint(c.rx_errors),
        tx_bytes: uint(c.tx_bytes),
        tx_errors: uint(c.tx_errors),
    }
}

/// The pod's network usage from its interface counters: eth0 as the default interface;
/// `interfaces` lists every interface but loopback, eth0 included (as cAdvisor does, so
/// that the kubelet's summary lists the default interface too).
fn network_usage(at: i64, counters: &[InterfaceCounters]) -> NetworkUsage {
    NetworkUsage {
        timestamp: at,
        default_interface: counters
            .iter()
            .find(|c| c.name == DEFAULT_INTERFACE)
            .map(interface_usage),
        interfaces: counters
            .iter()
            .filter(|c| c.name != "lo")
            .map(interface_usage)
            .collect(),
    }
}

fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn container_matches(c: &ContainerRecord, f: &ContainerStatsFilter) -> bool {
    c.id.starts_with(&f.id)
        && c.pod_id.starts_with(&f.pod_sandbox_id)
        && labels_match(&c.config.labels, &f.label_selector)
}

fn pod_matches(p: &PodRecord, f: &PodSandboxStatsFilter) -> bool {
    p.state.is_visible()
        && p.id.starts_with(&f.id)
        && labels_match(&p.config.labels, &f.label_selector)
}

/// Whether a container in state `s` has a cgroup (its runtime container exists).
fn has_cgroup(s: ContainerState) -> bool {
    matches!(s, ContainerState::Created | ContainerState::Running)
}

impl Sandboxes {
    /// ContainerStats of one container (full id or unique prefix).
    pub async fn container_stats(self: &Arc<Self>, id: &str) -> Result<ContainerStats> {
        let c = self.container_record(id)?;
        let this = self.clone();
        blocking(move || Ok(this.container_stats_of(&c))).await
    }

    /// ListContainerStats: the containers that have a cgroup (created or running), filtered.
    pub async fn list_container_stats(
        self: &Arc<Self>,
        filter: ContainerStatsFilter,
    ) -> Result<Vec<ContainerStats>> {
        let mut containers: Vec<_> = self
            .records
            .containers()
            .into_iter()
            .filter(|c| has_cgroup(c.state) && container_matches(c, &filter))
            .collect();
        containers.sort_by_key(|c| c.created_at);
        let this = self.clone();
        blocking(move || {
            Ok(containers
                .iter()
                .map(|c| this.container_stats_of(c))
                .collect())
        })
        .await
    }

    /// PodSandboxStats of one pod (full id or unique prefix).
    pub async fn pod_stats(self: &Arc<Self>, id: &str) -> Result<PodSandboxStats> {
        let p = self.pod_record(id)?;
        let this = self.clone();
        blocking(move || Ok(this.pod_stats_of(&p))).await
    }

    /// ListPodSandboxStats: every visible pod, filtered.
    pub async fn list_pod_stats(
        self: &Arc<Self>,
        filter: PodSandboxStatsFilter,
    ) -> Result<Vec<PodSandboxStats>> {
        let mut pods: Vec<_> = self
            .records
            .pods()
            .into_iter()
            .filter(|p| pod_matches(p, &filter))
            .collect();
        pods.sort_by_key(|p| p.created_at);
        let this = self.clone();
        blocking(move || Ok(pods.iter().map(|p| this.pod_stats_of(p)).collect())).await
    }

    /// The cgroup figures of container `c` (None when it has no cgroup).
    fn container_sample(&self, c: &ContainerRecord) -> Option<CgroupSample> {
        if !has_cgroup(c.state) {
            return None;
        }
        let pod = self.records.pod(&c.pod_id)?;
        self.stats.read(&cgroup_path(&pod.cgroup_parent, &c.id))
    }

    fn container_stats_of(&self, c: &ContainerRecord) -> ContainerStats {
        let at = now_ns();
        let sample = self.container_sample(c);
        let rate = sample.and_then(|s| self.stats.rate(&container_key(&c.id), at, s.cpu_ns));
        ContainerStats {
            attributes: Some(ContainerAttributes {
                id: c.id.clone(),
                metadata: c.config.metadata.clone(),
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
            }),
            cpu: sample.map(|s| cpu_usage(at, &s, rate)),
            memory: sample.map(|s| memory_usage(at, &s.memory)),
            writable_layer: self.writable_layer(&c.id, at),
            swap: sample.and_then(|s| swap_usage(at, &s.memory)),
            io: None,
        }
    }

    /// The disk usage of the container's writable layer (its snapshot's upper dir).
    fn writable_layer(&self, id: &str, at: i64) -> Option<FilesystemUsage> {
        let rootfs = self.snapshots.rootfs(id).ok()?;
        let snapshot = rootfs.parent()?;
        let mountpoint = snapshot.parent().map(Path::to_path_buf).unwrap_or_default();
        let upper: PathBuf = snapshot.join("upper");
        let usage = match berth_image::usage::disk_usage(&upper) {
            Ok(u) => u,
            Err(e) => {
                debug!(container_id = %id, error = %e, "writable layer usage unreadable");
                return None;
            }
        };
        Some(FilesystemUsage {
            timestamp: at,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: mountpoint.to_string_lossy().into_owned(),
            }),
            used_bytes: uint(usage.bytes),
            inodes_used: uint(usage.inodes),
        })
    }

    /// The pod's own cgroup figures: its cgroup parent when the kubelet gave one, else the
    /// sum of its infra and container cgroups.
    fn pod_sample(&self, p: &PodRecord, containers: &[ContainerRecord]) -> Option<CgroupSample> {
        let given = p
            .config
            .linux
            .as_ref()
            .is_some_and(|l| !l.cgroup_parent.is_empty());
        if given {
            return self.stats.read(&p.cgroup_parent);
        }
        let mut parts = std::iter::once(self.stats.read(&cgroup_path(&p.cgroup_parent, &p.id)))
            .chain(containers.iter().map(|c| self.container_sample(c)))
            .flatten();
        let mut sum = parts.next()?;
        for s in parts {
            sum.add(&s);
        }
        Some(sum)
    }

    fn pod_stats_of(&self, p: &PodRecord) -> PodSandboxStats {
        let at = now_ns();
        let mut containers = self.records.containers_of(&p.id);
        containers.retain(|c| has_cgroup(c.state));
        containers.sort_by_key(|c| c.created_at);
        let sample = self.pod_sample(p, &containers);
        let rate = sample.and_then(|s| self.stats.rate(&pod_key(&p.id), at, s.cpu_ns));
        let network = (p.netns.is_some() && p.infra_pid > 0)
            .then(|| {
                let path = format!("/proc/{}/net/dev", p.infra_pid);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some(network_usage(at, &parse_net_dev(&text))),
                    Err(e) => {
                        debug!(pod_id = %p.id, path, error = %e, "network counters unreadable");
                        None
                    }
                }
            })
            .flatten();
        PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: p.id.clone(),
                metadata: p.config.metadata.clone(),
                labels: p.config.labels.clone(),
                annotations: p.config.annotations.clone(),
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: sample.map(|s| cpu_usage(at, &s, rate)),
                memory: sample.map(|s| memory_usage(at, &s.memory)),
                network,
                process: sample.map(|s| ProcessUsage {
                    timestamp: at,
                    process_count: uint(s.processes),
                }),
                containers: containers
                    .iter()
                    .map(|c| self.container_stats_of(c))
                    .collect(),
                io: None,
            }),
            windows: None,
        }
    }
}

/// Runs file-walking work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("stats task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_executor::cgroups::MemoryEntry;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1296      16    1    0    0     0          0         0      796      10    2    0    0     0       0          0
  net1: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0
";

    #[test]
    fn net_dev_parses_rx_tx_bytes_and_errors() {
        let ifs = parse_net_dev(NET_DEV);
        assert_eq!(ifs.len(), 3);
        assert_eq!(
            ifs[1],
            InterfaceCounters {
                name: "eth0".into(),
                rx_bytes: 1296,
                rx_errors: 1,
                tx_bytes: 796,
                tx_errors: 2,
            }
        );
        let n = network_usage(7, &ifs);
        let d = n.default_interface.unwrap();
        assert_eq!(d.name, "eth0");
        assert_eq!(d.rx_bytes.unwrap().value, 1296);
        let names: Vec<_> = n.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["eth0", "net1"]);
        assert!(parse_net_dev("garbage\nx: 1 2\n").is_empty());
    }

    #[test]
    fn cpu_rate_needs_a_forward_sample() {
        // 0.5 s of cpu over 1 s: half a core
        assert_eq!(
            nano_cores((1_000_000_000, 100), (2_000_000_000, 500_000_100)),
            Some(500_000_000)
        );
        assert_eq!(nano_cores((5, 100), (5, 200)), None);
        assert_eq!(nano_cores((5, 100), (6, 50)), None);
        let c = Collector {
            layout: None,
            last: Mutex::new(HashMap::new()),
        };
        assert_eq!(c.rate("container/a", 1_000, 10), None);
        assert_eq!(c.rate("container/a", 2_000, 1_010), Some(1_000_000_000));
        c.forget("a");
        assert_eq!(c.rate("container/a", 3_000, 2_000), None);
    }

    fn stats(raw: &str, usage: u64, limit: u64) -> Stats {
        let mut s = Stats::default();
        s.cpu.usage.total = 42;
        s.memory.usage = MemoryEntry {
            limit,
            usage,
            ..Default::default()
        };
        s.memory.raw = raw
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        s.pids.current = 2;
        s
    }

    #[test]
    fn v1_memory_stat_gives_working_set_from_total_inactive_file() {
        let raw = "cache 8192\nrss 4096\ninactive_file 100\npgfault 9\npgmajfault 1\n\
                   total_rss 12288\ntotal_inactive_file 4096\ntotal_pgfault 30\ntotal_pgmajfault 3\n";
        let mut st = stats(raw, 20480, 9223372036854771712);
        let s = sample_from(&st, false);
        assert_eq!(s.cpu_ns, 42);
        assert_eq!(s.processes, 2);
        assert_eq!(s.memory.working_set, 16384);
        assert_eq!(s.memory.rss, 12288);
        assert_eq!(s.memory.page_faults, 30);
        assert_eq!(s.memory.major_page_faults, 3);
        assert_eq!(s.memory.limit, None);
        assert_eq!(s.memory.swap_usage, None);
        assert!(memory_usage(1, &s.memory).available_bytes.is_none());

        st.memory.usage.limit = 65536;
        st.memory.swap = MemoryEntry {
            limit: 65536,
            usage: 24576,
            ..Default::default()
        };
        let s = sample_from(&st, false);
        let m = memory_usage(1, &s.memory);
        assert_eq!(m.available_bytes.unwrap().value, 65536 - 16384);
        assert_eq!(m.usage_bytes.unwrap().value, 20480);
        let sw = swap_usage(1, &s.memory).unwrap();
        assert_eq!(sw.swap_usage_bytes.unwrap().value, 4096);
        assert_eq!(sw.swap_available_bytes.unwrap().value, 65536 - 24576);
    }

    #[test]
    fn v2_memory_stat_uses_anon_and_inactive_file() {
        let raw = "anon 3000\nfile 5000\ninactive_file 1000\npgfault 7\npgmajfault 2\n";
        let mut st = stats(raw, 9000, u64::MAX);
        st.memory.swap = MemoryEntry {
            limit: u64::MAX,
            usage: 10,
            ..Default::default()
        };
        let s = sample_from(&st, true);
        assert_eq!(s.memory.working_set, 8000);
        assert_eq!(s.memory.rss, 3000);
        assert_eq!(s.memory.page_faults, 7);
        assert_eq!(s.memory.major_page_faults, 2);
        assert_eq!(s.memory.limit, None);
        assert_eq!(s.memory.swap_usage, Some(10));
        assert_eq!(s.memory.swap_available, None);
        // working set never goes below zero
        let st = stats("inactive_file 50\n", 10, 100);
        assert_eq!(sample_from(&st, true).memory.working_set, 0);
    }

    #[test]
    fn pod_sums_have_no_limit() {
        let a = sample_from(&stats("anon 1\n", 10, 100), true);
        let mut sum = a;
        sum.add(&a);
        assert_eq!(sum.cpu_ns, 84);
        assert_eq!(sum.memory.usage, 20);
        assert_eq!(sum.processes, 4);
        assert_eq!(sum.memory.limit, None);
    }

    #[test]
    fn stats_filters_match_prefix_pod_and_labels() {
        let p = PodRecord {
            version: 1,
            id: "abc123".into(),
            config: berth_api::runtime::v1::PodSandboxConfig {
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            },
            runtime_handler: String::new(),
            state: crate::records::PodState::Ready,
            created_at: 1,
            netns: None,
            ips: Vec::new(),
            infra_pid: 0,
            cgroup_parent: "/berth".into(),
        };
        let f = |id: &str, app: &str| PodSandboxStatsFilter {
            id: id.into(),
            label_selector: if app.is_empty() {
                HashMap::new()
            } else {
                [("app".to_string(), app.to_string())].into()
            },
        };
        assert!(pod_matches(&p, &f("", "")));
        assert!(pod_matches(&p, &f("abc", "web")));
        assert!(!pod_matches(&p, &f("abd", "")));
        assert!(!pod_matches(&p, &f("", "db")));
    }
}
