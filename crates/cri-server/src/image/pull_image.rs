//! PullImage: pulls an image from a registry into the store.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{PullImageRequest, PullImageResponse};

use super::ImageService;
use crate::error::{Error, Result};

impl ImageService {
    pub async fn pull_image(&self, _request: PullImageRequest) -> Result<PullImageResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.ImageService/PullImage",
        })
    }
}
