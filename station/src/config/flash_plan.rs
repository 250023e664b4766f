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
    /// Written in the bootloader.
    pub steps: Vec<FastbootStep>,
    /// Then written in userspace fastboot (fastbootd): a dynamic-partition phone's logical
    /// partitions inside `super`, as AOSP's `fastboot flashall` does.
    pub fastbootd: Option<FastbootdPlan>,
}

/// The fastbootd part of a plan: the phone reboots to fastbootd, optionally gets a new `super`
/// layout (`update-super` with a `super_empty.img`), has its logical partitions written (each
/// resized to its image first), and reboots back to its bootloader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastbootdPlan {
    /// Key of the `super_empty.img` sent with `update-super` before the partitions.
    pub super_empty: Option<String>,
    /// `update-super:…:wipe`: replace the whole table, not only the slot's partitions.
    pub wipe: bool,
    pub steps: Vec<FastbootStep>,
}

impl FastbootPlan {
    /// Every partition the plan writes, bootloader steps first.
    pub fn all_steps(&self) -> impl Iterator<Item = &FastbootStep> {
        self.steps
            .iter()
            .chain(self.fastbootd.iter().flat_map(|f| f.steps.iter()))
    }
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

impl SlotSelection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Other => "other",
            Self::A => "a",
            Self::B => "b",
            Self::All => "all",
        }
    }

    /// Whether a plan with this selection may write slot `letter` of an A/B partition.
    fn may_write(self, letter: &str) -> bool {
        match self {
            Self::A => letter == "a",
            Self::B => letter == "b",
            Self::Active | Self::Other | Self::All => true,
        }
    }
}

/// A fastboot plan whose slot handling cannot leave the phone booting what it wrote: which key
/// is wrong (`slot` or `set_active`), what is wrong, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SlotInconsistency {
    pub key: &'static str,
    pub problem: String,
    pub fix: String,
}

/// Verification checks the slot the phone will boot, so the plan must write that slot: the
/// slot it activates, or (without `set_active`) the slot the phone reports as current.
pub(super) fn check_slots(
    slot: SlotSelection,
    set_active: Option<AbSlot>,
) -> Result<(), SlotInconsistency> {
    match (slot, set_active) {
        (SlotSelection::All, _) | (SlotSelection::Active, None) => Ok(()),
        // The phone boots its current slot, which may not be the one written; verification
        // of the booting slot then refuses such a phone. A plan for phones known to boot
        // this slot (fresh from the factory) is legitimate.
        (SlotSelection::A | SlotSelection::B, None) => Ok(()),
        (SlotSelection::A, Some(AbSlot::A)) | (SlotSelection::B, Some(AbSlot::B)) => Ok(()),
        (SlotSelection::A | SlotSelection::B, Some(active)) => Err(SlotInconsistency {
            key: "set_active",
            problem: format!(
                "the plan writes slot {} but activates slot {}: phones would boot slot {}, \
                 which this plan does not write",
                slot.as_str(),
                active.letter(),
                active.letter()
            ),
            fix: format!(
                "activate the slot the plan writes (`set_active: {}`), or write both slots \
                 (`slot: all`)",
                slot.as_str()
            ),
        }),
        (SlotSelection::Active | SlotSelection::Other, Some(active)) => Err(SlotInconsistency {
            key: "set_active",
            problem: format!(
                "`slot: {}` writes whichever slot each phone reports (or does not report) as \
                 current, so activating slot {} may boot a slot this plan did not write",
                slot.as_str(),
                active.letter()
            ),
            fix: format!(
                "name the slot: `slot: {0}` with `set_active: {0}`, or `slot: all`",
                active.letter()
            ),
        }),
        (SlotSelection::Other, None) => Err(SlotInconsistency {
            key: "slot",
            problem: "`slot: other` writes the slot the phone does not boot, and nothing \
                      activates it: phones would keep booting the build already there"
                .into(),
            fix: "write `slot: a` with `set_active: a` (or b), or `slot: all`".into(),
        }),
    }
}

/// The partition listed earlier in the plan that `partition` writes again, if any: the same
/// name, or `system_a` where `system` is listed and the plan writes slot a.
pub(super) fn written_before<'a>(
    partition: &str,
    earlier: &'a [FastbootStep],
    slot: SlotSelection,
) -> Option<&'a str> {
    let base_of = |name: &str| -> Option<(String, &'static str)> {
        for letter in ["a", "b"] {
            if let Some(base) = name.strip_suffix(&format!("_{letter}")) {
                return Some((base.to_string(), letter));
            }
        }
        None
    };
    earlier.iter().map(|s| s.partition.as_str()).find(|other| {
        *other == partition
            || base_of(partition)
                .is_some_and(|(base, letter)| base == *other && slot.may_write(letter))
            || base_of(other)
                .is_some_and(|(base, letter)| base == partition && slot.may_write(letter))
    })
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
    #[serde(default)]
    pub partitions: Vec<FastbootStepFile>,
    #[serde(default)]
    pub fastbootd: Option<FastbootdPlanFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FastbootdPlanFile {
    #[serde(default)]
    pub super_empty: Option<String>,
    #[serde(default)]
    pub wipe: bool,
    pub partitions: Vec<FastbootStepFile>,
}

#[derive(Clone, Deserialize)]
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
