//! `runtime.v1.ImageService`: one file per RPC, named after it.

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::runtime::v1::*;
use berth_image::{ImageRecord, PullConfig, Puller, Reference, Snapshotter, Store};
use tracing::info;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

mod image_fs_info;
mod image_status;
mod list_images;
mod pull_image;
mod remove_image;
mod stream_images;

pub use berth_api::runtime::v1::image_service_server::ImageServiceServer;

/// The image service: the RPCs over berthd's one image store. The snapshotter is shared
/// with the runtime side (containers' rootfs); the image service only asks it which
/// layers are in use, so that garbage collection after RemoveImage keeps them.
pub struct ImageService {
    config: Arc<Config>,
    store: Arc<Store>,
    snapshots: Arc<Snapshotter>,
    puller: Puller,
    metrics: Arc<Metrics>,
}

impl ImageService {
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        snapshots: Arc<Snapshotter>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let registry = &config.registry;
        let puller = Puller::new(
            store.clone(),
            PullConfig {
                plain_http: registry.plain_http.clone(),
                max_concurrent_downloads: registry.max_concurrent_downloads.max(1),
                hosts_dir: Some(registry.config_path.clone()),
                docker_config: registry.docker_config.clone(),
                ..Default::default()
            },
        );
        ImageService {
            config,
            store,
            snapshots,
            puller,
            metrics,
        }
    }

    /// Pins the stored images named in `[registry] pinned_images` (berthd start).
    pub fn pin_configured(&self) -> Result<()> {
        for name in &self.config.registry.pinned_images {
            if let Some(record) = self.store.set_pinned(name, true)? {
                info!(image = %name, image_id = %record.id, "image pinned");
            }
        }
        Ok(())
    }

    /// Whether `[registry] pinned_images` names `reference` (compared normalized).
    fn is_pinned(&self, reference: &Reference) -> bool {
        let wanted = reference.to_string();
        self.config
            .registry
            .pinned_images
            .iter()
            .filter_map(|name| name.parse::<Reference>().ok())
            .any(|r| r.to_string() == wanted)
    }

    /// Finds an image by the name a CRI `ImageSpec` gives (id, tag or digest, any form).
    fn find(&self, spec: Option<&ImageSpec>) -> Result<Option<ImageRecord>> {
        let name = image_name(spec)?;
        Ok(self.store.status(name)?)
    }
}

/// The `image` of a request's `ImageSpec`, which must be given.
fn image_name(spec: Option<&ImageSpec>) -> Result<&str> {
    match spec.map(|s| s.image.as_str()) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(Error::InvalidArgument(
            "image spec: image name is empty".into(),
        )),
    }
}

/// An image record as the CRI shows it. The config's `User` gives `uid` when numeric
/// (`1000` or `1000:1000`), else `username`.
fn to_cri(record: &ImageRecord) -> Image {
    let user = record.config.user.as_deref().unwrap_or("");
    let user = user.split(':').next().unwrap_or("");
    let (uid, username) = match user.parse::<i64>() {
        Ok(uid) => (Some(Int64Value { value: uid }), String::new()),
        Err(_) => (None, user.to_string()),
    };
    Image {
        id: record.id.to_string(),
        repo_tags: record.repo_tags.clone(),
        repo_digests: record.repo_digests.clone(),
        size: record.size,
        uid,
        username,
        spec: Some(ImageSpec {
            image: record.id.to_string(),
            annotations: HashMap::new(),
            ..Default::default()
        }),
        pinned: record.pinned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: Option<&str>) -> ImageRecord {
        ImageRecord {
            version: 1,
            id: berth_image::Digest::of(b"config"),
            repo_tags: vec!["docker.io/library/busybox:latest".into()],
            repo_digests: vec![],
            size: 42,
            layers: vec![],
            blobs: vec![],
            config: berth_image::ImageConfig {
                user: user.map(str::to_string),
                ..Default::default()
            },
            pinned: false,
        }
    }

    #[test]
    fn user_becomes_uid_or_username() {
        let img = to_cri(&record(Some("1000:1000")));
        assert_eq!(img.uid, Some(Int64Value { value: 1000 }));
        assert_eq!(img.username, "");
        let img = to_cri(&record(Some("nobody")));
        assert_eq!((img.uid, img.username.as_str()), (None, "nobody"));
        let img = to_cri(&record(None));
        assert_eq!((img.uid, img.username.as_str()), (None, ""));
        assert_eq!(img.id, img.spec.unwrap().image);
        assert_eq!(img.size, 42);
    }
}

cri_service! {
    impl image_service_server::ImageService => ImageService;
    prefix "runtime.v1.ImageService";
    unary {
        "ListImages" => list_images(ListImagesRequest) -> ListImagesResponse;
        "ImageStatus" => image_status(ImageStatusRequest) -> ImageStatusResponse;
        "PullImage" => pull_image(PullImageRequest) -> PullImageResponse;
        "RemoveImage" => remove_image(RemoveImageRequest) -> RemoveImageResponse;
        "ImageFsInfo" => image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse;
    }
    streaming {
        "StreamImages" => stream_images(StreamImagesRequest)
            -> StreamImagesStream<StreamImagesResponse>;
    }
}
