//! OOM kills counted by the container's memory cgroup: v1 `memory.oom_control` and v2
//! `memory.events` both carry an `oom_kill N` line. The count is read when the container is
//! created and again when it exits; a rise means the kernel OOM-killed something in it.

use std::path::{Path, PathBuf};

/// The file holding the container's `oom_kill` counter, found from `/proc/<pid>/cgroup`.
pub fn counter_file(pid: i32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    counter_file_in(&text, Path::new("/sys/fs/cgroup"))
}

/// `proc_cgroup` is the text of /proc/<pid>/cgroup; `mount` where cgroupfs is mounted.
pub fn counter_file_in(proc_cgroup: &str, mount: &Path) -> Option<PathBuf> {
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            return Some(mount.join("memory").join(rel).join("memory.oom_control"));
        }
        if controllers.is_empty() {
            unified = Some(rel.to_owned());
        }
    }
    let rel = unified?;
    mount
        .join("cgroup.controllers")
        .exists()
        .then(|| mount.join(rel).join("memory.events"))
}

/// The `oom_kill` count in that file (0 when unreadable).
pub fn read_count(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| parse_count(&t))
        .unwrap_or(0)
}

fn parse_count(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_memory_hierarchy_wins_over_unified() {
        let t = "12:pids:/x\n4:memory:/process_api/a/ctr\n0::/\n";
        assert_eq!(
            counter_file_in(t, Path::new("/sys/fs/cgroup")).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/a/ctr/memory.oom_control")
        );
    }

    #[test]
    fn oom_kill_line_parsed_from_v1_and_v2_files() {
        assert_eq!(
            parse_count("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"),
            Some(3)
        );
        assert_eq!(
            parse_count("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n"),
            Some(1)
        );
    }
}
