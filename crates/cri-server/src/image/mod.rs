//! `runtime.v1.ImageService`: one file per RPC, named after it.

use std::sync::Arc;

use berth_api::runtime::v1::*;

use crate::config::Config;

mod image_fs_info;
mod image_status;
mod list_images;
mod pull_image;
mod remove_image;
mod stream_images;

pub use berth_api::runtime::v1::image_service_server::ImageServiceServer;

/// The image service: the RPCs over berthd's one image store.
pub struct ImageService {
    #[allow(dead_code)] // read by the RPCs once they are written
    config: Arc<Config>,
    #[allow(dead_code)]
    store: Arc<berth_image::Store>,
}

impl ImageService {
    pub fn new(config: Arc<Config>, store: Arc<berth_image::Store>) -> Self {
        ImageService { config, store }
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
