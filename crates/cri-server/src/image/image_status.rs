//! ImageStatus: reports one image, or nothing if it is absent.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ImageStatusRequest, ImageStatusResponse};

use super::ImageService;
use crate::error::{Error, Result};

impl ImageService {
    pub async fn image_status(&self, _request: ImageStatusRequest) -> Result<ImageStatusResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.ImageService/ImageStatus",
        })
    }
}
