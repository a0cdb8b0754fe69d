//! ListImages: the images in the store, or the one a filter's image spec names.

use berth_api::runtime::v1::{Image, ImageFilter, ListImagesRequest, ListImagesResponse};

use super::{ImageService, to_cri};
use crate::error::Result;

impl ImageService {
    pub async fn list_images(&self, request: ListImagesRequest) -> Result<ListImagesResponse> {
        Ok(ListImagesResponse {
            images: self.images_matching(request.filter)?,
        })
    }

    /// Every image, or the one the filter's image spec names (none if it names nothing).
    pub(super) fn images_matching(&self, filter: Option<ImageFilter>) -> Result<Vec<Image>> {
        let wanted = filter
            .and_then(|f| f.image)
            .filter(|spec| !spec.image.is_empty());
        let records = match wanted {
            Some(spec) => self.find(Some(&spec))?.into_iter().collect(),
            None => self.store.list()?,
        };
        Ok(records.iter().map(to_cri).collect())
    }
}
