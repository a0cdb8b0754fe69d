//! ImageFsInfo: usage of the filesystems that hold images and container layers.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{ImageFsInfoRequest, ImageFsInfoResponse};

use super::ImageService;
use crate::error::{Error, Result};

impl ImageService {
    pub async fn image_fs_info(&self, _request: ImageFsInfoRequest) -> Result<ImageFsInfoResponse> {
        Err(Error::Unimplemented {
            method: "runtime.v1.ImageService/ImageFsInfo",
        })
    }
}
