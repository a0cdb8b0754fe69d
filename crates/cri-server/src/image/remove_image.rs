//! RemoveImage: removes an image's record (all its names), then garbage-collects the
//! blobs and layers nothing references any more. An absent image is success (CRI); a
//! pinned one is FailedPrecondition.

use berth_api::runtime::v1::{RemoveImageRequest, RemoveImageResponse};
use tracing::{info, warn};

use super::{ImageService, image_name};
use crate::error::{Error, Result};

impl ImageService {
    pub async fn remove_image(&self, request: RemoveImageRequest) -> Result<RemoveImageResponse> {
        let name = image_name(request.image.as_ref())?.to_string();
        let store = self.store.clone();
        let snapshots = self.snapshots.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            match store.remove(&name) {
                Ok(record) => info!(image = %name, image_id = %record.id, "image removed"),
                Err(berth_image::Error::ImageNotFound(_)) => {
                    info!(image = %name, "image already absent");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
            // The record is gone: the removal stands even if collection fails now; the
            // next removal collects what this one left.
            let collected = snapshots
                .layers_in_use()
                .and_then(|in_use| store.gc(&in_use));
            match collected {
                Ok(report) => info!(
                    blobs = report.blobs.len(),
                    layers = report.layers.len(),
                    deferred = report.deferred,
                    "image gc after remove"
                ),
                Err(e) => warn!(error = %e, "image gc after remove failed"),
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("remove image task: {e}")))??;
        Ok(RemoveImageResponse {})
    }
}
