//! `inspecti`: image status with the runtime's verbose info (ImageStatus).

use berth_api::runtime::v1::{ImageSpec, ImageStatusRequest};
use serde_json::{Value, json};

use crate::client::Ctx;
use crate::commands::verbose_info;
use crate::error::Error;
use crate::output::{Format, print_value};
use crate::protojson::to_json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image names or ids
    #[arg(required = true)]
    images: Vec<String>,
    /// Output format: json or yaml
    #[arg(short, long, value_enum, default_value = "json")]
    output: Format,
    /// Only the status, without the runtime's info
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let mut img = ctx.image().await?;
    for image in args.images {
        let res = ctx
            .call(
                "ImageStatus",
                img.image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                    verbose: !args.quiet,
                }),
            )
            .await?;
        let Some(status) = res.image else {
            return Err(Error::Usage(format!("no such image {image:?}")));
        };
        let mut out: Value = json!({ "status": to_json(&status, "Image") });
        if !args.quiet {
            out["info"] = verbose_info(&res.info);
        }
        print_value(&out, args.output)?;
    }
    Ok(())
}
