//! Images against the partition sizes the manifest declares (`sizes.partitions`): an image that
//! cannot fit is refused here, not by every phone in turn.

use std::collections::BTreeMap;

use super::PreflightError;
use crate::config::{ImageSet, ProductManifest};
use crate::verified_image::VerifiedImage;

/// Each file the fastboot plan writes fits the partition it is written to, when that
/// partition's size is declared (partitions without a declared size are not checked).
pub(super) fn check_fastboot_plan(
    product: &ProductManifest,
    image_set: &ImageSet,
    images: &BTreeMap<String, VerifiedImage>,
) -> Result<(), PreflightError> {
    let Some(plan) = &image_set.fastboot else {
        return Ok(());
    };
    for step in &plan.steps {
        let (Some(image), Some(capacity)) = (
            images.get(&step.file),
            product.sizes.partition(&step.partition),
        ) else {
            continue;
        };
        if image.partition_bytes() > capacity {
            return Err(PreflightError::ImageTooLarge(Box::new(TooLarge {
                key: image.key().to_string(),
                path: image.path().to_path_buf(),
                sparse: image.sparse_expanded_len().is_some(),
                bytes: image.partition_bytes(),
                partition: step.partition.clone(),
                capacity,
                manifest: product.source.clone(),
            })));
        }
    }
    Ok(())
}

/// An image larger than the partition it is written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub key: String,
    pub path: std::path::PathBuf,
    /// Whether `bytes` is a sparse image's expanded size.
    pub sparse: bool,
    pub bytes: u64,
    pub partition: String,
    pub capacity: u64,
    pub manifest: std::path::PathBuf,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.sparse {
            "the sparse image expands to"
        } else {
            "the image has"
        };
        write!(
            f,
            "image `{}` ({}): {what} {} bytes, but partition `{}` holds {} (`sizes.partitions` \
             in {}); it cannot be flashed there: use the build made for this product, or \
             correct the declared size",
            self.key,
            self.path.display(),
            self.bytes,
            self.partition,
            self.capacity,
            self.manifest.display()
        )
    }
}
