//! `info`: the runtime's conditions and verbose information (Status with verbose).

use berth_api::runtime::v1::StatusRequest;

use crate::client::Ctx;
use crate::commands::info_value;
use crate::error::Error;
use crate::output::{Format, print_value, to_value};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json or yaml
    #[arg(short, long, value_enum, default_value = "json")]
    output: Format,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let mut rt = ctx.runtime().await?;
    let res = ctx
        .call("Status", rt.status(StatusRequest { verbose: true }))
        .await?;
    // crictl's shape: "status" plus each info key at the top level.
    let mut out = info_value(&res.info);
    let obj = out.as_object_mut().expect("info_value gives an object");
    obj.insert("status".into(), to_value(&res.status));
    if !res.runtime_handlers.is_empty() {
        obj.insert("runtimeHandlers".into(), to_value(&res.runtime_handlers));
    }
    if let Some(features) = &res.features {
        obj.insert("features".into(), to_value(features));
    }
    print_value(&out, args.output)
}
