//! `info`: the runtime's conditions and verbose information (Status with verbose).

use berth_api::runtime::v1::StatusRequest;

use crate::client::Ctx;
use crate::commands::info_value;
use crate::error::Error;
use crate::output::{Format, print_value};
use crate::protojson::{to_json, to_json_list};

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
    obj.insert("status".into(), to_json(&res.status, "RuntimeStatus"));
    if !res.runtime_handlers.is_empty() {
        obj.insert(
            "runtimeHandlers".into(),
            to_json_list(&res.runtime_handlers, "RuntimeHandler"),
        );
    }
    if let Some(features) = &res.features {
        obj.insert("features".into(), to_json(features, "RuntimeFeatures"));
    }
    print_value(&out, args.output)
}
