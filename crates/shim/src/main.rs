//! berth-shim: see docs/shim.md.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;

use berth_shim::server::runtime::Runtime;
use berth_shim::server::{self, Config, Shim, files};

const USAGE: &str = "\
usage: berth-shim --id ID --bundle DIR [options]

  --id ID               container id, as given to the runtime
  --bundle DIR          OCI bundle directory
  --state-dir DIR       the shim's directory (socket, exit status); default /run/berth/shims/<id>
  --log-path FILE       the container's CRI log file
  --runtime BIN         runc-compatible runtime (default berth-oci)
  --runtime-root DIR    the runtime's --root (default /run/berth-oci)
  --stdin               give the container a stdin pipe
  --foreground          no new session, no detach
  --log-level LEVEL     error, warn, info (default), debug, trace
  --log-format FORMAT   text (default) or json, for the shim's own log (shim.log)
";

/// The command line. Parsed by hand: clap's code is a fifth of the shim's resident size.
#[derive(Debug)]
struct Args {
    id: String,
    bundle: PathBuf,
    state_dir: Option<PathBuf>,
    log_path: Option<PathBuf>,
    runtime: PathBuf,
    runtime_root: PathBuf,
    stdin: bool,
    foreground: bool,
    log_level: tracing::Level,
    log_json: bool,
    daemon_child: bool,
}

impl Args {
    fn parse(argv: impl IntoIterator<Item = OsString>) -> anyhow::Result<Args> {
        let mut id = None;
        let mut bundle = None;
        let mut a = Args {
            id: String::new(),
            bundle: PathBuf::new(),
            state_dir: None,
            log_path: None,
            runtime: PathBuf::from("berth-oci"),
            runtime_root: PathBuf::from("/run/berth-oci"),
            stdin: false,
            foreground: false,
            log_level: tracing::Level::INFO,
            log_json: false,
            daemon_child: false,
        };
        let mut it = argv.into_iter();
        while let Some(arg) = it.next() {
            let arg = arg
                .into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not UTF-8"))?;
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(OsString::from(v))),
                _ => (arg, None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))
            };
            match flag.as_str() {
                "--id" => id = Some(value("--id")?.to_string_lossy().into_owned()),
                "--bundle" => bundle = Some(PathBuf::from(value("--bundle")?)),
                "--state-dir" => a.state_dir = Some(PathBuf::from(value("--state-dir")?)),
                "--log-path" => a.log_path = Some(PathBuf::from(value("--log-path")?)),
                "--runtime" => a.runtime = PathBuf::from(value("--runtime")?),
                "--runtime-root" => a.runtime_root = PathBuf::from(value("--runtime-root")?),
                "--log-level" => {
                    let v = value("--log-level")?;
                    a.log_level = v
                        .to_string_lossy()
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--log-level: unknown level {v:?}"))?;
                }
                "--log-format" => {
                    a.log_json = match value("--log-format")?.to_str() {
                        Some("text") => false,
                        Some("json") => true,
                        v => anyhow::bail!("--log-format: {v:?} is neither text nor json"),
                    }
                }
                "--stdin" => a.stdin = true,
                "--foreground" => a.foreground = true,
                "--daemon-child" => a.daemon_child = true,
                "-h" | "--help" => {
                    print!("{USAGE}");
                    std::process::exit(0);
                }
                "-V" | "--version" => {
                    println!("berth-shim {}", env!("CARGO_PKG_VERSION"));
                    std::process::exit(0);
                }
                other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        a.id = id.ok_or_else(|| anyhow::anyhow!("--id is required\n{USAGE}"))?;
        a.bundle = bundle.ok_or_else(|| anyhow::anyhow!("--bundle is required\n{USAGE}"))?;
        Ok(a)
    }
}

