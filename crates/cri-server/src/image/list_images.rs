//! ListImages: lists the images in the store.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ListImagesRequest, ListImagesResponse};

use super::ImageService;
use crate::error::{Error, Result};

impl ImageService {
    pub async fn list_images(&self, _request: ListImagesRequest) -> Result<ListImagesResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.ImageService/ListImages",
        })
    }
}
