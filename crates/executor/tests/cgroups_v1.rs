//! Root tests of the cgroup layer on the host's cgroup v1 (hybrid) hierarchies.
//!
//! They need root and the v1 cpu, cpuacct, cpuset, memory, pids, freezer and devices
//! hierarchies. When these are missing every test is reported *ignored* with the reason, except
//! when the environment variable CI is set: then a missing prerequisite is a failure.
//!
//!     cargo test -p berth-executor --test cgroups_v1

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_executor::cgroups::{Cgroup, Layout, resolve_path};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use oci_spec::runtime::LinuxResources;

const HIERARCHIES: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices",
];

fn prerequisites() -> Result<Layout, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root".into());
    }
    let layout = Layout::detect().map_err(|e| e.to_string())?;
    if layout.is_v2() {
        return Err("host is pure cgroup v2, not v1/hybrid".into());
    }
    for h in HIERARCHIES {
        if layout.v1_mount(h).is_none() {
            return Err(format!("no v1 {h} hierarchy mounted"));
        }
    }
    Ok(layout)
}

type TestFn = fn(&Layout, &str) -> Result<(), Failed>;

fn main() {
    let args = Arguments::from_args();
    let prereq = prerequisites();
    let tests: &[(&str, TestFn)] = &[
        (
            "limits_are_written_and_read_back",
            limits_are_written_and_read_back,
        ),
        (
            "memory_swap_can_be_lowered_and_raised",
            memory_swap_can_be_lowered_and_raised,
        ),
        (
            "child_joins_freezes_thaws_and_is_killed",
            child_joins_freezes_thaws_and_is_killed,
        ),
        ("stats_are_non_zero", stats_are_non_zero),
        ("oom_kill_is_counted", oom_kill_is_counted),
        (
            "invalid_value_error_names_the_file",
            invalid_value_error_names_the_file,
        ),
        (
            "destroy_of_missing_cgroup_is_fine",
            destroy_of_missing_cgroup_is_fine,
        ),
    ];
    let trials = tests
        .iter()
        .map(|&(name, f)| {
            let prereq = prereq.clone();
            Trial::ignorable_test(name, move || match prereq {
                Ok(layout) => f(&layout, name).map(|()| Completion::Completed),
                Err(reason) if std::env::var_os("CI").is_some() => {
                    Err(format!("prerequisite missing (CI is set): {reason}").into())
                }
                Err(reason) => Ok(Completion::ignored_with(reason)),
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// A cgroup that kills its processes and removes itself when dropped, so a failing test leaves
/// nothing behind.
struct TestCgroup {
    cg: Cgroup,
    children: Vec<Child>,
}

impl TestCgroup {
    fn new(layout: &Layout, name: &str) -> Result<TestCgroup, Failed> {
        let path = resolve_path(
            Some(&format!("/berth-test-{}-{name}", std::process::id())),
            "unused",
        )?;
        let cg = Cgroup::new(layout, &path);
        cg.create()?;
        Ok(TestCgroup {
            cg,
            children: Vec::new(),
        })
    }

    fn dir(&self, c: &str) -> PathBuf {
        self.cg.dir(c).unwrap().to_path_buf()
    }

    /// Spawns `sh -c script` with a pipe on stdin, moved into the cgroup.
    fn spawn(&mut self, script: &str) -> Result<usize, Failed> {
        let child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        self.cg.add_process(child.id() as i32)?;
        self.children.push(child);
        Ok(self.children.len() - 1)
    }

    /// Lets a child spawned with `read _` go on.
    fn release(&mut self, i: usize) -> Result<(), Failed> {
        self.children[i].stdin.take().unwrap().write_all(b"go\n")?;
        Ok(())
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.cg.kill_all();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.destroy();
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if cond { Ok(()) } else { Err(what().into()) }
}

fn limits_are_written_and_read_back(layout: &Layout, name: &str) -> Result<(), Failed> {
    let t = TestCgroup::new(layout, name)?;
    t.cg.apply(&res(
        r#"{"memory":{"limit":33554432,"reservation":16777216,"swappiness":10},
            "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0","mems":"0"},
            "pids":{"limit":16},
            "devices":[{"allow":false,"access":"rwm"},
                       {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#,
    ))?;
    let expect = [
        ("memory", "memory.limit_in_bytes", "33554432"),
        ("memory", "memory.soft_limit_in_bytes", "16777216"),
        ("memory", "memory.swappiness", "10"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpuset", "cpuset.cpus", "0"),
        ("cpuset", "cpuset.mems", "0"),
        ("pids", "pids.max", "16"),
        ("devices", "devices.list", "c 1:3 rwm"),
    ];
    for (c, f, v) in expect {
        let got = read(&t.dir(c), f);
        check(got == v, || format!("{c}/{f}: got {got:?}, want {v:?}"))?;
    }
    // unlimited again
    t.cg.apply(&res(
        r#"{"memory":{"limit":-1},"pids":{"limit":-1},"cpu":{"quota":-1}}"#,
    ))?;
    check(read(&t.dir("pids"), "pids.max") == "max", || {
        "pids.max not max".into()
    })?;
    check(read(&t.dir("cpu"), "cpu.cfs_quota_us") == "-1", || {
        "quota not -1".into()
    })?;
    let dirs: Vec<PathBuf> = HIERARCHIES.iter().map(|h| t.dir(h)).collect();
    drop(t);
    for d in dirs {
        check(!d.exists(), || format!("{} left behind", d.display()))?;
    }
    Ok(())
}

fn memory_swap_can_be_lowered_and_raised(layout: &Layout, name: &str) -> Result<(), Failed> {
    let t = TestCgroup::new(layout, name)?;
    let mem = t.dir("memory");
    if !mem.join("memory.memsw.limit_in_bytes").exists() {
        return Err("no memory.memsw.limit_in_bytes: swap accounting off".into());
    }
    for (limit, swap) in [(64, 128), (16, 32), (256, 512), (32, 32)] {
        let (l, s) = (limit << 20, swap << 20);
        t.cg.apply(&res(&format!(r#"{{"memory":{{"limit":{l},"swap":{s}}}}}"#)))?;
        check(read(&mem, "memory.limit_in_bytes") == l.to_string(), || {
            format!("limit {l}")
        })?;
        check(
            read(&mem, "memory.memsw.limit_in_bytes") == s.to_string(),
            || format!("memsw {s}"),
        )?;
    }
    Ok(())
}

fn child_joins_freezes_thaws_and_is_killed(layout: &Layout, name: &str) -> Result<(), Failed> {
    let mut t = TestCgroup::new(layout, name)?;
    let i = t.spawn("exec sleep 60")?;
    let pid = t.children[i].id() as i32;
    let procs = t.cg.procs()?;
    check(procs.contains(&pid), || {
        format!("procs {procs:?} lacks {pid}")
    })?;
    for h in HIERARCHIES {
        let p = read(&t.dir(h), "cgroup.procs");
        check(p.lines().any(|l| l == pid.to_string()), || {
            format!("{h}: {pid} not in {p:?}")
        })?;
    }
    t.cg.freeze()?;
    check(t.cg.is_frozen()?, || "not frozen after freeze".into())?;
    check(read(&t.dir("freezer"), "freezer.state") == "FROZEN", || {
        "state".into()
    })?;
    t.cg.thaw()?;
    check(!t.cg.is_frozen()?, || "frozen after thaw".into())?;
    // a second child, then kill everything
    t.spawn("exec sleep 60")?;
    t.cg.kill_all()?;
    for c in &mut t.children {
        let st = c.wait()?;
        check(st.signal() == Some(9), || {
            format!("child ended with {st:?}, not SIGKILL")
        })?;
    }
    t.children.clear();
    check(t.cg.procs()?.is_empty(), || {
        "processes left after kill_all".into()
    })?;
    check(!t.cg.is_frozen()?, || "left frozen by kill_all".into())?;
    t.cg.destroy()?;
    check(!t.dir("freezer").exists(), || "freezer dir left".into())?;
    Ok(())
}

fn stats_are_non_zero(layout: &Layout, name: &str) -> Result<(), Failed> {
    let mut t = TestCgroup::new(layout, name)?;
    t.cg.apply(&res(
        r#"{"pids":{"limit":50},"memory":{"limit":268435456}}"#,
    ))?;
    let i = t.spawn("read _; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec sleep 60")?;
    t.release(i)?;
    // let it burn some cpu
    std::thread::sleep(std::time::Duration::from_millis(800));
    let s = t.cg.stats()?;
    let j = serde_json::to_value(&s)?;
    check(s.cpu.usage.total > 0, || format!("cpu total 0: {j}"))?;
    check(s.memory.usage.usage > 0, || format!("memory usage 0: {j}"))?;
    check(s.memory.usage.limit == 268435456, || {
        format!("memory limit: {j}")
    })?;
    check(s.pids.current >= 1 && s.pids.limit == 50, || {
        format!("pids: {j}")
    })?;
    check(j["memory"]["raw"].is_object(), || {
        format!("memory.raw missing: {j}")
    })?;
    Ok(())
}

fn oom_kill_is_counted(layout: &Layout, name: &str) -> Result<(), Failed> {
    let mut t = TestCgroup::new(layout, name)?;
    let mem = t.dir("memory");
    let swap = if mem.join("memory.memsw.limit_in_bytes").exists() {
        r#","swap":16777216"#
    } else {
        ""
    };
    t.cg.apply(&res(&format!(r#"{{"memory":{{"limit":16777216{swap}}}}}"#)))?;
    check(t.cg.oom_kill_count()? == 0, || {
        "oom count not 0 at start".into()
    })?;
    let i = t.spawn("read _; exec dd if=/dev/zero of=/dev/null bs=64M count=1")?;
    t.release(i)?;
    let st = t.children[i].wait()?;
    t.children.clear();
    check(st.signal() == Some(9), || {
        format!("dd ended with {st:?}, not SIGKILL")
    })?;
    let n = t.cg.oom_kill_count()?;
    check(n >= 1, || format!("oom_kill count {n}"))?;
    Ok(())
}

fn invalid_value_error_names_the_file(layout: &Layout, name: &str) -> Result<(), Failed> {
    let t = TestCgroup::new(layout, name)?;
    let e =
        t.cg.apply(&res(r#"{"cpu":{"cpus":"4096-4097"}}"#))
            .unwrap_err()
            .to_string();
    let want = format!("write {}: ", t.dir("cpuset").join("cpuset.cpus").display());
    check(e.starts_with(&want), || {
        format!("error {e:?} does not start with {want:?}")
    })?;
    check(e == e.to_lowercase(), || {
        format!("error {e:?} is not lowercase")
    })?;
    let e =
        t.cg.apply(&res(r#"{"unified":{"memory.high":"1"}}"#))
            .unwrap_err()
            .to_string();
    check(e.starts_with("linux.resources.unified: "), || e.clone())?;
    Ok(())
}

fn destroy_of_missing_cgroup_is_fine(layout: &Layout, name: &str) -> Result<(), Failed> {
    let cg = Cgroup::new(layout, Path::new(&format!("/berth-test-missing-{name}")));
    cg.destroy()?;
    Ok(())
}
