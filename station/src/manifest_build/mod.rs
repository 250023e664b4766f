//! `flashgate manifest build`: a product manifest made from a release folder instead of by
//! hand. Per region (a sub-folder named by its region code), every file the template names is
//! sized and hashed; the activation client is found inside the region's images (an ext4 or
//! erofs image, or the `system` logical partition of a `super` image) and hashed; the build id
//! is read from `build.prop` (`ro.build.display.id`) of every filesystem in the images. A region
//! is refused when its client is not the one the release engineer allow-lists for it on the
//! command line, or when its images disagree on the build id. The manifest made is loaded back
//! with the station's own loader before it is handed out.

mod emit;
mod template;

pub use template::ManifestTemplate;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::build_prop::{read_build_prop, BUILD_PROP_PATHS};
use crate::config::{ConfigError, ProductManifest, RegionCode, YamlDocument};
use crate::digest::{hash_stream, Sha256Digest};
use crate::image::{
    identify, list_logical_partitions, Content, Finder, ImageFileSource, ImageKind,
};
use crate::preflight::MAX_CLIENT_SIZE;

/// What to build from where.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub template: PathBuf,
    /// The release folder: one sub-folder per region, named by its code (`00EEA/`).
    pub release: PathBuf,
    /// The station's image root; the release folder must be inside it (manifest paths are
    /// relative to it).
    pub image_root: PathBuf,
    /// The client hash the release engineer allow-lists per region, in the manifest's order.
    pub allow: Vec<(RegionCode, Sha256Digest)>,
    /// Where the manifest will be written (its name must be `<product>.yaml`).
    pub output: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestBuildError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("release folder {}: {detail}", path.display())]
    Release { path: PathBuf, detail: String },
    #[error("region {region}: the release has {} but no --allow {region}=<sha256> on the command line; allow-list that region's activation client (or remove the folder from the release)", folder.display())]
    NotAllowListed { region: RegionCode, folder: PathBuf },
    #[error("--allow {region}: the release folder has no {}; give the region folders of this release", folder.display())]
    NoSuchRegion { region: RegionCode, folder: PathBuf },
    #[error("region {region}: file `{key}` ({}): {detail}", path.display())]
    File {
        region: RegionCode,
        key: String,
        path: PathBuf,
        detail: String,
    },
    #[error("region {region}: no image holds the activation client `{app}` (looked for {} in {}); the build lacks its client: do not release it", tried.join(", "), images.join(", "))]
    ClientNotFound {
        region: RegionCode,
        app: String,
        tried: Vec<String>,
        images: Vec<String>,
    },
    #[error("region {region}: the activation client {location} in {} has SHA-256 {found}, but the release engineer allow-lists {allowed} for {region} (--allow): this build carries another client; refused", image.display())]
    ClientNotAllowed {
        region: RegionCode,
        image: PathBuf,
        location: String,
        /// Hex SHA-256 digests.
        found: String,
        allowed: String,
    },
    #[error("region {region}: the images disagree on the build id (ro.build.display.id): {}; a release is one build: rebuild the region from one build", render_ids(found))]
    BuildIdsDisagree {
        region: RegionCode,
        /// Where each id was read, and the id.
        found: Vec<(String, String)>,
    },
    #[error("region {region}: the filesystem holding the activation client ({place}) has no build.prop with ro.build.display.id; the station checks the build id there, so the build must carry it")]
    NoBuildId { region: RegionCode, place: String },
    #[error("the manifest made from the release is refused by the station's loader: {0}; correct the template")]
    Invalid(ConfigError),
}

