//! `attach`: connects to a running container's main process through Attach and the
//! runtime's streaming server (SPDY). `-i` sends local stdin, `-t` says the container has a
//! terminal (as with crictl, the flag is given, not looked up). It ends when the runtime
//! ends the session: the container's output closed or the container exited.

use berth_api::runtime::v1::AttachRequest;

use crate::client::Ctx;
use crate::commands::resolve_containers;
use crate::error::Error;
use crate::stream::{Streams, remotecommand};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (or unique prefix)
    id: String,
    /// Send local stdin to the container
    #[arg(short = 'i', long)]
    stdin: bool,
    /// The container has a terminal
    #[arg(short, long)]
    tty: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let id = resolve_containers(ctx, std::slice::from_ref(&args.id))
        .await?
        .remove(0);
    let mut rt = ctx.runtime().await?;
    let url = ctx
        .call(
            "Attach",
            rt.attach(AttachRequest {
                container_id: id,
                stdin: args.stdin,
                tty: args.tty,
                stdout: true,
                stderr: !args.tty,
            }),
        )
        .await?
        .url;
    remotecommand(
        &url,
        Streams {
            stdin: args.stdin,
            tty: args.tty,
        },
    )
    .await
}
