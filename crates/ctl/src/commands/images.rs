//! `images`: list images (ListImages) as IMAGE, TAG, (DIGEST,) IMAGE ID, SIZE.

use berth_api::runtime::v1::{Image, ImageFilter, ImageSpec, ListImagesRequest};
use serde_json::Value;

use crate::client::Ctx;
use crate::error::Error;
use crate::output::{Format, Table, human_size, print_value, trunc_id};
use crate::protojson::to_json_list;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only images matching this reference
    image: Option<String>,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Show ids in full
    #[arg(long)]
    no_trunc: bool,
    /// Only print image ids
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
    /// Add a PINNED column
    #[arg(long)]
    pinned: bool,
}

pub async fn run(ctx: &mut Ctx, args: Args) -> Result<(), Error> {
    let mut img = ctx.image().await?;
    let res = ctx
        .call(
            "ListImages",
            img.list_images(ListImagesRequest {
                filter: args.image.as_ref().map(|i| ImageFilter {
                    image: Some(ImageSpec {
                        image: i.clone(),
                        ..Default::default()
                    }),
                }),
            }),
        )
        .await?;
    let mut images = res.images;
    images.sort_by(|a, b| a.repo_tags.first().cmp(&b.repo_tags.first()));
    if args.quiet {
        for i in &images {
            println!("{}", i.id);
        }
        return Ok(());
    }
    match args.output {
        Format::Table => table(&images, args.digests, args.pinned, args.no_trunc).print(),
        f => print_value(
            &Value::Object(
                [("images".to_string(), to_json_list(&images, "Image"))]
                    .into_iter()
                    .collect(),
            ),
            f,
        ),
    }
}

/// `repo:tag` split at the last colon after the last slash (a registry port is not a tag).
pub fn split_tag(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "<none>"),
    }
}

fn digest_of(image: &Image, repo: &str) -> String {
    image
        .repo_digests
        .iter()
        .find_map(|d| {
            d.split_once('@')
                .filter(|(r, _)| *r == repo)
                .map(|(_, d)| d)
        })
        .or_else(|| {
            image
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(_, d)| d)
        })
        .map(|d| d.to_string())
        .unwrap_or_else(|| "<none>".to_string())
}

pub fn table(images: &[Image], digests: bool, pinned: bool, no_trunc: bool) -> Table {
    let mut header = vec!["IMAGE", "TAG"];
    if digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "SIZE"]);
    if pinned {
        header.push("PINNED");
    }
    let mut t = Table::new(&header);
    for image in images {
        // One row per tag; an untagged image shows its digest repository and <none>.
        let mut names: Vec<(String, String)> = image
            .repo_tags
            .iter()
            .map(|r| {
                let (repo, tag) = split_tag(r);
                (repo.to_string(), tag.to_string())
            })
            .collect();
        if names.is_empty() {
            let repo = image
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(r, _)| r.to_string())
                .unwrap_or_else(|| "<none>".into());
            names.push((repo, "<none>".into()));
        }
        for (repo, tag) in names {
            let mut row = vec![repo.clone(), tag];
            if digests {
                let d = digest_of(image, &repo);
                row.push(if d == "<none>" {
                    d
                } else {
                    trunc_id(&d, no_trunc)
                });
            }
            row.push(trunc_id(&image.id, no_trunc));
            row.push(human_size(image.size as f64, 3));
            if pinned {
                row.push(image.pinned.to_string());
            }
            t.row(row);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_registry_port() {
        assert_eq!(
            split_tag("127.0.0.1:5000/test/busybox:1"),
            ("127.0.0.1:5000/test/busybox", "1")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/test/busybox"),
            ("127.0.0.1:5000/test/busybox", "<none>")
        );
        assert_eq!(split_tag("busybox:latest"), ("busybox", "latest"));
    }

    #[test]
    fn images_table_shows_a_row_per_tag_with_digests() {
        let image = Image {
            id: format!("sha256:{}", "12".repeat(32)),
            repo_tags: vec!["r.io/a:1".into(), "r.io/a:2".into()],
            repo_digests: vec![format!("r.io/a@sha256:{}", "cd".repeat(32))],
            size: 1_468_006,
            ..Default::default()
        };
        let out = table(&[image], true, false, false).render();
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| {
                l.split("   ")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(lines[0], ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"]);
        assert_eq!(
            lines[1],
            ["r.io/a", "1", "cdcdcdcdcdcdc", "1212121212121", "1.47MB"]
        );
        assert_eq!(lines[2][1], "2");
    }
}
