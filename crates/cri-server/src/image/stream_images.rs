//! StreamImages: ListImages, streamed in messages of at most [`IMAGES_PER_MESSAGE`]
//! images, so that a large store never hits the message size limit.

use berth_api::runtime::v1::{StreamImagesRequest, StreamImagesResponse};

use super::ImageService;
use crate::error::Result;
use crate::instrument::ResponseStream;

/// Images per streamed message.
const IMAGES_PER_MESSAGE: usize = 100;

impl ImageService {
    pub async fn stream_images(
        &self,
        request: StreamImagesRequest,
    ) -> Result<ResponseStream<StreamImagesResponse>> {
        let images = self.images_matching(request.filter)?;
        let messages: Vec<_> = images
            .chunks(IMAGES_PER_MESSAGE)
            .map(|chunk| {
                Ok(StreamImagesResponse {
                    images: chunk.to_vec(),
                })
            })
            .collect();
        Ok(Box::pin(tokio_stream::iter(messages)))
    }
}
