//! `port-forward`: needs the runtime's streaming server (SPDY), which this berthctl does
//! not speak yet; it says so instead of pretending.

use crate::client::Ctx;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod id
    pod_id: String,
    /// Ports: [local:]remote
    #[arg(required = true)]
    ports: Vec<String>,
}

pub async fn run(_ctx: &mut Ctx, _args: Args) -> Result<(), Error> {
    Err(Error::Unsupported {
        what: "port-forward",
        why: "it needs the SPDY streaming client",
    })
}
