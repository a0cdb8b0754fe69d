//! RemoveImage: removes an image. Idempotent.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{RemoveImageRequest, RemoveImageResponse};

use super::ImageService;
use crate::error::{Error, Result};

impl ImageService {
    pub async fn remove_image(&self, _request: RemoveImageRequest) -> Result<RemoveImageResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.ImageService/RemoveImage",
        })
    }
}
