//! ListImages: the images in the store, or the one a filter's image spec names.

use berth_api::runtime::v1::{ListImagesRequest, ListImagesResponse};

use super::{ImageService, to_cri};
use crate::error::Result;

impl ImageService {
    pub async fn list_images(&self, request: ListImagesRequest) -> Result<ListImagesResponse> {
        let wanted = request
            .filter
            .and_then(|f| f.image)
            .filter(|spec| !spec.image.is_empty());
        let records = match wanted {
            Some(spec) => self.find(Some(&spec))?.into_iter().collect(),
            None => self.store.list()?,
        };
        Ok(ListImagesResponse {
            images: records.iter().map(to_cri).collect(),
        })
    }
}
