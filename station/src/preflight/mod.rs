//! Pre-flight: before the first phone is touched, the work order's region must have an image
//! set, every file must be a regular file with the manifest's size and SHA-256 (hashed once per
//! batch; sparse images walked and CRC-checked in the same pass), every image must fit the
//! partition sizes the manifest declares, the EDL package must parse and name only listed files
//! inside the declared storage, and the activation client inside the image must be the one
//! allow-listed for that region. Everything that can be known offline is refused here, once,
//! rather than by every phone in turn.

mod build_identity;
mod edl_package;
mod sizes;

pub use build_identity::BuildIdMismatch;
pub use edl_package::UnlistedFile;
pub use sizes::TooLarge;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::build_prop::BuildProp;
use crate::config::{
    ActivationClient, ClientLocation, ConfigError, ImageFile, ImageSet, ProductManifest,
    RegionCode, StationConfig, WorkOrder,
};
use crate::digest::Sha256Digest;
use crate::image::{identify, Finder, FsKind, ImageKind};
use crate::read_at::{CountingReader, ReadAt};
use crate::trust::manifest_signature::{verify_manifest, ManifestTrust, UntrustedManifest};
use crate::verdict::FailureCode;
use crate::verified_image::private_copy::PrivateStore;
use crate::verified_image::{ImageCheckError, ImageFormat, VerifiedImage};
use protocols::firehose::package::{Package, PackageError};

/// Largest activation client pre-flight (and verification) will hash.
pub const MAX_CLIENT_SIZE: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("work order {work_order} is for product `{wanted}` but the manifest {} is product `{found}`; use the manifest of `{wanted}`", manifest.display())]
    ProductMismatch {
        work_order: String,
        wanted: String,
        found: String,
        manifest: PathBuf,
    },
    #[error("work order {work_order} needs region {region}, but product {product} has no image set for it (it has {}); add the region to the manifest or correct the work order", available.join(", "))]
    RegionMissing {
        work_order: String,
        region: RegionCode,
        product: String,
        available: Vec<String>,
    },
    #[error("work order file {} does not exist (known work orders in {}: {}); give the path of one of them", path.display(), folder.display(), render_known(known))]
    UnknownWorkOrder {
        path: PathBuf,
        folder: PathBuf,
        known: Vec<String>,
    },
    #[error("work order {work_order} is for product `{product}`, which has no manifest {} (known products: {}); correct the work order's `product` or add the manifest", manifest.display(), render_known(known))]
    UnknownProduct {
        work_order: String,
        product: String,
        manifest: PathBuf,
        known: Vec<String>,
    },
    /// A file of the image set (or a programmer) is missing, not a regular file, unreadable, or
    /// not the manifest's bytes; each is said under its own code ([`image_code`]).
    #[error("{}: {source}", image_code(source))]
    Image {
        #[source]
        source: ImageCheckError,
    },
    #[error("{0}")]
    ImageTooLarge(Box<TooLarge>),
    #[error("region {region}: the EDL package is refused: {source}; correct the package (and its manifest entry) before flashing")]
    EdlPackage {
        region: RegionCode,
        #[source]
        source: Box<PackageError>,
    },
    #[error("region {region}: the EDL package names files the manifest does not list, so pre-flight did not hash them: {}; list each in `regions.{region}.files` with its size and sha256, or remove the line", render_unlisted(files))]
    EdlPackageUnlisted {
        region: RegionCode,
        files: Vec<UnlistedFile>,
    },
    #[error("region {region}: the EDL package never writes file `{file}` ({}) to partition {partition} (or {partition}_a/{partition}_b), where the activation client is verified; add the program line or correct `activation_client`", path.display())]
    EdlClientNotWritten {
        region: RegionCode,
        partition: String,
        file: String,
        path: PathBuf,
    },
    #[error("{}: image `{}` ({}) of region {}: {} has the {} client, work order {} needs {}: found SHA-256 {}, region {} allows {}; the build is mis-packaged, do not flash it", FailureCode::ActivationClientWrongRegion, .0.image, .0.path.display(), .0.region, .0.location, .0.found_region_name(), .0.work_order, .0.region, .0.found, .0.region, .0.expected)]
    ActivationClientWrongRegion(Box<ClientMismatch>),
    #[error("{}: image `{}` ({}) of region {}: {} has SHA-256 {}, which is no region's allow-listed client (work order {} needs {}); do not flash this build", FailureCode::ActivationClientUnknown, .0.image, .0.path.display(), .0.region, .0.location, .0.found, .0.work_order, .0.expected)]
    ActivationClientUnknown(Box<ClientMismatch>),
    #[error("{}: image `{}` ({}) of region {}: cannot read the activation client {}: {}; check the manifest's activation_client against the build", FailureCode::ActivationClientUnknown, .0.image, .0.path.display(), .0.region, .0.location, .0.detail)]
    ActivationClientUnreadable(Box<ClientUnreadable>),
    #[error("{}: image `{}` ({}) of region {}: the activation client {} is missing ({}); this build does not carry the region's client: do not flash it, ask release engineering for the right build (or correct the manifest's activation_client path)", FailureCode::ActivationClientMissing, .0.image, .0.path.display(), .0.region, .0.location, .0.detail)]
    ActivationClientMissing(Box<ClientUnreadable>),
    #[error("{}", .0)]
    BuildIdMismatch(Box<BuildIdMismatch>),
    #[error(transparent)]
    ManifestUntrusted(Box<UntrustedManifest>),
}

