//! ImageFsInfo: usage of the image store (blobs and unpacked layers, each inode counted
//! once) and of the snapshots (containers' writable layers), each reported with its
//! directory as the mountpoint.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_api::runtime::v1::{
    FilesystemIdentifier, FilesystemUsage, ImageFsInfoRequest, ImageFsInfoResponse, UInt64Value,
};
use berth_image::usage::disk_usage;

use super::ImageService;
use crate::error::{Error, Result};

impl ImageService {
    pub async fn image_fs_info(&self, _request: ImageFsInfoRequest) -> Result<ImageFsInfoResponse> {
        let images = self.store.root().to_path_buf();
        let snapshots = self.config.root.join("snapshots");
        tokio::task::spawn_blocking(move || {
            Ok(ImageFsInfoResponse {
                image_filesystems: vec![usage(&images)?],
                container_filesystems: vec![usage(&snapshots)?],
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("image fs info task: {e}")))?
    }
}

fn usage(dir: &Path) -> Result<FilesystemUsage> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let u = disk_usage(dir)?;
    Ok(FilesystemUsage {
        timestamp,
        fs_id: Some(FilesystemIdentifier {
            mountpoint: PathBuf::from(dir).display().to_string(),
        }),
        used_bytes: Some(UInt64Value { value: u.bytes }),
        inodes_used: Some(UInt64Value { value: u.inodes }),
    })
}
