//! berthctl: a CRI v1 command-line client with crictl's command names, flags and output
//! shapes. It speaks plain CRI, so it works against berthd, containerd or CRI-O alike.

mod client;
mod commands;
mod config;
mod error;
mod logs;
mod output;
mod protojson;
mod stream;
mod yaml;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::Ctx;
use crate::config::{FileConfig, Given};
use crate::error::Error;

/// Global options go before the command, as with crictl (`exec -i`/`-t` and `logs -t`
/// mean other things).
#[derive(Debug, Parser)]
#[command(
    name = "berthctl",
    version,
    about = "A crictl-compatible client for CRI runtimes (berthd first)"
)]
pub struct Cli {
    /// Runtime endpoint, e.g. unix:///run/berth/berth.sock [default: unix:///run/berth/berth.sock]
    #[arg(short = 'r', long, env = "CONTAINER_RUNTIME_ENDPOINT")]
    runtime_endpoint: Option<String>,
    /// Image endpoint [default: the runtime endpoint]
    #[arg(short = 'i', long, env = "IMAGE_SERVICE_ENDPOINT")]
    image_endpoint: Option<String>,
    /// crictl-style config file (runtime-endpoint, image-endpoint, timeout, debug)
    #[arg(short = 'c', long, default_value = config::DEFAULT_CONFIG)]
    config: PathBuf,
    /// Connection and per-call timeout: seconds, or a duration like 10s [default: 2s]
    #[arg(short = 't', long, value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Print each call and its response on stderr
    #[arg(short = 'D', long)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string()),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Display runtime version information
    Version(commands::version::Args),
    /// Display information of the container runtime
    Info(commands::info::Args),
    /// Run a new pod
    Runp(commands::runp::Args),
    /// Create a new container
    Create(commands::create::Args),
    /// Start one or more created containers
    Start(commands::start::Args),
    /// Run a new container inside a new pod
    Run(commands::run::Args),
    /// List pods
    Pods(commands::pods::Args),
    /// List containers
    Ps(commands::ps::Args),
    /// Display the status of one or more containers
    Inspect(commands::inspect::Args),
    /// Display the status of one or more pods
    Inspectp(commands::inspectp::Args),
    /// Return the status of one or more images
    Inspecti(commands::inspecti::Args),
    /// List images
    #[command(alias = "image", alias = "img")]
    Images(commands::images::Args),
    /// Pull an image from a registry
    Pull(commands::pull::Args),
    /// Remove one or more images
    Rmi(commands::rmi::Args),
    /// Return image filesystem info
    Imagefsinfo(commands::imagefsinfo::Args),
    /// Fetch the logs of a container
    #[command(alias = "log")]
    Logs(commands::logs::Args),
    /// Run a command in a running container
    Exec(commands::exec::Args),
    /// Attach to a running container
    Attach(commands::attach::Args),
    /// Forward local ports to a pod
    PortForward(commands::port_forward::Args),
    /// List container resource usage statistics
    Stats(commands::stats::Args),
    /// List pod resource usage statistics
    Statsp(commands::statsp::Args),
    /// Stop one or more running containers
    Stop(commands::stop::Args),
    /// Remove one or more containers
    Rm(commands::rm::Args),
    /// Stop one or more running pods
    Stopp(commands::stopp::Args),
    /// Remove one or more pods
    Rmp(commands::rmp::Args),
    /// Update one or more running containers
    Update(commands::update::Args),
    /// Stream the events of containers
    #[command(alias = "event")]
    Events(commands::events::Args),
    /// Output a shell completion script
    Completion(commands::completion::Args),
}

async fn dispatch(ctx: &mut Ctx, command: Command) -> Result<(), Error> {
    use commands::*;
    match command {
        Command::Version(a) => version::run(ctx, a).await,
        Command::Info(a) => info::run(ctx, a).await,
        Command::Runp(a) => runp::run(ctx, a).await,
        Command::Create(a) => create::run(ctx, a).await,
        Command::Start(a) => start::run(ctx, a).await,
        Command::Run(a) => run::run(ctx, a).await,
        Command::Pods(a) => pods::run(ctx, a).await,
        Command::Ps(a) => ps::run(ctx, a).await,
        Command::Inspect(a) => inspect::run(ctx, a).await,
        Command::Inspectp(a) => inspectp::run(ctx, a).await,
        Command::Inspecti(a) => inspecti::run(ctx, a).await,
        Command::Images(a) => images::run(ctx, a).await,
        Command::Pull(a) => pull::run(ctx, a).await,
        Command::Rmi(a) => rmi::run(ctx, a).await,
        Command::Imagefsinfo(a) => imagefsinfo::run(ctx, a).await,
        Command::Logs(a) => logs::run(ctx, a).await,
        Command::Exec(a) => exec::run(ctx, a).await,
        Command::Attach(a) => attach::run(ctx, a).await,
        Command::PortForward(a) => port_forward::run(ctx, a).await,
        Command::Stats(a) => stats::run(ctx, a).await,
        Command::Statsp(a) => statsp::run(ctx, a).await,
        Command::Stop(a) => stop::run(ctx, a).await,
        Command::Rm(a) => rm::run(ctx, a).await,
        Command::Stopp(a) => stopp::run(ctx, a).await,
        Command::Rmp(a) => rmp::run(ctx, a).await,
        Command::Update(a) => update::run(ctx, a).await,
        Command::Events(a) => events::run(ctx, a).await,
        Command::Completion(a) => completion::run(a),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let file = match FileConfig::load(&cli.config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("berthctl: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let given = Given {
        runtime_endpoint: cli.runtime_endpoint,
        image_endpoint: cli.image_endpoint,
        timeout: cli.timeout,
        debug: cli.debug,
    };
    let mut ctx = Ctx::new(config::resolve(&given, &file));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthctl: start tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(&mut ctx, cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Error::Exit(code)) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("berthctl: {}", anyhow::Error::from(e));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runtime_endpoint_flag_is_read() {
        let cli = Cli::try_parse_from(["berthctl", "-r", "unix:///x.sock", "pods"]).unwrap();
        assert_eq!(cli.runtime_endpoint.as_deref(), Some("unix:///x.sock"));
        let cli = Cli::try_parse_from(["berthctl", "--timeout", "5", "ps"]).unwrap();
        assert_eq!(cli.timeout, Some(Duration::from_secs(5)));
    }
}
