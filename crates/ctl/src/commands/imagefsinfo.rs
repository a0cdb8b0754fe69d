//! `imagefsinfo`: the image and container filesystems' usage (ImageFsInfo).

use berth_api::runtime::v1::ImageFsInfoRequest;

use crate::client::Ctx;
use crate::error::Error;
use crate::output::{Format, print_value};
use crate::protojson::to_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json or yaml
    #[arg(short, long, value_enum, default_value = "json")]
    output: Format,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let mut img = ctx.image().await?;
    let res = ctx
        .call(
            "ImageFsInfo",
            img.image_fs_info(ImageFsInfoRequest::default()),
        )
        .await?;
    // crictl's shape: the response under "status".
    print_value(
        &serde_json::json!({ "status": to_json(&res, "ImageFsInfoResponse") }),
        args.output,
    )
}
