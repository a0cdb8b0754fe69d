//! berth-shim: see docs/shim.md.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;
use clap::Parser;

use berth_shim::server::runtime::Runtime;
use berth_shim::server::{self, Config, Shim, files};

#[derive(Parser, Debug)]
#[command(
    name = "berth-shim",
    version,
    about = "berth's per-container supervisor"
)]
struct Args {
    /// Container id, as given to the runtime.
    #[arg(long)]
    id: String,
    /// OCI bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// The shim's own directory (socket, exit status); default /run/berth/shims/<id>.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The CRI log file of the container.
    #[arg(long)]
    log_path: Option<PathBuf>,
    /// The runc-compatible runtime binary.
    #[arg(long, default_value = "berth-oci")]
    runtime: PathBuf,
    /// The runtime's --root.
    #[arg(long, default_value = "/run/berth-oci")]
    runtime_root: PathBuf,
    /// Give the container a stdin pipe.
    #[arg(long)]
    stdin: bool,
    /// Stay in the foreground (no new session, no detach).
    #[arg(long)]
    foreground: bool,
    /// error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
    #[arg(long, hide = true)]
    daemon_child: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
    }
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(args.log_level)
        .init();
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
