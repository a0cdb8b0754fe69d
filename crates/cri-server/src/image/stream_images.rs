//! StreamImages: ListImages, streamed in messages of at most 100 images, so that a large
//! store never hits the message size limit.

use berth_api::runtime::v1::{StreamImagesRequest, StreamImagesResponse};

use super::ImageService;
use crate::error::Result;
use crate::instrument::{ResponseStream, paged};

impl ImageService {
    pub async fn stream_images(
        &self,
        request: StreamImagesRequest,
    ) -> Result<ResponseStream<StreamImagesResponse>> {
        let images = self.images_matching(request.filter)?;
        Ok(paged(images, |images| StreamImagesResponse { images }))
    }
}
