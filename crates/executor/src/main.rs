//! berth-oci: the command line, runc-compatible in verbs, flags, exit codes and output.

mod cli;
mod logging;

/// The command line's error: a message, printed as is. (anyhow would capture a backtrace for
/// every error, and unwinder setup costs a millisecond in this static binary.)
#[derive(Debug)]
struct CliError(String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> CliError {
        CliError(e.to_string())
    }
}

type CliResult<T> = Result<T, CliError>;

/// `context` and `with_context`, as anyhow spells them.
trait Context<T> {
    fn context(self, msg: &str) -> CliResult<T>;
    fn with_context(self, msg: impl FnOnce() -> String) -> CliResult<T>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, msg: &str) -> CliResult<T> {
        self.map_err(|e| CliError(format!("{msg}: {e}")))
    }
    fn with_context(self, msg: impl FnOnce() -> String) -> CliResult<T> {
        self.map_err(|e| CliError(format!("{}: {e}", msg())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, msg: &str) -> CliResult<T> {
        self.ok_or_else(|| CliError(msg.to_owned()))
    }
    fn with_context(self, msg: impl FnOnce() -> String) -> CliResult<T> {
        self.ok_or_else(|| CliError(msg()))
    }
}

macro_rules! bail {
    ($($t:tt)*) => { return Err(CliError(format!($($t)*))) };
}

use std::io::Read;
use std::process::ExitCode;

use berth_executor::ops::{self, Runtime};
use cli::{Cli, Cmd, ExecArgs, Parsed, UpdateArgs};

fn main() -> ExitCode {
    // Commands that put a process into a container first re-exec from a sealed copy of this
    // binary (CVE-2019-5736). That happens before anything else, so the unsealed process does
    // no work that the sealed one repeats.
    if may_enter_container(std::env::args_os().skip(1)) {
        if let Err(e) = berth_executor::sealed::ensure_sealed() {
            eprintln!("berth-oci: re-exec from a sealed binary: {e}");
            return ExitCode::from(1);
        }
    }
    let argv = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(argv) => argv,
        Err(a) => {
            eprintln!("berth-oci: argument {a:?} is not UTF-8");
            return ExitCode::from(2);
        }
    };
    let cli = match cli::parse::<Vec<String>>(argv) {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("berth-oci {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let _guard = logging::init(cli.log.as_deref(), cli.log_format, cli.debug);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let msg = e.0;
            tracing::error!("{msg}");
            if !logging::logs_to_stderr() {
                eprintln!("berth-oci: {msg}");
            }
            ExitCode::from(1)
        }
    }
}

/// Whether the command line may run create, run or exec: anything but a command known not to
/// enter a container (so an unexpected spelling errs on the sealed side).
fn may_enter_container(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    const VALUE_FLAGS: &[&str] = &["--root", "--log", "--log-format", "--rootless", "--criu"];
    const SAFE: &[&str] = &[
        "state",
        "start",
        "kill",
        "delete",
        "ps",
        "list",
        "pause",
        "resume",
        "update",
        "events",
        "features",
        "spec",
        "help",
        "--help",
        "-h",
        "--version",
        "-V",
        "-v",
    ];
    let mut skip_value = false;
    for arg in args {
        let Some(arg) = arg.to_str() else { return true };
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if VALUE_FLAGS.contains(&arg) {
            skip_value = true;
        } else if arg.starts_with('-') && !SAFE.contains(&arg) {
            continue;
        } else {
            return !SAFE.contains(&arg);
        }
    }
    true
}

