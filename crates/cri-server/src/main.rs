//! berthd: the berth CRI daemon.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use berth_cri_server::config::{self, Config, LogFormat};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// berth's CRI v1 server: what the kubelet talks to.
#[derive(Debug, Parser)]
#[command(name = "berthd", version)]
struct Args {
    /// Config file (TOML). A missing file is fine at the default path only.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// CRI socket path.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Persistent state directory.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Volatile state directory.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Prints the full default configuration, every key commented out.
    Default,
    /// Checks a configuration file (default: --config, else /etc/berth/config.toml);
    /// names the bad key and its line.
    Check {
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
    },
}

impl Args {
    /// The config file, overlaid with the flags given on the command line.
    fn config(&self) -> anyhow::Result<Config> {
        let (path, explicit) = match &self.config {
            Some(path) => (path.clone(), true),
            None => (PathBuf::from(config::DEFAULT_CONFIG_PATH), false),
        };
        let mut cfg = Config::load(&path, explicit)?;
        if let Some(socket) = &self.socket {
            cfg.socket = socket.clone();
        }
        if let Some(root) = &self.root {
            cfg.root = root.clone();
        }
        if let Some(state) = &self.state {
            cfg.state = state.clone();
        }
        if let Some(level) = &self.log_level {
            cfg.log_level = level.clone();
        }
        if let Some(format) = self.log_format {
            cfg.log_format = format;
        }
        Ok(cfg)
    }
}

fn init_logging(cfg: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&cfg.log_level)
        .with_context(|| format!("invalid log_level {:?}", cfg.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cfg.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

/// Installs the SIGTERM and SIGINT handlers now, before the socket is bound (a handler
/// installed on the future's first poll would leave a window after the socket accepts in
/// which SIGTERM kills berthd outright), and returns what completes on the first of them.
/// Must be called inside the runtime.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!("cannot install signal handlers; only SIGKILL stops berthd");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "received"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "received"),
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, whatever RUST_BACKTRACE says: this is an operator-facing error.
            eprintln!("berthd: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_command(args: &Args, cmd: &ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Default => print!("{}", config::default_toml()),
        ConfigCommand::Check { path } => {
            let path = path
                .clone()
                .or_else(|| args.config.clone())
                .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG_PATH));
            config::check_file(&path)?;
            println!("{}: ok", path.display());
        }
    }
    Ok(())
}

fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::Config(cmd)) = &args.command {
        return config_command(&args, cmd);
    }
    let cfg = args.config()?;
    init_logging(&cfg)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "berthd starting");

    // One thread: berthd waits on sockets and child processes, and anything CPU-bound
    // (digests, layer unpacking) belongs in spawn_blocking anyway. Measured idle RSS
    // (debug build, this machine): current_thread 11.2 MB, multi_thread 12.4 MB with 2
    // workers, growing with cores. Release build, current_thread: 4.4 MB idle, 6.4 MB
    // after 16 MiB messages (containerd: 47.6 MB). The executor forks in its own
    // process, never here.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start tokio runtime")?;
    let shutdown = {
        let _entered = runtime.enter();
        shutdown_signal()
    };
    runtime.block_on(berth_cri_server::server::serve(Arc::new(cfg), shutdown))?;
    Ok(())
}
