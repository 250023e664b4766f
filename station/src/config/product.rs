//! `products/<product>.yaml`: identity rules and, per region, the image set, its flash plan and
//! its activation client. Loaded into plain validated structs; nothing downstream sees YAML.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::activation::{ActivationClient, ActivationClientFile, ClientLocation, VerifyMethod};
use super::error::{ConfigError, KeyPath};
use super::files::{FileEntryFile, ImageFile};
use super::flash_plan::{
    check_slots, written_before, EdlPlan, FastbootPlan, FastbootStep, FastbootdPlan, FlashFile,
};
use super::identity::{EdlIdentity, Identity, IdentityFile, UnitCodeSource};
use super::image_path::resolve_inside;
use super::names::check_identifier;
use super::region::RegionCode;
use super::sizes::{DeclaredSizes, SizesFile};
use super::yaml::{UniqueMap, YamlDocument};
use crate::digest::Sha256Digest;
use crate::trust::manifest_signature::ManifestTrust;

#[derive(Debug, Clone, PartialEq)]
pub struct ProductManifest {
    pub name: String,
    pub source: PathBuf,
    /// SHA-256 of the manifest file as read, recorded with every unit attempt.
    pub manifest_sha256: Sha256Digest,
    pub identity: Identity,
    /// Partition and LUN sizes, when the manifest declares them (`sizes:`).
    pub sizes: DeclaredSizes,
    pub regions: BTreeMap<RegionCode, ImageSet>,
    /// How the station came to trust the manifest (its signature), recorded with every
    /// attempt; set by pre-flight's loader, `NotChecked` from the manifest loader alone.
    pub trust: ManifestTrust,
}

/// Everything one region's units receive.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    pub region: RegionCode,
    pub build_id: String,
    pub files: BTreeMap<String, ImageFile>,
    pub fastboot: Option<FastbootPlan>,
    pub edl: Option<EdlPlan>,
    pub activation_client: ActivationClient,
}

impl ImageSet {
    pub fn file(&self, key: &str) -> Option<&ImageFile> {
        self.files.get(key)
    }

    /// The image file that holds the activation client.
    pub fn activation_image(&self) -> Option<&ImageFile> {
        self.files.get(&self.activation_client.file)
    }
}

