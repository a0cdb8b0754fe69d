//! `version`: the runtime's name and versions (Version).

use berth_api::runtime::v1::VersionRequest;

use crate::client::Ctx;
use crate::error::Error;
use crate::output::{Format, print_value};
use crate::protojson::to_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json or yaml (default: crictl's plain lines)
    #[arg(short, long, value_enum)]
    output: Option<Format>,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let mut rt = ctx.runtime().await?;
    let v = ctx
        .call("Version", rt.version(VersionRequest::default()))
        .await?;
    match args.output {
        Some(f @ (Format::Json | Format::Yaml)) => print_value(&to_json(&v, "VersionResponse"), f),
        _ => {
            println!("Version:  {}", v.version);
            println!("RuntimeName:  {}", v.runtime_name);
            println!("RuntimeVersion:  {}", v.runtime_version);
            println!("RuntimeApiVersion:  {}", v.runtime_api_version);
            Ok(())
        }
    }
}
