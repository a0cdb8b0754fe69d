//! `exec`: run a command in a running container. `-s` (and plain non-interactive use)
//! goes through ExecSync; `-i`/`-t` need the runtime's streaming server, which this
//! berthctl does not speak yet.

use std::io::Write;
use std::time::Duration;

use berth_api::runtime::v1::ExecSyncRequest;

use crate::client::Ctx;
use crate::commands::resolve_containers;
use crate::error::Error;

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Run synchronously through ExecSync
    #[arg(short, long)]
    sync: bool,
    /// Keep stdin open (needs the streaming server)
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal (needs the streaming server)
    #[arg(short, long)]
    tty: bool,
    /// Seconds to let the command run (0: no limit)
    #[arg(long, default_value_t = 0)]
    timeout: i64,
    /// Container id (or unique prefix)
    id: String,
    /// The command and its arguments
    #[arg(required = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    if !args.sync && (args.interactive || args.tty) {
        return Err(Error::Unsupported {
            what: "exec -i/-t",
            why: "interactive exec needs the SPDY streaming client; use exec -s for a command without input",
        });
    }
    let id = resolve_containers(ctx, std::slice::from_ref(&args.id))
        .await?
        .remove(0);
    let mut rt = ctx.runtime().await?;
    let limit = (args.timeout > 0).then(|| {
        Duration::from_secs(args.timeout as u64) + ctx.cfg.timeout + Duration::from_secs(5)
    });
    let res = ctx
        .call_within(
            "ExecSync",
            limit,
            rt.exec_sync(ExecSyncRequest {
                container_id: id,
                cmd: args.cmd,
                timeout: args.timeout,
            }),
        )
        .await?;
    std::io::stdout().write_all(&res.stdout)?;
    std::io::stdout().flush()?;
    std::io::stderr().write_all(&res.stderr)?;
    if res.exit_code != 0 {
        return Err(Error::Exit(res.exit_code));
    }
    Ok(())
}