impl ProductManifest {
    /// The region whose allow-listed activation client has `digest`, if any.
    pub fn region_with_client(&self, digest: &Sha256Digest) -> Option<&RegionCode> {
        self.regions
            .values()
            .find(|set| set.activation_client.sha256 == *digest)
            .map(|set| &set.region)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductFile {
    product: String,
    identity: IdentityFile,
    #[serde(default)]
    sizes: Option<SizesFile>,
    regions: UniqueMap<RegionCode, RegionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionFile {
    build_id: String,
    files: UniqueMap<String, FileEntryFile>,
    flash: FlashFile,
    activation_client: ActivationClientFile,
}

impl ProductManifest {
    /// Loads and validates `file`; manifest paths are resolved inside `image_root` (canonical).
    pub fn load(file: &Path, image_root: &Path) -> Result<Self, ConfigError> {
        Self::from_document(&YamlDocument::read(file)?, image_root)
    }

    /// The whole loader on the bytes of a file named `file`; arbitrary bytes give an error,
    /// never a panic (the config fuzzer's entry point). Paths are resolved in `image_root`.
    pub fn from_bytes(file: &Path, bytes: &[u8], image_root: &Path) -> Result<Self, ConfigError> {
        Self::from_document(&YamlDocument::from_bytes(file, bytes)?, image_root)
    }

    pub fn from_document(doc: &YamlDocument, image_root: &Path) -> Result<Self, ConfigError> {
        let raw: ProductFile = doc.parse().map_err(explain_missing_client)?;
        Validator { doc, image_root }.product(raw)
    }
}

/// A missing `activation_client` is the one omission flashgate exists to refuse: say why.
fn explain_missing_client(error: ConfigError) -> ConfigError {
    match error {
        ConfigError::Invalid {
            file,
            line,
            key,
            problem,
            ..
        } if problem.starts_with("missing field `activation_client`") => ConfigError::Invalid {
            file,
            line,
            key,
            problem: "this region names no activation client".into(),
            fix:
                "every region must name its activation client (partition, image, path or raw, \
                  sha256, verify): flashgate refuses to flash a region whose client it cannot check"
                    .into(),
        },
        other => other,
    }
}

struct Validator<'a> {
    doc: &'a YamlDocument,
    image_root: &'a Path,
}

impl Validator<'_> {
    fn error(
        &self,
        key: &KeyPath,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        self.doc.error_at(key, problem, fix)
    }

    fn product(&self, raw: ProductFile) -> Result<ProductManifest, ConfigError> {
        let name_key = KeyPath::of(&["product"]);
        check_identifier(&raw.product)
            .map_err(|p| self.error(&name_key, p, "use the product's short name"))?;
        let stem = self
            .doc
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem != raw.product {
            return Err(self.error(
                &name_key,
                format!(
                    "the file is `{stem}.yaml` but names product `{}`",
                    raw.product
                ),
                format!(
                    "rename the file to `{}.yaml` or correct `product`",
                    raw.product
                ),
            ));
        }

        let identity = self.identity(raw.identity)?;
        let sizes = self.sizes(raw.sizes)?;
        if raw.regions.0.is_empty() {
            return Err(self.error(
                &KeyPath::of(&["regions"]),
                "no regions are listed",
                "add one image set per region, e.g. `00WW:`",
            ));
        }
        let mut regions = BTreeMap::new();
        let mut client_owner: BTreeMap<Sha256Digest, RegionCode> = BTreeMap::new();
        for (code, region) in raw.regions.0 {
            let set = self.region(&code, region, &identity)?;
            if let Some(other) = client_owner.insert(set.activation_client.sha256, code.clone()) {
                return Err(self.error(
                    &KeyPath::of(&["regions", code.as_str(), "activation_client", "sha256"]),
                    format!(
                        "region {code} allow-lists the same activation client as region {other}"
                    ),
                    "each region has its own client; put this region's client hash here",
                ));
            }
            self.luns_fit_sectors(&code, &set, &sizes)?;
            regions.insert(code, set);
        }
        Ok(ProductManifest {
            name: raw.product,
            source: self.doc.file.clone(),
            manifest_sha256: Sha256Digest::of_bytes(self.doc.text.as_bytes()),
            identity,
            sizes,
            regions,
            trust: ManifestTrust::NotChecked,
        })
    }

    fn sizes(&self, raw: Option<SizesFile>) -> Result<DeclaredSizes, ConfigError> {
        let Some(raw) = raw else {
            return Ok(DeclaredSizes::default());
        };
        let key = KeyPath::of(&["sizes"]);
        let partitions = raw.partitions.map(|m| m.0).unwrap_or_default();
        for (name, &size) in &partitions {
            let at = key.clone().key("partitions").key(name.as_str());
            check_identifier(name)
                .map_err(|p| self.error(&at, p, "write the partition's name, e.g. `system`"))?;
            if size == 0 {
                return Err(self.error(
                    &at,
                    "size 0",
                    "write the partition's size in bytes (`fastboot getvar partition-size:NAME`)",
                ));
            }
        }
        let luns: BTreeMap<u32, u64> = raw
            .luns
            .map(|m| m.0.into_iter().map(|(lun, size)| (lun.0, size)).collect())
            .unwrap_or_default();
        for (lun, &size) in &luns {
            if size == 0 {
                return Err(self.error(
                    &key.clone().key("luns").key(lun.to_string()),
                    "size 0",
                    "write the LUN's size in bytes (sectors × sector size)",
                ));
            }
        }
        Ok(DeclaredSizes { partitions, luns })
    }

    /// A declared LUN size must be a whole number of the EDL plan's sectors.
    fn luns_fit_sectors(
        &self,
        code: &RegionCode,
        set: &ImageSet,
        sizes: &DeclaredSizes,
    ) -> Result<(), ConfigError> {
        let Some(plan) = &set.edl else {
            return Ok(());
        };
        let sector = u64::from(plan.storage.sector_size());
        for (lun, &size) in &sizes.luns {
            if size % sector != 0 {
                return Err(self.error(
                    &KeyPath::of(&["sizes", "luns"]).key(lun.to_string()),
                    format!(
                        "{size} bytes is not a whole number of the {sector}-byte sectors region \
                         {code}'s EDL plan writes"
                    ),
                    "write the LUN's size in bytes: its sector count times the sector size",
                ));
            }
        }
        Ok(())
    }

    fn identity(&self, raw: IdentityFile) -> Result<Identity, ConfigError> {
        let key = KeyPath::of(&["identity"]);
        if let Some(product) = &raw.fastboot_product {
            if product.is_empty() || product.len() > 64 || product.contains(char::is_whitespace) {
                return Err(self.error(
                    &key.clone().key("fastboot_product"),
                    format!("`{product}` cannot be a fastboot product value"),
                    "write what `fastboot getvar product` answers on this phone",
                ));
            }
        }
        if raw.fastboot_product.is_none() && raw.edl.is_empty() {
            return Err(self.error(
                &key,
                "no identity rule: neither `fastboot_product` nor `edl`",
                "add `fastboot_product:` (what `fastboot getvar product` answers) and/or `edl:` entries",
            ));
        }
        let mut edl = Vec::with_capacity(raw.edl.len());
        for (index, entry) in raw.edl.into_iter().enumerate() {
            let entry_key = key.clone().key("edl").index(index);
            let programmer = self.file(
                "programmer",
                entry.programmer,
                &entry_key.clone().key("programmer"),
            )?;
            if edl.iter().any(|e: &EdlIdentity| {
                e.hw_id == entry.hw_id.0 && e.oem_pk_hash == entry.oem_pk_hash.0
            }) {
                return Err(self.error(
                    &entry_key,
                    "this HW id and OEM PK hash are already listed",
                    "list each HW id / PK hash pair once, with the programmer it accepts",
                ));
            }
            edl.push(EdlIdentity {
                hw_id: entry.hw_id.0,
                oem_pk_hash: entry.oem_pk_hash.0,
                programmer,
            });
        }
        let unit_code = match raw.unit_code {
            None => None,
            Some(file) => {
                super::identity::check_variable_name(&file.getvar).map_err(|problem| {
                    self.error(
                        &key.clone().key("unit_code").key("getvar"),
                        problem,
                        "name the variable the bootloader publishes the code in, e.g. `imei`",
                    )
                })?;
                Some(UnitCodeSource::Getvar(file.getvar))
            }
        };
        Ok(Identity {
            fastboot_product: raw.fastboot_product,
            edl,
            unit_code,
        })
    }

    fn file(
        &self,
        key_name: &str,
        raw: FileEntryFile,
        key: &KeyPath,
    ) -> Result<ImageFile, ConfigError> {
        if raw.size == 0 {
            return Err(self.error(
                &key.clone().key("size"),
                "size 0: an empty image",
                "write the file's size in bytes (`stat -c %s FILE`)",
            ));
        }
        let path = resolve_inside(self.image_root, &raw.path)
            .map_err(|e| self.error(&key.clone().key("path"), e.to_string(), ""))?;
        Ok(ImageFile {
            key: key_name.to_string(),
            relative: raw.path,
            path,
            size: raw.size,
            sha256: raw.sha256.0,
        })
    }

    fn region(
        &self,
        code: &RegionCode,
        raw: RegionFile,
        identity: &Identity,
    ) -> Result<ImageSet, ConfigError> {
        let key = KeyPath::of(&["regions", code.as_str()]);
        check_identifier(&raw.build_id).map_err(|p| {
            self.error(
                &key.clone().key("build_id"),
                p,
                "write the build id the image set was built as",
            )
        })?;
        if raw.files.0.is_empty() {
            return Err(self.error(
                &key.clone().key("files"),
                "no files are listed",
                "list every file the plan writes, with path, size and sha256",
            ));
        }
        let mut files = BTreeMap::new();
        for (name, entry) in raw.files.0 {
            let file_key = key.clone().key("files").key(name.as_str());
            check_identifier(&name)
                .map_err(|p| self.error(&file_key, p, "name files like `system` or `boot`"))?;
            let file = self.file(&name, entry, &file_key)?;
            files.insert(name, file);
        }
        let file_ref = |name: &str, at: &KeyPath| -> Result<(), ConfigError> {
            if files.contains_key(name) {
                return Ok(());
            }
            let known: Vec<&str> = files.keys().map(String::as_str).collect();
            Err(self.error(
                at,
                format!(
                    "`{name}` is not one of this region's files ({})",
                    known.join(", ")
                ),
                "name a key of this region's `files`",
            ))
        };

        let flash_key = key.clone().key("flash");
        let fastboot = match raw.flash.fastboot {
            None => None,
            Some(plan) => {
                let plan_key = flash_key.clone().key("fastboot");
                if identity.fastboot_product.is_none() {
                    return Err(self.error(
                        &plan_key,
                        "a fastboot plan, but `identity.fastboot_product` is not set",
                        "add `identity.fastboot_product` so fastboot phones can be identified",
                    ));
                }
                if plan.partitions.is_empty()
                    && plan
                        .fastbootd
                        .as_ref()
                        .is_none_or(|f| f.partitions.is_empty())
                {
                    return Err(self.error(
                        &plan_key.clone().key("partitions"),
                        "the fastboot plan writes nothing",
                        "list `- { partition: system, image: system }` entries",
                    ));
                }
                check_slots(plan.slot, plan.set_active)
                    .map_err(|e| self.error(&plan_key.clone().key(e.key), e.problem, e.fix))?;
                let mut steps: Vec<FastbootStep> = Vec::new();
                let mut fastbootd_steps: Vec<FastbootStep> = Vec::new();
                let lists = [
                    (plan.partitions, plan_key.clone()),
                    (
                        plan.fastbootd
                            .as_ref()
                            .map(|f| f.partitions.clone())
                            .unwrap_or_default(),
                        plan_key.clone().key("fastbootd"),
                    ),
                ];
                for (list, (entries, list_key)) in lists.into_iter().enumerate() {
                    for (index, step) in entries.into_iter().enumerate() {
                        let step_key = list_key.clone().key("partitions").index(index);
                        check_identifier(&step.partition).map_err(|p| {
                            self.error(
                                &step_key.clone().key("partition"),
                                p,
                                "write the partition's name",
                            )
                        })?;
                        let earlier: Vec<FastbootStep> =
                            steps.iter().chain(&fastbootd_steps).cloned().collect();
                        if let Some(earlier) = written_before(&step.partition, &earlier, plan.slot)
                        {
                            let problem = if earlier == step.partition {
                                format!("partition `{}` is written twice", step.partition)
                            } else {
                                format!(
                                    "partition `{}` is written twice: once as `{earlier}` and \
                                     once as `{}` (slot {})",
                                    step.partition,
                                    step.partition,
                                    plan.slot.as_str()
                                )
                            };
                            return Err(self.error(
                                &step_key.clone().key("partition"),
                                problem,
                                "write each partition once",
                            ));
                        }
                        file_ref(&step.image, &step_key.clone().key("image"))?;
                        let step = FastbootStep {
                            partition: step.partition,
                            file: step.image,
                        };
                        if list == 0 {
                            steps.push(step);
                        } else {
                            fastbootd_steps.push(step);
                        }
                    }
                }
                let fastbootd = match plan.fastbootd {
                    None => None,
                    Some(f) => {
                        if let Some(key) = &f.super_empty {
                            file_ref(key, &plan_key.clone().key("fastbootd").key("super_empty"))?;
                        }
                        Some(FastbootdPlan {
                            super_empty: f.super_empty,
                            wipe: f.wipe,
                            steps: fastbootd_steps,
                        })
                    }
                };
                Some(FastbootPlan {
                    slot: plan.slot,
                    set_active: plan.set_active,
                    steps,
                    fastbootd,
                })
            }
        };
        let edl = match raw.flash.edl {
            None => None,
            Some(plan) => {
                let plan_key = flash_key.clone().key("edl");
                if identity.edl.is_empty() {
                    return Err(self.error(
                        &plan_key,
                        "an EDL plan, but `identity.edl` lists no programmer",
                        "add `identity.edl` entries (hw_id, oem_pk_hash, programmer)",
                    ));
                }
                if plan.rawprogram.is_empty() {
                    return Err(self.error(
                        &plan_key.clone().key("rawprogram"),
                        "the EDL plan names no rawprogram file",
                        "list the keys of the rawprogram*.xml files",
                    ));
                }
                for (index, name) in plan.rawprogram.iter().enumerate() {
                    file_ref(name, &plan_key.clone().key("rawprogram").index(index))?;
                }
                for (index, name) in plan.patch.iter().enumerate() {
                    file_ref(name, &plan_key.clone().key("patch").index(index))?;
                }
                Some(EdlPlan {
                    storage: plan.storage,
                    rawprogram: plan.rawprogram,
                    patch: plan.patch,
                })
            }
        };
        if fastboot.is_none() && edl.is_none() {
            return Err(self.error(
                &flash_key,
                "no flash plan: neither `fastboot` nor `edl`",
                "add a `fastboot:` plan, an `edl:` plan, or both",
            ));
        }

        let activation_client = self.activation(
            &key,
            raw.activation_client,
            &files,
            (fastboot.as_ref(), edl.as_ref()),
            file_ref,
        )?;
        Ok(ImageSet {
            region: code.clone(),
            build_id: raw.build_id,
            files,
            fastboot,
            edl,
            activation_client,
        })
    }

    fn activation(
        &self,
        region_key: &KeyPath,
        raw: ActivationClientFile,
        files: &BTreeMap<String, ImageFile>,
        (fastboot, edl): (Option<&FastbootPlan>, Option<&EdlPlan>),
        file_ref: impl Fn(&str, &KeyPath) -> Result<(), ConfigError>,
    ) -> Result<ActivationClient, ConfigError> {
        let key = region_key.clone().key("activation_client");
        if raw.verify == VerifyMethod::EdlReadback {
            let verify_key = key.clone().key("verify");
            if edl.is_none() {
                return Err(self.error(
                    &verify_key,
                    "`edl_readback` reads the client back through Firehose before the EDL \
                     reset, but this region has no `flash.edl` plan",
                    "add the region's EDL plan, or verify through the bootloader \
                     (`host_readback`, which needs its `fetch`)",
                ));
            }
            if fastboot.is_some() {
                return Err(self.error(
                    &verify_key,
                    "`edl_readback` verifies only units flashed through EDL, but this region \
                     also has a `flash.fastboot` plan, whose units could not be verified",
                    "drop `flash.fastboot`, or verify through the bootloader (`host_readback`, \
                     which needs its `fetch`)",
                ));
            }
        }
        check_identifier(&raw.partition).map_err(|p| {
            self.error(
                &key.clone().key("partition"),
                p,
                "write the partition holding the client",
            )
        })?;
        file_ref(&raw.image, &key.clone().key("image"))?;
        if let Some(plan) = fastboot {
            // A super image is written to `super`; a logical partition's own image may be
            // written to it by name (fastbootd).
            let written = plan.all_steps().any(|s| {
                s.file == raw.image
                    && (s.partition == raw.partition
                        || Some(&s.partition) == raw.logical_partition.as_ref())
            });
            if !written {
                return Err(self.error(
                    &key.clone().key("partition"),
                    format!(
                        "the fastboot plan does not write file `{}` to partition `{}`",
                        raw.image, raw.partition
                    ),
                    "the activation client must live in a partition this plan writes, from this image",
                ));
            }
        }
        let image_size = files.get(&raw.image).map(|f| f.size).unwrap_or(0);
        let location = raw
            .location(&key, image_size)
            .map_err(|r| self.error(&r.key, r.problem, r.fix))?;
        if raw.verify == VerifyMethod::DeviceDigest
            && matches!(location, ClientLocation::File { .. })
        {
            return Err(self.error(
                &key.clone().key("verify"),
                "a device digest covers a byte range, not a file inside a filesystem",
                "use `verify: host_readback` (reads only the blocks the filesystem needs) or give a `raw` range",
            ));
        }
        Ok(ActivationClient {
            partition: raw.partition,
            file: raw.image,
            location,
            sha256: raw.sha256.0,
            verify: raw.verify,
        })
    }
}
