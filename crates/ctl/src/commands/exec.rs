//! `exec`: run a command in a running container. As with crictl, it goes through Exec and
//! the runtime's streaming server (SPDY) unless `-s` asks for ExecSync; `-i` sends local
//! stdin, `-t` allocates a terminal (the local one is put in raw mode and its size follows).

use std::io::Write;
use std::time::Duration;

use berth_api::runtime::v1::{ExecRequest, ExecSyncRequest};

use crate::client::Ctx;
use crate::commands::resolve_containers;
use crate::error::Error;
use crate::stream::{Streams, remotecommand};

#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct Args {
    /// Run synchronously through ExecSync
    #[arg(short, long)]
    sync: bool,
    /// Send local stdin to the command
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal
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
    if args.sync && (args.interactive || args.tty) {
        return Err(Error::Usage(
            "exec: -s runs through ExecSync, which has no stdin or terminal; drop -i/-t or -s"
                .into(),
        ));
    }
    let id = resolve_containers(ctx, std::slice::from_ref(&args.id))
        .await?
        .remove(0);
    let mut rt = ctx.runtime().await?;
    if !args.sync {
        let url = ctx
            .call(
                "Exec",
                rt.exec(ExecRequest {
                    container_id: id,
                    cmd: args.cmd,
                    tty: args.tty,
                    stdin: args.interactive,
                    stdout: true,
                    stderr: !args.tty,
                }),
            )
            .await?
            .url;
        return remotecommand(
            &url,
            Streams {
                stdin: args.interactive,
                tty: args.tty,
            },
        )
        .await;
    }
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