fn dispatch(cli: Cli) -> CliResult<i32> {
    let rt = Runtime {
        root: cli.root.clone(),
        systemd_cgroup: cli.systemd_cgroup,
    };
    match cli.cmd {
        Cmd::Create { id, args } => {
            ops::create::create(&rt, &id, &args.options())?;
        }
        Cmd::Start { id } => ops::start::start(&rt, &id)?,
        Cmd::Run {
            id,
            args,
            detach,
            keep,
        } => {
            let opts = ops::run::RunOptions {
                create: args.options(),
                detach,
                keep,
            };
            return Ok(ops::run::run(&rt, &id, &opts)?);
        }
        Cmd::State { id } => println!(
            "{}",
            serde_json::to_string_pretty(&ops::state::state(&rt, &id)?)?
        ),
        Cmd::Kill { id, signal, all } => {
            let sig = ops::kill::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            ops::kill::kill(&rt, &id, sig, all)?;
        }
        Cmd::Delete { id, force } => ops::delete::delete(&rt, &id, force)?,
        Cmd::Exec(args) => return exec(&rt, args),
        Cmd::Ps {
            id,
            format,
            ps_args,
        } => ps(&rt, &id, &format, ps_args)?,
        Cmd::List { format, quiet } => list(&rt, &format, quiet)?,
        Cmd::Pause { id } => ops::pause::pause(&rt, &id)?,
        Cmd::Resume { id } => ops::pause::resume(&rt, &id)?,
        Cmd::Update(args) => update(&rt, args)?,
        Cmd::Events {
            id,
            stats,
            interval,
        } => {
            if stats {
                println!("{}", ops::events::stats(&rt, &id)?);
            } else {
                ops::events::watch(&rt, &id, interval, |ev| println!("{ev}"))?;
            }
        }
        Cmd::Features => println!(
            "{}",
            serde_json::to_string_pretty(&ops::features::features())?
        ),
        Cmd::Spec { bundle } => ops::spec::write_default(&bundle)?,
    }
    Ok(0)
}

fn exec(rt: &Runtime, a: ExecArgs) -> CliResult<i32> {
    let process = match &a.process {
        Some(path) => {
            let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
            let de = &mut serde_json::Deserializer::from_slice(&data);
            serde_path_to_error::deserialize(de)
                .with_context(|| format!("parse {}", path.display()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec needs a command or --process");
            }
            let c = berth_executor::state::Container::load(&rt.root, &a.id)?;
            let mut p = c.record.spec.process().clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            if let Some(cwd) = &a.cwd {
                p.set_cwd(cwd.clone());
            }
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(a.env.iter().cloned());
            p.set_env(Some(env));
            if let Some(u) = &a.user {
                let mut user = p.user().clone();
                let (uid, gid) = u
                    .split_once(':')
                    .map(|(u, g)| (u, Some(g)))
                    .unwrap_or((u, None));
                user.set_uid(
                    uid.parse()
                        .with_context(|| format!("--user {u}: uid must be numeric"))?,
                );
                if let Some(g) = gid {
                    user.set_gid(
                        g.parse()
                            .with_context(|| format!("--user {u}: gid must be numeric"))?,
                    );
                }
                p.set_user(user);
            }
            if !a.additional_gids.is_empty() {
                let mut user = p.user().clone();
                user.set_additional_gids(Some(a.additional_gids.clone()));
                p.set_user(user);
            }
            if !a.cap.is_empty() {
                let mut caps = p.capabilities().clone().unwrap_or_default();
                for name in &a.cap {
                    let cap: oci_spec::runtime::Capability = serde_json::from_value(
                        serde_json::Value::String(name.to_ascii_uppercase()),
                    )
                    .with_context(|| format!("--cap {name}: unknown capability"))?;
                    let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                        let mut set = set.clone().unwrap_or_default();
                        set.insert(cap);
                        Some(set)
                    };
                    caps.set_bounding(add(caps.bounding()));
                    caps.set_effective(add(caps.effective()));
                    caps.set_permitted(add(caps.permitted()));
                }
                p.set_capabilities(Some(caps));
            }
            if a.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            p
        }
    };
    let opts = ops::exec::ExecOptions {
        process,
        detach: a.detach,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        preserve_fds: a.preserve_fds,
    };
    Ok(ops::exec::exec(rt, &a.id, &opts)?)
}