fn main() -> ExitCode {
    let mut args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            return ExitCode::from(2);
        }
    };
    // The daemon leaves its starter's working directory (and the mount it pins) behind.
    for p in [&mut args.bundle, &mut args.runtime_root] {
        if let Ok(abs) = std::path::absolute(&*p) {
            *p = abs;
        }
    }
    for p in [&mut args.state_dir, &mut args.log_path]
        .into_iter()
        .flatten()
    {
        if let Ok(abs) = std::path::absolute(&*p) {
            *p = abs;
        }
    }
    if args.runtime.components().count() > 1
        && let Ok(abs) = std::path::absolute(&args.runtime)
    {
        args.runtime = abs;
    }
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/run/berth/shims").join(&args.id));
    // Nothing of the starter's (listening sockets, files) may reach the runtime or container.
    if let Err(e) = berth_shim::sys::cloexec_from_3() {
        eprintln!("berth-shim: close_range: {e}");
        return ExitCode::FAILURE;
    }
    let result = if args.foreground || args.daemon_child {
        serve(&args, state_dir)
    } else {
        detach(&state_dir)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = serde_json::json!({"ok": false, "error": format!("{e:#}")});
            println!("{line}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the shim again as a daemon in its own session and relays its ready line.
fn detach(state_dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("create {}", state_dir.display()))?;
    let log = files::shim_log(state_dir);
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("open {}", log.display()))?;
    let exe = std::env::current_exe().context("current_exe")?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--daemon-child")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .context("spawn the shim daemon")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line).ok();
    }
    if line.is_empty() {
        let status = child.wait().ok();
        anyhow::bail!("shim daemon exited ({status:?}); see {}", log.display());
    }
    print!("{line}");
    let ok = serde_json::from_str::<serde_json::Value>(&line)
        .ok()
        .and_then(|v| v["ok"].as_bool())
        .unwrap_or(false);
    if ok {
        // The daemon is reparented to a subreaper or init once this process exits.
        Ok(())
    } else {
        let _ = child.wait();
        std::process::exit(1)
    }
}

fn serve(args: &Args, state_dir: PathBuf) -> anyhow::Result<()> {
    if args.daemon_child {
        nix::unistd::setsid().context("setsid")?;
        std::env::set_current_dir("/").context("chdir /")?;
    }
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    berth_shim::logging::StderrLog::install(args.log_level, args.log_json);
    let signals = server::block_sigchld()?;
    let cfg = Config {
        id: args.id.clone(),
        bundle: args.bundle.clone(),
        state_dir: state_dir.clone(),
        log_path: args.log_path.clone(),
        runtime: Runtime {
            binary: args.runtime.clone(),
            root: args.runtime_root.clone(),
        },
        stdin: args.stdin,
    };
    let shim = Shim::create(cfg, signals)?;
    let shim_pid = std::process::id();
    let pid_file = files::shim_pid(&state_dir);
    files::write_atomic(&pid_file, shim_pid.to_string().as_bytes())?;
    let line = serde_json::json!({"ok": true, "shim_pid": shim_pid, "pid": shim.container_pid()});
    let mut out = std::io::stdout();
    writeln!(out, "{line}").context("write ready line")?;
    out.flush().ok();
    if args.daemon_child {
        // The starter stops reading after the ready line.
        let null = std::fs::File::open("/dev/null").context("open /dev/null")?;
        rustix::stdio::dup2_stdout(&null).context("stdout to /dev/null")?;
    }
    shim.run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Args> {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_take_values_separately_or_after_equals() {
        let a = parse(&[
            "--id",
            "c1",
            "--bundle=/b",
            "--runtime",
            "runc",
            "--stdin",
            "--log-format",
            "json",
            "--log-level=debug",
        ])
        .unwrap();
        assert_eq!(a.id, "c1");
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert_eq!(a.runtime, PathBuf::from("runc"));
        assert_eq!(a.runtime_root, PathBuf::from("/run/berth-oci"));
        assert!(a.stdin && a.log_json && !a.foreground);
        assert_eq!(a.log_level, tracing::Level::DEBUG);
    }

    #[test]
    fn missing_or_unknown_arguments_are_errors() {
        assert!(
            parse(&["--bundle", "/b"])
                .unwrap_err()
                .to_string()
                .contains("--id")
        );
        assert!(parse(&["--id", "x", "--bundle", "/b", "--bogus"]).is_err());
        assert!(parse(&["--id", "x", "--bundle"]).is_err());
        assert!(parse(&["--id", "x", "--bundle", "/b", "--log-format", "xml"]).is_err());
    }
}
