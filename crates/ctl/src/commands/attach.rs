//! `attach`: needs the runtime's streaming server (SPDY), which this berthctl does not
//! speak yet; it says so instead of pretending.

use crate::client::Ctx;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id
    id: String,
    /// Keep stdin open
    #[arg(short, long)]
    stdin: bool,
    /// The container has a terminal
    #[arg(short, long)]
    tty: bool,
}

pub async fn run(_ctx: &mut Ctx, _args: Args) -> Result<(), Error> {
    Err(Error::Unsupported {
        what: "attach",
        why: "it needs the SPDY streaming client",
    })
}
