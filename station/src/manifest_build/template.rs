//! The small template `flashgate manifest build` fills in: what is the same in every region
//! (product, identity, storage sizes, which file is which, the flash plan, the client's app
//! name and verify route). Sizes, hashes, the client's place and hash and the build id are read
//! from the release itself.
//!
//! ```yaml
//! # Comment lines before the first key become the manifest's header.
//! product: fgdemo
//! identity:
//!   fastboot_product: flashgate_sim
//!   unit_code: { getvar: imei }
//!   edl:
//!     - { hw_id: "0x001b80e100000000", oem_pk_hash: "3d41…", programmer: edl/prog.elf }
//! sizes:
//!   partitions: { boot: 100663296, system: 4294967296 }
//!   luns: { 0: 19838009344 }
//! files: { system: system.img, boot: boot.img, rawprogram0: rawprogram0.xml }
//! flash:
//!   fastboot: { slot: all, set_active: a, partitions: [ { partition: system, image: system } ] }
//!   edl: { storage: ufs, rawprogram: [rawprogram0], patch: [] }
//! activation_client: { app: ActivationClient, verify: host_readback }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, UniqueMap, YamlDocument};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestTemplate {
    pub product: String,
    pub identity: IdentityTemplate,
    #[serde(default)]
    pub sizes: Option<SizesTemplate>,
    /// Manifest file key → the file's name in each region's folder.
    pub files: UniqueMap<String, String>,
    pub flash: FlashTemplate,
    pub activation_client: ClientTemplate,
    /// The template's leading comment lines, the manifest's header.
    #[serde(skip)]
    pub header: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityTemplate {
    #[serde(default)]
    pub fastboot_product: Option<String>,
    #[serde(default)]
    pub unit_code: Option<UnitCodeTemplate>,
    #[serde(default)]
    pub edl: Vec<EdlTemplate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitCodeTemplate {
    pub getvar: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdlTemplate {
    pub hw_id: String,
    pub oem_pk_hash: String,
    /// The programmer's path inside the image root; its size and hash are read from it.
    pub programmer: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizesTemplate {
    #[serde(default)]
    pub partitions: BTreeMap<String, u64>,
    #[serde(default)]
    pub luns: BTreeMap<u32, u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashTemplate {
    #[serde(default)]
    pub fastboot: Option<FastbootTemplate>,
    #[serde(default)]
    pub edl: Option<EdlPlanTemplate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastbootTemplate {
    pub slot: String,
    #[serde(default)]
    pub set_active: Option<String>,
    pub partitions: Vec<PartitionTemplate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionTemplate {
    pub partition: String,
    pub image: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdlPlanTemplate {
    pub storage: String,
    pub rawprogram: Vec<String>,
    #[serde(default)]
    pub patch: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTemplate {
    /// The app's name: its APK is looked for at `priv-app/<app>/<app>.apk` (then `app/…`) in
    /// every filesystem of the region's images, under `/system` first.
    pub app: String,
    pub verify: String,
}

impl ManifestTemplate {
    pub fn parse(doc: &YamlDocument) -> Result<Self, ConfigError> {
        let mut template: Self = doc.parse()?;
        template.header = doc
            .text
            .lines()
            .take_while(|line| line.starts_with('#'))
            .map(str::to_string)
            .collect();
        Ok(template)
    }

    /// The file keys the EDL plan needs (its rawprogram and patch files).
    pub fn edl_keys(&self) -> Vec<&str> {
        self.flash
            .edl
            .iter()
            .flat_map(|edl| edl.rawprogram.iter().chain(&edl.patch))
            .map(String::as_str)
            .collect()
    }
}
