//! How an image set is written: a fastboot plan (partition ← file, A/B slot handling) and/or an
//! EDL plan (Firehose rawprogram/patch files; the programmer comes from the identity rules).

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastbootPlan {
    /// Which slot(s) of A/B partitions are written.
    pub slot: SlotSelection,
    /// Slot made active after writing (`set_active`); verification then checks the slot the
    /// phone reports as `current-slot`, i.e. the one that will boot.
    pub set_active: Option<AbSlot>,
    pub steps: Vec<FastbootStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastbootStep {
    /// Base partition name (`system`); the slot suffix is added by the flasher for A/B devices.
    pub partition: String,
    /// Key of the file in the image set's `files`.
    pub file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotSelection {
    /// The slot the phone reports as `current-slot` (fastboot's default).
    Active,
    /// The slot that is not current.
    Other,
    A,
    B,
    /// Both slots, so that whichever boots holds the region's build.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AbSlot {
    A,
    B,
}

impl AbSlot {
    pub fn suffix(self) -> &'static str {
        match self {
            Self::A => "_a",
            Self::B => "_b",
        }
    }
    pub fn letter(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdlPlan {
    pub storage: StorageKind,
    /// Keys of rawprogram*.xml files, programmed in this order (programs before patches).
    pub rawprogram: Vec<String>,
    /// Keys of patch*.xml files, applied after all programs.
    pub patch: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// UFS: 4096-byte sectors.
    Ufs,
    /// eMMC: 512-byte sectors.
    Emmc,
}

impl StorageKind {
    pub fn sector_size(self) -> u32 {
        match self {
            Self::Ufs => 4096,
            Self::Emmc => 512,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FlashFile {
    #[serde(default)]
    pub fastboot: Option<FastbootPlanFile>,
    #[serde(default)]
    pub edl: Option<EdlPlanFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FastbootPlanFile {
    pub slot: SlotSelection,
    #[serde(default)]
    pub set_active: Option<AbSlot>,
    pub partitions: Vec<FastbootStepFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FastbootStepFile {
    pub partition: String,
    pub image: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EdlPlanFile {
    pub storage: StorageKind,
    pub rawprogram: Vec<String>,
    #[serde(default)]
    pub patch: Vec<String>,
}
