//! Build identity at pre-flight: the image set must be the build the manifest names. The
//! `build.prop` of the filesystem that holds the activation client (the same image and logical
//! partition) says which build it is (`ro.build.display.id`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::build_prop::{read_build_prop, BuildProp, BUILD_ID_PROPERTY, BUILD_PROP_PATHS};
use crate::config::{ClientLocation, ImageSet, RegionCode};
use crate::verdict::FailureCode;
use crate::verified_image::VerifiedImage;

use super::{client_finder, PreflightError};

/// The build id in the image's `build.prop` is not the manifest's (or the image names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildIdMismatch {
    pub region: RegionCode,
    pub image: String,
    pub path: PathBuf,
    /// Where the build id was looked for: `system_a /system/build.prop`, or the paths tried.
    pub location: String,
    pub expected: String,
    /// None: no `build.prop`, no `ro.build.display.id` in it, or a filesystem it cannot be read
    /// from (`detail` says which).
    pub found: Option<String>,
    pub detail: Option<String>,
}

impl std::fmt::Display for BuildIdMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: image `{}` ({}) of region {}: ",
            FailureCode::BuildIdMismatch,
            self.image,
            self.path.display(),
            self.region
        )?;
        match (&self.found, &self.detail) {
            (Some(found), _) => write!(
                f,
                "{} says {BUILD_ID_PROPERTY}={found}, the manifest's build_id is {}",
                self.location, self.expected
            )?,
            (None, Some(detail)) => write!(
                f,
                "no build id in {} ({detail}), the manifest's build_id is {}",
                self.location, self.expected
            )?,
            (None, None) => write!(
                f,
                "{} sets no {BUILD_ID_PROPERTY}, the manifest's build_id is {}",
                self.location, self.expected
            )?,
        }
        f.write_str(
            "; the image is another build than the manifest describes (a stale or mixed-up \
             release): do not flash it; rebuild the manifest from this release (`flashgate \
             manifest build`) or put the build it names in place",
        )
    }
}

/// Reads `ro.build.display.id` from `build.prop` in the filesystem that holds the activation
/// client (the same image, and logical partition, the client is found in) and refuses a build id
/// other than the manifest's.
pub(super) fn check(
    image_set: &ImageSet,
    images: &BTreeMap<String, VerifiedImage>,
) -> Result<Option<BuildProp>, PreflightError> {
    let client = &image_set.activation_client;
    let ClientLocation::File {
        logical_partition, ..
    } = &client.location
    else {
        return Ok(None);
    };
    // A missing image is refused with its own code elsewhere.
    let Some(image) = images.get(&client.file) else {
        return Ok(None);
    };
    let view = image
        .open_partition_view()
        .map_err(|source| PreflightError::Image { source })?;
    let (view, finder) = client_finder(view, logical_partition.as_deref());
    let (_, result) = read_build_prop(&finder, view, &BUILD_PROP_PATHS);
    let refuse = |location: String, found: Option<String>, detail: Option<String>| {
        PreflightError::BuildIdMismatch(Box::new(BuildIdMismatch {
            region: image_set.region.clone(),
            image: client.file.clone(),
            path: image.path().to_path_buf(),
            location,
            expected: image_set.build_id.clone(),
            found,
            detail,
        }))
    };
    let within = match logical_partition {
        Some(logical) => format!("{}/{logical}", client.partition),
        None => client.partition.clone(),
    };
    match result {
        Ok(Some(prop)) if prop.build_id.as_deref() == Some(image_set.build_id.as_str()) => {
            Ok(Some(prop))
        }
        Ok(Some(prop)) => Err(refuse(
            format!("{within} {}", prop.path),
            prop.build_id,
            None,
        )),
        Ok(None) => Err(refuse(
            format!("{within} {}", BUILD_PROP_PATHS.join(" or ")),
            None,
            Some("no build.prop at either path".into()),
        )),
        Err(e) => Err(refuse(
            format!("{within} build.prop"),
            None,
            Some(e.to_string()),
        )),
    }
}
