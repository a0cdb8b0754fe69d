//! StreamImages: like ListImages, streamed.
//!
//! Not implemented yet: answers `Unimplemented`, never a silent success.

use berth_api::runtime::v1::{StreamImagesRequest, StreamImagesResponse};

use super::ImageService;
use crate::error::{Error, Result};
use crate::instrument::ResponseStream;

impl ImageService {
    pub async fn stream_images(
        &self,
        _request: StreamImagesRequest,
    ) -> Result<ResponseStream<StreamImagesResponse>> {
        Err(Error::Unimplemented {
            method: "runtime.v1.ImageService/StreamImages",
        })
    }
}
