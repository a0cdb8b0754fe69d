//! `rmi`: remove images (RemoveImage) by name or id, all of them, or those no container
//! uses (`--prune`).

use std::collections::HashSet;

use berth_api::runtime::v1::{
    Image, ImageSpec, ImageStatusRequest, ListContainersRequest, ListImagesRequest,
    RemoveImageRequest,
};

use crate::client::Ctx;
use crate::error::Error;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image names or ids
    images: Vec<String>,
    /// Remove all images (pinned ones are kept)
    #[arg(short, long)]
    all: bool,
    /// Remove the images no container uses (pinned ones are kept)
    #[arg(short = 'q', long)]
    prune: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    if args.images.is_empty() && !args.all && !args.prune {
        return Err(Error::Usage(
            "rmi: give image names or ids, --all or --prune".into(),
        ));
    }
    let mut img = ctx.image().await?;
    let mut targets: Vec<Image> = Vec::new();
    if args.all || args.prune {
        let list = ctx
            .call("ListImages", img.list_images(ListImagesRequest::default()))
            .await?;
        let used = if args.prune {
            let mut rt = ctx.runtime().await?;
            let cs = ctx
                .call(
                    "ListContainers",
                    rt.list_containers(ListContainersRequest::default()),
                )
                .await?;
            cs.containers
                .into_iter()
                .flat_map(|c| {
                    [
                        c.image_ref,
                        c.image_id,
                        c.image.map(|i| i.image).unwrap_or_default(),
                    ]
                })
                .collect()
        } else {
            HashSet::new()
        };
        targets.extend(
            list.images
                .into_iter()
                .filter(|i| !i.pinned && !in_use(i, &used)),
        );
    }
    for name in &args.images {
        let res = ctx
            .call(
                "ImageStatus",
                img.image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: name.clone(),
                        ..Default::default()
                    }),
                    verbose: false,
                }),
            )
            .await?;
        match res.image {
            Some(i) => targets.push(i),
            None => return Err(Error::Usage(format!("no such image {name:?}"))),
        }
    }
    let mut done = HashSet::new();
    for image in targets {
        if !done.insert(image.id.clone()) {
            continue;
        }
        ctx.call(
            "RemoveImage",
            img.remove_image(RemoveImageRequest {
                image: Some(ImageSpec {
                    image: image.id.clone(),
                    ..Default::default()
                }),
            }),
        )
        .await?;
        if image.repo_tags.is_empty() {
            println!("Deleted: {}", image.id);
        }
        for tag in &image.repo_tags {
            println!("Deleted: {tag}");
        }
    }
    Ok(())
}

/// Whether a container refers to the image by id, tag or digest.
fn in_use(image: &Image, used: &HashSet<String>) -> bool {
    used.contains(&image.id)
        || image.repo_tags.iter().any(|t| used.contains(t))
        || image.repo_digests.iter().any(|d| used.contains(d))
}