fn render_known(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The most specific code for a file pre-flight could not accept: a missing file is not a wrong
/// hash.
pub fn image_code(error: &ImageCheckError) -> &'static str {
    match error {
        ImageCheckError::Missing { .. } => "IMAGE_MISSING",
        ImageCheckError::NotRegularFile { .. } => "IMAGE_NOT_A_FILE",
        ImageCheckError::Open { .. } => "IMAGE_UNREADABLE",
        ImageCheckError::BadSparse { .. } => "IMAGE_BAD_SPARSE",
        ImageCheckError::PrivateCopy { .. } => "IMAGE_COPY_FAILED",
        ImageCheckError::Size { .. }
        | ImageCheckError::Hash { .. }
        | ImageCheckError::ChangedSinceCheck { .. } => FailureCode::ImageHashMismatch.as_str(),
    }
}

/// The names (file stems) of the `*.yaml` files in `folder`, sorted; none when it cannot be read.
pub fn yaml_names_in(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml") && p.is_file())
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();
    names.sort();
    names
}

fn render_unlisted(files: &[UnlistedFile]) -> String {
    files
        .iter()
        .map(UnlistedFile::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The activation client in an image set is not the work order region's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMismatch {
    pub work_order: String,
    /// The work order's region (whose image set this is).
    pub region: RegionCode,
    /// The region whose client was found, when it is one of the product's.
    pub found_region: Option<RegionCode>,
    pub image: String,
    pub path: PathBuf,
    /// Partition and path inside it, e.g. `system /priv-app/…/ActivationClient.apk`.
    pub location: String,
    pub found: Sha256Digest,
    pub expected: Sha256Digest,
}

impl ClientMismatch {
    fn found_region_name(&self) -> &str {
        self.found_region
            .as_ref()
            .map_or("unknown", RegionCode::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUnreadable {
    pub region: RegionCode,
    pub image: String,
    pub path: PathBuf,
    pub location: String,
    pub detail: String,
}

impl PreflightError {
    /// What was wrong with the EDL package, when that is why pre-flight refused.
    pub fn package_error(&self) -> Option<&PackageError> {
        match self {
            Self::EdlPackage { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The failure code the refusal is reported under, when it is about the images.
    pub fn code(&self) -> Option<FailureCode> {
        match self {
            Self::Config(_)
            | Self::UnknownWorkOrder { .. }
            | Self::UnknownProduct { .. }
            | Self::ProductMismatch { .. }
            | Self::RegionMissing { .. } => None,
            Self::Image { source } if source.is_mismatch() => Some(FailureCode::ImageHashMismatch),
            Self::Image { .. }
            | Self::ImageTooLarge(_)
            | Self::EdlPackage { .. }
            | Self::EdlPackageUnlisted { .. }
            | Self::EdlClientNotWritten { .. } => None,
            Self::ActivationClientWrongRegion(_) => Some(FailureCode::ActivationClientWrongRegion),
            Self::ActivationClientUnknown(_) | Self::ActivationClientUnreadable(_) => {
                Some(FailureCode::ActivationClientUnknown)
            }
            Self::ActivationClientMissing(_) => Some(FailureCode::ActivationClientMissing),
            Self::BuildIdMismatch(_) => Some(FailureCode::BuildIdMismatch),
            Self::ManifestUntrusted(_) => Some(FailureCode::ManifestUntrusted),
        }
    }
}

/// What pre-flight established about the activation client inside the image set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCheck {
    /// Key of the image holding it.
    pub image: String,
    pub image_format: ImageFormat,
    pub location: ClientLocation,
    pub sha256: Sha256Digest,
    pub client_size: u64,
    /// Bytes read from the (expanded) image to find and hash it.
    pub bytes_read: u64,
    /// The filesystem the client was found in (none for a raw range).
    pub filesystem: Option<FsKind>,
    /// The logical partition it was found in, as the image's metadata names it (`system_a`).
    pub logical_partition: Option<String>,
}

/// A batch that passed pre-flight: the only way the orchestrator gets images to send.
#[derive(Debug, Clone)]
pub struct CheckedBatch {
    pub work_order: WorkOrder,
    pub product: ProductManifest,
    pub image_set: ImageSet,
    /// The region's files, by manifest key, each hashed once.
    pub images: BTreeMap<String, VerifiedImage>,
    /// EDL programmers from the identity rules, in manifest order.
    pub programmers: Vec<VerifiedImage>,
    pub activation: ActivationCheck,
    /// The `build.prop` whose `ro.build.display.id` matched the manifest's `build_id`, in the
    /// filesystem that holds the activation client; verification reads it back from the phone.
    /// None for a client stored as a raw byte range (no filesystem to read it from).
    pub build_prop: Option<BuildProp>,
    /// The region's EDL package, parsed and checked from the bytes pre-flight hashed (`None`
    /// without an EDL plan).
    pub edl_package: Option<Package>,
    /// Bytes streamed through SHA-256.
    pub bytes_hashed: u64,
    pub elapsed: Duration,
}

impl CheckedBatch {
    pub fn region(&self) -> &RegionCode {
        &self.image_set.region
    }

    pub fn image(&self, key: &str) -> Option<&VerifiedImage> {
        self.images.get(key)
    }
}

/// Loads `station.yaml`, the work order and its product's manifest (refused unless signed by a
/// key the station pins, or the station is in engineering mode), then runs
/// [`preflight_with_copies`] into the station's private copies beside its journal.
pub fn load_and_check(
    station_file: &Path,
    work_order_file: &Path,
) -> Result<(StationConfig, CheckedBatch), PreflightError> {
    load_and_check_as(station_file, work_order_file, false)
}

/// As [`load_and_check`]; `engineering` puts the station in engineering mode for this run
/// whatever station.yaml says (`flashgate run --engineering`).
pub fn load_and_check_as(
    station_file: &Path,
    work_order_file: &Path,
    engineering: bool,
) -> Result<(StationConfig, CheckedBatch), PreflightError> {
    let (station, work_order, product) = load_batch(station_file, work_order_file, engineering)?;
    let store = PrivateStore::beside_journal(&station.journal);
    let batch = preflight_with_copies(&product, &work_order, &store)?;
    Ok((station, batch))
}

/// [`load_and_check_as`] without private copies: each phone's stream is hashed again as it is
/// sent (what the line benchmark compares the copies with).
pub fn load_and_check_hashing_per_phone(
    station_file: &Path,
    work_order_file: &Path,
    engineering: bool,
) -> Result<(StationConfig, CheckedBatch), PreflightError> {
    let (station, work_order, product) = load_batch(station_file, work_order_file, engineering)?;
    let batch = preflight(&product, &work_order)?;
    Ok((station, batch))
}

fn load_batch(
    station_file: &Path,
    work_order_file: &Path,
    engineering: bool,
) -> Result<(StationConfig, WorkOrder, ProductManifest), PreflightError> {
    let mut station = StationConfig::load(station_file)?;
    station.engineering_mode |= engineering;
    let work_order = load_work_order(work_order_file)?;
    let product = load_product(&station, &work_order)?;
    Ok((station, work_order, product))
}

/// Loads a work order; a path that does not exist is refused listing the work orders beside it.
pub fn load_work_order(file: &Path) -> Result<WorkOrder, PreflightError> {
    if !file.exists() {
        let folder = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        return Err(PreflightError::UnknownWorkOrder {
            path: file.to_path_buf(),
            known: yaml_names_in(&folder),
            folder,
        });
    }
    Ok(WorkOrder::load(file)?)
}

/// Loads the manifest of the work order's product; a product without one is refused listing
/// the station's products.
pub fn load_product(
    station: &StationConfig,
    work_order: &WorkOrder,
) -> Result<ProductManifest, PreflightError> {
    let manifest = station.product_manifest_path(&work_order.product);
    if !manifest.exists() {
        return Err(PreflightError::UnknownProduct {
            work_order: work_order.id.clone(),
            product: work_order.product.clone(),
            known: yaml_names_in(&station.products_dir),
            manifest,
        });
    }
    // The signature is checked on the bytes that are then parsed: nothing can change between.
    let bytes = match std::fs::read(&manifest) {
        Ok(bytes) => bytes,
        // The loader says why the file cannot be read, with its usual sentence.
        Err(_) => return Ok(ProductManifest::load(&manifest, &station.image_root)?),
    };
    let checked = verify_manifest(&manifest, &bytes, &station.trusted_manifest_keys);
    let trust = if station.engineering_mode {
        ManifestTrust::engineering(checked)
    } else {
        checked.map_err(|refusal| PreflightError::ManifestUntrusted(Box::new(refusal)))?
    };
    let mut product = ProductManifest::from_bytes(&manifest, &bytes, &station.image_root)?;
    product.trust = trust;
    Ok(product)
}

/// Every check that must pass before the first phone is flashed; the first refusal.
pub fn preflight(
    product: &ProductManifest,
    work_order: &WorkOrder,
) -> Result<CheckedBatch, PreflightError> {
    preflight_findings(product, work_order).map_err(|mut refusals| refusals.swap_remove(0))
}

/// [`preflight`], each file copied into `store` as it is hashed (or a sealed copy of the same
/// content reused): phones are sent the station's private copy, not hashed per phone. Copies
/// of other builds in `store` are removed.
pub fn preflight_with_copies(
    product: &ProductManifest,
    work_order: &WorkOrder,
    store: &PrivateStore,
) -> Result<CheckedBatch, PreflightError> {
    let batch = findings(product, work_order, Some(store))
        .map_err(|mut refusals| refusals.swap_remove(0))?;
    let kept: Vec<_> = batch
        .images
        .values()
        .chain(&batch.programmers)
        .map(VerifiedImage::sha256)
        .collect();
    store.retain_only(&kept);
    Ok(batch)
}

/// Every check that must pass before the first phone is flashed, each refusal said once: every
/// file is checked even after one is refused; the plan and the activation client are checked
/// only on files that passed (a missing file is not also a plan or client problem). Never empty
/// on `Err`.
pub fn preflight_findings(
    product: &ProductManifest,
    work_order: &WorkOrder,
) -> Result<CheckedBatch, Vec<PreflightError>> {
    findings(product, work_order, None)
}

fn findings(
    product: &ProductManifest,
    work_order: &WorkOrder,
    store: Option<&PrivateStore>,
) -> Result<CheckedBatch, Vec<PreflightError>> {
    let started = Instant::now();
    if work_order.product != product.name {
        return Err(vec![PreflightError::ProductMismatch {
            work_order: work_order.id.clone(),
            wanted: work_order.product.clone(),
            found: product.name.clone(),
            manifest: product.source.clone(),
        }]);
    }
    let Some(image_set) = product.regions.get(&work_order.region) else {
        return Err(vec![PreflightError::RegionMissing {
            work_order: work_order.id.clone(),
            region: work_order.region.clone(),
            product: product.name.clone(),
            available: product.regions.keys().map(|r| r.to_string()).collect(),
        }]);
    };

    let mut refusals = Vec::new();
    let mut hasher = OncePerFile {
        store,
        ..OncePerFile::default()
    };
    let mut images = BTreeMap::new();
    for (key, file) in &image_set.files {
        match hasher.check(file) {
            Ok(image) => {
                images.insert(key.clone(), image);
            }
            Err(refusal) => refusals.push(refusal),
        }
    }
    let mut programmers = Vec::new();
    for entry in &product.identity.edl {
        match hasher.check(&entry.programmer) {
            Ok(image) => programmers.push(image),
            Err(refusal) => refusals.push(refusal),
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }

    let sizes = sizes::check_fastboot_plan(product, image_set, &images);
    let edl_package = edl_package::check(product, image_set, &images);
    let activation = check_activation_client(product, image_set, &images, work_order);
    let build_prop = build_identity::check(image_set, &images);
    let (edl_package, activation, build_prop) = match (sizes, edl_package, activation, build_prop) {
        (Ok(()), Ok(package), Ok(activation), Ok(build_prop)) => (package, activation, build_prop),
        (sizes, package, activation, build_prop) => {
            refusals.extend(sizes.err());
            refusals.extend(package.err());
            refusals.extend(activation.err());
            refusals.extend(build_prop.err());
            return Err(refusals);
        }
    };
    Ok(CheckedBatch {
        work_order: work_order.clone(),
        product: product.clone(),
        image_set: image_set.clone(),
        images,
        programmers,
        activation,
        build_prop,
        edl_package,
        bytes_hashed: hasher.bytes,
        elapsed: started.elapsed(),
    })
}

/// Hashes each distinct file once even when several manifest entries name it.
#[derive(Default)]
struct OncePerFile<'a> {
    done: BTreeMap<PathBuf, VerifiedImage>,
    bytes: u64,
    store: Option<&'a PrivateStore>,
}

impl OncePerFile<'_> {
    fn check(&mut self, file: &ImageFile) -> Result<VerifiedImage, PreflightError> {
        if let Some(done) = self.done.get(&file.path) {
            if done.size() == file.size && done.sha256() == file.sha256 {
                return Ok(done.clone().renamed(&file.key));
            }
        }
        let verified = match self.store {
            Some(store) => VerifiedImage::check_and_copy(file, store),
            None => VerifiedImage::check(file),
        }
        .map_err(|source| PreflightError::Image { source })?;
        self.bytes += file.size;
        self.done.insert(file.path.clone(), verified.clone());
        Ok(verified)
    }
}

fn check_activation_client(
    product: &ProductManifest,
    image_set: &ImageSet,
    images: &BTreeMap<String, VerifiedImage>,
    work_order: &WorkOrder,
) -> Result<ActivationCheck, PreflightError> {
    let client = &image_set.activation_client;
    let unreadable = |path: &Path, detail: String| {
        PreflightError::ActivationClientUnreadable(Box::new(ClientUnreadable {
            region: image_set.region.clone(),
            image: client.file.clone(),
            path: path.to_path_buf(),
            location: client.location.to_string(),
            detail,
        }))
    };
    let missing = |path: &Path, detail: String| {
        PreflightError::ActivationClientMissing(Box::new(ClientUnreadable {
            region: image_set.region.clone(),
            image: client.file.clone(),
            path: path.to_path_buf(),
            location: client.location.to_string(),
            detail,
        }))
    };
    // The manifest loader guarantees the key exists; say so plainly if that ever changes.
    let image = images
        .get(&client.file)
        .ok_or_else(|| unreadable(Path::new("?"), format!("no file `{}`", client.file)))?;
    let view = image
        .open_partition_view()
        .map_err(|source| PreflightError::Image { source })?;
    let image_format = view.format();
    let mut filesystem = None;
    let mut logical_partition = None;
    let (sha256, client_size, bytes_read) = match &client.location {
        ClientLocation::File {
            logical_partition: logical,
            path,
        } => {
            let (view, finder) = client_finder(view, logical.as_deref());
            let (_, result) = finder.hash_file(view, path, MAX_CLIENT_SIZE);
            let found = result.map_err(|e| {
                if e.is_absent_file() {
                    missing(image.path(), e.to_string())
                } else {
                    unreadable(image.path(), e.to_string())
                }
            })?;
            filesystem = Some(found.fs);
            logical_partition = found.logical_partition;
            (found.sha256, found.size, found.bytes_read)
        }
        ClientLocation::RawRange { offset, length } => {
            let mut counting = CountingReader::new(view);
            let sha256 = hash_range(&mut counting, *offset, *length)
                .map_err(|e| unreadable(image.path(), e.to_string()))?;
            (sha256, *length, counting.bytes_read())
        }
    };
    if sha256 != client.sha256 {
        let found_region = product.region_with_client(&sha256).cloned();
        let mismatch = Box::new(ClientMismatch {
            work_order: work_order.id.clone(),
            region: image_set.region.clone(),
            found_region: found_region.clone(),
            image: client.file.clone(),
            path: image.path().to_path_buf(),
            location: mismatch_location(client, logical_partition.as_deref()),
            found: sha256,
            expected: client.sha256,
        });
        return Err(match found_region {
            Some(_) => PreflightError::ActivationClientWrongRegion(mismatch),
            None => PreflightError::ActivationClientUnknown(mismatch),
        });
    }
    Ok(ActivationCheck {
        image: client.file.clone(),
        image_format,
        location: client.location.clone(),
        sha256,
        client_size,
        bytes_read,
        filesystem,
        logical_partition,
    })
}

/// Where a mismatching client was read: `super/system_a /system/priv-app/…` when it lies in a
/// logical partition (named as the image's metadata names it, as a verdict on a phone does),
/// else `system /priv-app/…`.
fn mismatch_location(client: &ActivationClient, found_in: Option<&str>) -> String {
    match (&client.location, found_in) {
        (ClientLocation::File { path, .. }, Some(logical)) => {
            format!("{}/{logical} {path}", client.partition)
        }
        _ => format!("{} {}", client.partition, client.location),
    }
}

/// How to find the client in the image file. With a logical partition, the image is a
/// `super.img` read in metadata slot 0: a `super.img` built for flashing (lpmake, AOSP's
/// `build_super_image`) names the partitions with their suffixes (`system_a` holds the
/// image, `system_b` is empty) and keeps the same metadata in every slot, so `system` is found
/// as `system_a`. An image that is itself a filesystem is the logical partition's own image
/// (flashed by name through fastbootd) and is read whole.
pub(super) fn client_finder<S: ReadAt>(view: S, logical: Option<&str>) -> (S, Finder) {
    let Some(logical) = logical else {
        return (view, Finder::whole_image());
    };
    match identify(view, None) {
        (view, Ok(ImageKind::Filesystem(_))) => (view, Finder::whole_image()),
        (view, _) => (view, Finder::in_logical_partition(logical, 0)),
    }
}

/// SHA-256 of `length` bytes from `offset`, streamed.
pub fn hash_range(
    source: &mut impl ReadAt,
    offset: u64,
    length: u64,
) -> std::io::Result<Sha256Digest> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < length {
        let n = usize::try_from((length - done).min(buffer.len() as u64)).unwrap_or(buffer.len());
        let chunk = buffer.get_mut(..n).unwrap_or(&mut []);
        let at = offset.checked_add(done).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "offset overflows")
        })?;
        source.read_exact_at(at, chunk)?;
        hasher.update(&*chunk);
        done += n as u64;
    }
    Ok(Sha256Digest::from_hasher(hasher))
}