fn render_ids(found: &[(String, String)]) -> String {
    found
        .iter()
        .map(|(place, id)| format!("{place} says {id}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One region's file, measured.
#[derive(Debug, Clone)]
pub(crate) struct MeasuredFile {
    pub key: String,
    /// Relative to the image root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: Sha256Digest,
}

/// Where the client was found.
#[derive(Debug, Clone)]
pub(crate) struct FoundClient {
    pub partition: String,
    pub image: String,
    pub logical_partition: Option<String>,
    pub path: String,
    pub sha256: Sha256Digest,
}

/// One region, ready to be written.
#[derive(Debug, Clone)]
pub(crate) struct BuiltRegion {
    pub region: RegionCode,
    pub build_id: String,
    pub files: Vec<MeasuredFile>,
    pub with_edl: bool,
    pub client: FoundClient,
}

/// Builds the manifest's text from the release (nothing is written).
pub fn build(request: &BuildRequest) -> Result<String, ManifestBuildError> {
    let template = ManifestTemplate::parse(&YamlDocument::read(&request.template)?)?;
    let image_root = canonical(&request.image_root)?;
    let release = canonical(&request.release)?;
    let Ok(prefix) = release.strip_prefix(&image_root) else {
        return Err(ManifestBuildError::Release {
            path: release,
            detail: format!(
                "not inside the image root {}; manifest paths are relative to it",
                image_root.display()
            ),
        });
    };
    check_regions(&release, &request.allow)?;
    let mut regions = Vec::new();
    for (region, allowed) in &request.allow {
        regions.push(build_region(
            &template,
            &release,
            prefix,
            region,
            allowed,
            &image_root,
        )?);
    }
    let mut programmers = Vec::new();
    for edl in &template.identity.edl {
        let path = image_root.join(&edl.programmer);
        let (sha256, size) = hash_file(&path).map_err(|detail| ManifestBuildError::Release {
            path: path.clone(),
            detail: format!("programmer: {detail}"),
        })?;
        programmers.push((size, sha256));
    }
    let text = emit::manifest(&template, &programmers, &regions);
    ProductManifest::from_bytes(&request.output, text.as_bytes(), &image_root)
        .map_err(ManifestBuildError::Invalid)?;
    Ok(text)
}

fn canonical(path: &Path) -> Result<PathBuf, ManifestBuildError> {
    path.canonicalize()
        .map_err(|e| ManifestBuildError::Release {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// Every region folder of the release is allow-listed, and every allow-listed region has one.
fn check_regions(
    release: &Path,
    allow: &[(RegionCode, Sha256Digest)],
) -> Result<(), ManifestBuildError> {
    let entries = std::fs::read_dir(release).map_err(|e| ManifestBuildError::Release {
        path: release.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut folders = BTreeSet::new();
    for entry in entries.filter_map(Result::ok) {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let name = entry.file_name().to_string_lossy().into_owned();
        if let (true, Ok(region)) = (is_dir, RegionCode::parse(&name)) {
            folders.insert(region);
        }
    }
    let allowed: BTreeSet<&RegionCode> = allow.iter().map(|(r, _)| r).collect();
    if let Some(region) = folders.iter().find(|r| !allowed.contains(r)) {
        return Err(ManifestBuildError::NotAllowListed {
            region: region.clone(),
            folder: release.join(region.as_str()),
        });
    }
    if let Some((region, _)) = allow.iter().find(|(r, _)| !folders.contains(r)) {
        return Err(ManifestBuildError::NoSuchRegion {
            region: region.clone(),
            folder: release.join(region.as_str()),
        });
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<(Sha256Digest, u64), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    hash_stream(std::io::BufReader::with_capacity(1 << 20, file)).map_err(|e| e.to_string())
}

fn build_region(
    template: &ManifestTemplate,
    release: &Path,
    prefix: &Path,
    region: &RegionCode,
    allowed: &Sha256Digest,
    _image_root: &Path,
) -> Result<BuiltRegion, ManifestBuildError> {
    let folder = release.join(region.as_str());
    let edl_keys = template.edl_keys();
    let present = |key: &str| {
        template
            .files
            .0
            .get(key)
            .is_some_and(|name| folder.join(name).is_file())
    };
    // The EDL package (rawprogram/patch) is there for a region that has one.
    let with_edl = match edl_keys.iter().filter(|k| present(k)).count() {
        0 => false,
        n if n == edl_keys.len() => true,
        _ => {
            let missing = edl_keys.iter().find(|k| !present(k)).copied().unwrap_or("");
            let name = template.files.0.get(missing).cloned().unwrap_or_default();
            return Err(ManifestBuildError::File {
                region: region.clone(),
                key: missing.to_string(),
                path: folder.join(name),
                detail: "the region's EDL package is incomplete (this file of it is missing); \
                         ship the whole package or none"
                    .into(),
            });
        }
    };
    let mut files = Vec::new();
    for (key, name) in &template.files.0 {
        if !with_edl && edl_keys.contains(&key.as_str()) {
            continue;
        }
        let path = folder.join(name);
        let (sha256, size) = hash_file(&path).map_err(|detail| ManifestBuildError::File {
            region: region.clone(),
            key: key.clone(),
            path: path.clone(),
            detail,
        })?;
        let relative = prefix.join(region.as_str()).join(name);
        files.push(MeasuredFile {
            key: key.clone(),
            path: relative.to_string_lossy().replace('\\', "/"),
            size,
            sha256,
        });
    }
    let images: Vec<&MeasuredFile> = files
        .iter()
        .filter(|f| !edl_keys.contains(&f.key.as_str()))
        .collect();
    let client = find_client(template, &folder, region, &images)?;
    if client.sha256 != *allowed {
        let name = template
            .files
            .0
            .get(&client.image)
            .cloned()
            .unwrap_or_default();
        return Err(ManifestBuildError::ClientNotAllowed {
            region: region.clone(),
            image: folder.join(name),
            location: client_place(&client),
            found: client.sha256.to_hex(),
            allowed: allowed.to_hex(),
        });
    }
    let build_id = build_id(template, &folder, region, &images, &client)?;
    Ok(BuiltRegion {
        region: region.clone(),
        build_id,
        files,
        with_edl,
        client,
    })
}

fn client_place(client: &FoundClient) -> String {
    match &client.logical_partition {
        Some(logical) => format!("{} (logical partition {logical})", client.path),
        None => client.path.clone(),
    }
}

/// The filesystems of an image file: the image itself, or the filesystem logical partitions
/// of a `super` image (metadata slot 0).
fn filesystems(path: &Path) -> Vec<(Finder, Option<String>)> {
    let Ok(source) = ImageFileSource::open(path) else {
        return Vec::new();
    };
    match identify(source, None) {
        (_, Ok(ImageKind::Filesystem(_))) => vec![(Finder::whole_image(), None)],
        (source, Ok(ImageKind::Super)) => {
            let (_, listing) = list_logical_partitions(source, 0);
            listing
                .map(|listing| {
                    listing
                        .partitions
                        .into_iter()
                        .filter(|p| matches!(p.content, Content::Filesystem(_)))
                        .map(|p| (Finder::in_logical_partition(&p.name, 0), Some(p.name)))
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// The name a logical partition is known by in the manifest: without the slot suffix of a
/// factory super image's `_a` copy (the station adds the booting slot's).
fn base_name(logical: &str) -> &str {
    logical
        .strip_suffix("_a")
        .or_else(|| logical.strip_suffix("_b"))
        .unwrap_or(logical)
}

fn find_client(
    template: &ManifestTemplate,
    folder: &Path,
    region: &RegionCode,
    images: &[&MeasuredFile],
) -> Result<FoundClient, ManifestBuildError> {
    let app = &template.activation_client.app;
    let candidates = [
        format!("/system/priv-app/{app}/{app}.apk"),
        format!("/priv-app/{app}/{app}.apk"),
        format!("/system/app/{app}/{app}.apk"),
        format!("/app/{app}/{app}.apk"),
    ];
    for image in images {
        let name = &template.files.0[&image.key];
        let path = folder.join(name);
        for (finder, logical) in filesystems(&path) {
            // Only `system` of a super image: `vendor` never carries the client.
            if logical.as_deref().is_some_and(|l| base_name(l) != "system") {
                continue;
            }
            for candidate in &candidates {
                let Ok(source) = ImageFileSource::open(&path) else {
                    continue;
                };
                let (_, found) = finder.hash_file(source, candidate, MAX_CLIENT_SIZE);
                if let Ok(found) = found {
                    return Ok(FoundClient {
                        partition: partition_of(template, &image.key, logical.is_some()),
                        image: image.key.clone(),
                        logical_partition: logical.as_deref().map(|l| base_name(l).to_string()),
                        path: candidate.clone(),
                        sha256: found.sha256,
                    });
                }
            }
        }
    }
    Err(ManifestBuildError::ClientNotFound {
        region: region.clone(),
        app: app.clone(),
        tried: candidates.to_vec(),
        images: images.iter().map(|f| f.path.clone()).collect(),
    })
}

/// The partition the phone is read back from: the one the fastboot plan writes the image to
/// (`super` for a super image), else the file key.
fn partition_of(template: &ManifestTemplate, key: &str, in_super: bool) -> String {
    if let Some(plan) = &template.flash.fastboot {
        if let Some(step) = plan.partitions.iter().find(|p| p.image == key) {
            return step.partition.clone();
        }
    }
    if in_super {
        "super".into()
    } else {
        key.to_string()
    }
}

/// The region's build id: every filesystem of its images whose build.prop names one agrees,
/// and the client's filesystem names one.
fn build_id(
    template: &ManifestTemplate,
    folder: &Path,
    region: &RegionCode,
    images: &[&MeasuredFile],
    client: &FoundClient,
) -> Result<String, ManifestBuildError> {
    let mut found: Vec<(String, String)> = Vec::new();
    let mut client_id = None;
    for image in images {
        let name = &template.files.0[&image.key];
        let path = folder.join(name);
        for (finder, logical) in filesystems(&path) {
            let Ok(source) = ImageFileSource::open(&path) else {
                continue;
            };
            let (_, prop) = read_build_prop(&finder, source, &BUILD_PROP_PATHS);
            let Ok(Some(prop)) = prop else { continue };
            let Some(id) = prop.build_id else { continue };
            let place = match &logical {
                Some(l) => format!("{}:{l} {}", image.path, prop.path),
                None => format!("{} {}", image.path, prop.path),
            };
            let is_client_fs = image.key == client.image
                && logical.as_deref().map(base_name) == client.logical_partition.as_deref();
            if is_client_fs {
                client_id = Some(id.clone());
            }
            found.push((place, id));
        }
    }
    let Some(id) = client_id else {
        let name = &template.files.0[&client.image];
        return Err(ManifestBuildError::NoBuildId {
            region: region.clone(),
            place: format!(
                "{}{}",
                folder.join(name).display(),
                client
                    .logical_partition
                    .as_deref()
                    .map_or(String::new(), |l| format!(" logical partition {l}"))
            ),
        });
    };
    if found.iter().any(|(_, other)| *other != id) {
        return Err(ManifestBuildError::BuildIdsDisagree {
            region: region.clone(),
            found,
        });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_factory_super_image_names_its_partitions_with_the_a_suffix() {
        assert_eq!(base_name("system_a"), "system");
        assert_eq!(base_name("system_b"), "system");
        assert_eq!(base_name("system"), "system");
        assert_eq!(base_name("vendor_dlkm_a"), "vendor_dlkm");
    }
}
