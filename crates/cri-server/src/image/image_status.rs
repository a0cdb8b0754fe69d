//! ImageStatus: reports one image, or no image (not an error) when it is absent.

use std::collections::HashMap;

use berth_api::runtime::v1::{ImageStatusRequest, ImageStatusResponse};

use super::{ImageService, to_cri};
use crate::error::{Error, Result};

impl ImageService {
    pub async fn image_status(&self, request: ImageStatusRequest) -> Result<ImageStatusResponse> {
        let Some(record) = self.find(request.image.as_ref())? else {
            return Ok(ImageStatusResponse::default());
        };
        let mut info = HashMap::new();
        if request.verbose {
            // The image config as stored (its OCI JSON), plus berth's view of the layers.
            let config: serde_json::Value =
                serde_json::from_slice(&self.store.read_blob(&record.id)?)
                    .map_err(|e| Error::Internal(format!("image config {}: {e}", record.id)))?;
            let chain_ids: Vec<String> = record
                .layers
                .iter()
                .map(|l| l.chain_id.to_string())
                .collect();
            let verbose = serde_json::json!({
                "id": record.id.to_string(),
                "imageSpec": config,
                "chainIDs": chain_ids,
                "pinned": record.pinned,
            });
            info.insert("info".to_string(), verbose.to_string());
        }
        Ok(ImageStatusResponse {
            image: Some(to_cri(&record)),
            info,
        })
    }
}
