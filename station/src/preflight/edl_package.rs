//! The region's EDL package, checked offline: its rawprogram/patch XML parsed from the bytes
//! pre-flight hashed, every file it names one the manifest lists (and so hashed), and the whole
//! package against the storage the product declares. A broken package is refused here, with
//! file and line, instead of failing every phone in turn.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use protocols::firehose::package::{
    self, check_layout, DiskLayout, ImageFacts, Origin, Package, PackageError, PackageLine,
    ProbeError, MAX_PACKAGE_FILE_BYTES,
};

use super::sizes::TooLarge;
use super::PreflightError;
use crate::config::{ImageSet, ProductManifest, RegionCode};
use crate::verified_image::{ImageCheckError, VerifiedImage};

/// A file a package line names that the region's manifest does not list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlistedFile {
    pub origin: Origin,
    pub filename: String,
    pub path: PathBuf,
}

impl fmt::Display for UnlistedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} names `{}` ({})",
            self.origin,
            self.filename,
            self.path.display()
        )
    }
}

/// The package of a region's EDL plan, checked; `None` when the region has no EDL plan.
pub(super) fn check(
    product: &ProductManifest,
    image_set: &ImageSet,
    images: &BTreeMap<String, VerifiedImage>,
) -> Result<Option<Package>, PreflightError> {
    let Some(plan) = &image_set.edl else {
        return Ok(None);
    };
    let region = &image_set.region;
    let refused = |source: PackageError| PreflightError::EdlPackage {
        region: region.clone(),
        source: Box::new(source),
    };
    let mut parsed = Vec::new();
    for key in plan.rawprogram.iter().chain(&plan.patch) {
        // The manifest loader guarantees the key names a file of the region.
        let Some(image) = images.get(key) else {
            continue;
        };
        let bytes = read_checked(region, image)?;
        parsed.push(package::parse_file(image.path(), &bytes).map_err(refused)?);
    }

    let by_path: BTreeMap<&Path, &VerifiedImage> = images.values().map(|i| (i.path(), i)).collect();
    let listed = |path: &Path| -> Option<&VerifiedImage> {
        let real = path.canonicalize().ok()?;
        by_path.get(real.as_path()).copied()
    };
    let mut unlisted = Vec::new();
    for line in parsed.iter().flat_map(|f| &f.lines) {
        if let PackageLine::Program(program) = line {
            let path = package::resolve_program_path(program).map_err(refused)?;
            if listed(&path).is_none() {
                unlisted.push(UnlistedFile {
                    origin: program.origin.clone(),
                    filename: program.filename.clone(),
                    path,
                });
            }
        }
    }
    if !unlisted.is_empty() {
        return Err(PreflightError::EdlPackageUnlisted {
            region: region.clone(),
            files: unlisted,
        });
    }

    // Every named file was hashed: answer from what pre-flight found, not from the disk again.
    let package = package::assemble(&parsed, &mut |path: &Path| {
        let image = listed(path).ok_or(ProbeError::Missing)?;
        Ok(ImageFacts {
            len: image.size(),
            sparse: image.sparse_expanded_len().map(Ok),
        })
    })
    .map_err(refused)?;

    let sector_size = plan.storage.sector_size();
    // LUN sizes are optional in the manifest: without them, NUM_DISK_SECTORS expressions and
    // sector ranges cannot be checked here and are left to the programmer on the phone.
    let layout = DiskLayout {
        sector_size: Some(sector_size as usize),
        lun_sectors: product
            .sizes
            .luns
            .iter()
            .map(|(&lun, &bytes)| (lun, bytes / u64::from(sector_size)))
            .collect(),
    };
    check_layout(&package, &layout).map_err(refused)?;
    check_partition_sizes(product, &package, &listed)?;
    check_client_written(image_set, &package)?;
    Ok(Some(package))
}

/// The XML as pre-flight hashed it: read through the checking stream, so bytes changed since
/// the hash are refused rather than parsed.
fn read_checked(region: &RegionCode, image: &VerifiedImage) -> Result<Vec<u8>, PreflightError> {
    if image.size() > MAX_PACKAGE_FILE_BYTES {
        return Err(PreflightError::EdlPackage {
            region: region.clone(),
            source: Box::new(PackageError::FileTooLarge {
                file: image.path().to_path_buf(),
                len: image.size(),
                max: MAX_PACKAGE_FILE_BYTES,
            }),
        });
    }
    let mut stream = image
        .open_stream()
        .map_err(|source| PreflightError::Image { source })?;
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| PreflightError::Image {
            source: ImageCheckError::ChangedSinceCheck {
                key: image.key().to_string(),
                path: image.path().to_path_buf(),
                what: e.to_string(),
            },
        })?;
    Ok(bytes)
}

/// Each programmed file fits the partition its line names, when the manifest declares that
/// partition's size (`sizes.partitions`, by label or by label without its slot suffix).
fn check_partition_sizes<'a>(
    product: &ProductManifest,
    package: &Package,
    listed: &impl Fn(&Path) -> Option<&'a VerifiedImage>,
) -> Result<(), PreflightError> {
    for program in package.programs() {
        let Some(capacity) = product.sizes.partition(&program.label) else {
            continue;
        };
        if program.data_bytes <= capacity {
            continue;
        }
        let image = listed(&program.path);
        return Err(PreflightError::ImageTooLarge(Box::new(TooLarge {
            key: image.map_or_else(|| program.filename.clone(), |i| i.key().to_string()),
            path: program.path.clone(),
            sparse: program.sparse,
            bytes: program.data_bytes,
            partition: program.label.clone(),
            capacity,
            manifest: product.source.clone(),
        })));
    }
    Ok(())
}

/// The phone is verified on the activation client's partition after EDL flashing (on the slot
/// it boots, through Firehose before its reset or through fastboot after it): the package must
/// write the client's image there.
fn check_client_written(image_set: &ImageSet, package: &Package) -> Result<(), PreflightError> {
    let client = &image_set.activation_client;
    let Some(image) = image_set.files.get(&client.file) else {
        return Ok(());
    };
    let labels = [
        client.partition.clone(),
        format!("{}_a", client.partition),
        format!("{}_b", client.partition),
    ];
    let written = package.programs().any(|p| {
        labels.contains(&p.label) && p.path.canonicalize().is_ok_and(|real| real == image.path)
    });
    if written {
        return Ok(());
    }
    Err(PreflightError::EdlClientNotWritten {
        region: image_set.region.clone(),
        partition: client.partition.clone(),
        file: client.file.clone(),
        path: image.path.clone(),
    })
}