fn ps(rt: &Runtime, id: &str, format: &str, ps_args: Vec<String>) -> CliResult<()> {
    let pids = ops::ps::pids(rt, id)?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args = if ps_args.is_empty() {
                vec!["-ef".to_owned()]
            } else {
                ps_args
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            println!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{line}");
                }
            }
        }
        other => bail!("unknown format {other:?} (table or json)"),
    }
    Ok(())
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> CliResult<()> {
    let all = ops::list::list(rt)?;
    if quiet {
        for c in &all {
            println!("{}", c["id"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    match format {
        "json" => println!("{}", serde_json::to_string(&all)?),
        "table" => {
            println!(
                "{:<12} {:<10} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for c in &all {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                println!(
                    "{:<12} {:<10} {:<10} {:<40} {:<32} {}",
                    s("id"),
                    c["pid"],
                    s("status"),
                    s("bundle"),
                    s("created"),
                    s("owner")
                );
            }
        }
        other => bail!("unknown format {other:?} (table or json)"),
    }
    Ok(())
}

fn update(rt: &Runtime, a: UpdateArgs) -> CliResult<()> {
    use oci_spec::runtime::LinuxResources;
    let mut r: LinuxResources = match &a.resources {
        Some(p) => {
            let mut data = Vec::new();
            if p.as_os_str() == "-" {
                std::io::stdin().read_to_end(&mut data)?;
            } else {
                data = std::fs::read(p).with_context(|| format!("read {}", p.display()))?;
            }
            let de = &mut serde_json::Deserializer::from_slice(&data);
            serde_path_to_error::deserialize(de).context("parse resources")?
        }
        None => {
            let c = berth_executor::state::Container::load(&rt.root, &a.id)?;
            c.record
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.resources().clone())
                .unwrap_or_default()
        }
    };
    if a.memory.is_some() || a.memory_reservation.is_some() || a.memory_swap.is_some() {
        let mut m = r.memory().unwrap_or_default();
        if let Some(v) = a.memory {
            m.set_limit(Some(v));
        }
        if let Some(v) = a.memory_reservation {
            m.set_reservation(Some(v));
        }
        if let Some(v) = a.memory_swap {
            m.set_swap(Some(v));
        }
        r.set_memory(Some(m));
    }
    if a.cpu_shares.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_period.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some()
    {
        let mut c = r.cpu().clone().unwrap_or_default();
        if let Some(v) = a.cpu_shares {
            c.set_shares(Some(v));
        }
        if let Some(v) = a.cpu_quota {
            c.set_quota(Some(v));
        }
        if let Some(v) = a.cpu_period {
            c.set_period(Some(v));
        }
        if let Some(v) = &a.cpuset_cpus {
            c.set_cpus(Some(v.clone()));
        }
        if let Some(v) = &a.cpuset_mems {
            c.set_mems(Some(v.clone()));
        }
        r.set_cpu(Some(c));
    }
    if let Some(v) = a.pids_limit {
        let mut p = r.pids().unwrap_or_default();
        p.set_limit(v);
        r.set_pids(Some(p));
    }
    if let Some(v) = a.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(v));
        r.set_block_io(Some(b));
    }
    ops::update::update(rt, &a.id, &r)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::may_enter_container;

    fn check(line: &str) -> bool {
        may_enter_container(line.split_whitespace().map(Into::into))
    }

    #[test]
    fn only_commands_known_not_to_enter_a_container_skip_sealing() {
        assert!(check("run x"));
        assert!(check("--root /a/state create --bundle b x"));
        assert!(check("--debug exec -t x sh"));
        assert!(
            check("--root state run x"),
            "a flag value named like a safe command"
        );
        assert!(check("frobnicate"), "unknown commands are sealed too");
        assert!(!check("--root /r state x"));
        assert!(!check("--log=/l kill x 9"));
        assert!(!check("--version"));
    }
}
