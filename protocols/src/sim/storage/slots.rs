//! A/B slot state, kept where Qualcomm bootloaders keep it: in the GPT attribute bits of the
//! `boot_<slot>` partitions (bits 48–55, as ABL's `PartitionAttributes` define them). Because it
//! lives in the table on storage, the fastboot personality (`set_active`, `getvar
//! current-slot`) and the EDL personality (reading or programming the GPT) see the same state.

use super::{Storage, StorageError};
use crate::gpt::Gpt;

/// Priority, 2 bits: the bootloader tries the bootable slot with the highest priority.
const PRIORITY_SHIFT: u32 = 48;
const PRIORITY_MASK: u64 = 0x3 << PRIORITY_SHIFT;
/// The slot marked active by `set_active`.
pub const SLOT_ATTR_ACTIVE: u64 = 1 << 50;
/// Boot attempts left, 3 bits.
const RETRY_SHIFT: u32 = 51;
const RETRY_MASK: u64 = 0x7 << RETRY_SHIFT;
/// The OS booted from this slot and marked it good.
pub const SLOT_ATTR_SUCCESSFUL: u64 = 1 << 54;
/// The bootloader gave up on this slot.
pub const SLOT_ATTR_UNBOOTABLE: u64 = 1 << 55;

const MAX_PRIORITY: u64 = 3;
const MAX_RETRIES: u64 = 7;

/// One slot's state as `getvar slot-*:<s>` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// Suffix letter without underscore (`a`).
    pub suffix: String,
    pub active: bool,
    pub priority: u8,
    pub retry_count: u8,
    pub successful: bool,
    pub unbootable: bool,
}

fn slot_of(attributes: u64, suffix: &str) -> SlotInfo {
    SlotInfo {
        suffix: suffix.to_string(),
        active: attributes & SLOT_ATTR_ACTIVE != 0,
        priority: ((attributes & PRIORITY_MASK) >> PRIORITY_SHIFT) as u8,
        retry_count: ((attributes & RETRY_MASK) >> RETRY_SHIFT) as u8,
        successful: attributes & SLOT_ATTR_SUCCESSFUL != 0,
        unbootable: attributes & SLOT_ATTR_UNBOOTABLE != 0,
    }
}

/// Slot suffixes of a table: every `x` with a `boot_x` partition, in table order.
pub(crate) fn suffixes(gpt: &Gpt) -> Vec<String> {
    gpt.partitions
        .iter()
        .filter_map(|p| p.name.strip_prefix("boot_"))
        .filter(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_lowercase()))
        .map(str::to_string)
        .collect()
}

/// Fresh phone: the first slot active and successful, the others bootable at a lower priority.
pub(crate) fn initialise(gpt: &mut Gpt) {
    for (i, s) in suffixes(gpt).iter().enumerate() {
        if let Some(p) = gpt.find_mut(&format!("boot_{s}")) {
            p.attributes &= !(PRIORITY_MASK | SLOT_ATTR_ACTIVE | RETRY_MASK | SLOT_ATTR_SUCCESSFUL);
            p.attributes |= MAX_RETRIES << RETRY_SHIFT;
            if i == 0 {
                p.attributes |= MAX_PRIORITY << PRIORITY_SHIFT | SLOT_ATTR_ACTIVE;
                p.attributes |= SLOT_ATTR_SUCCESSFUL;
            } else {
                p.attributes |= (MAX_PRIORITY - 1) << PRIORITY_SHIFT;
            }
        }
    }
}

impl Storage {
    /// The LUN holding the boot partitions (slot state lives there).
    fn slot_lun(&self) -> Option<usize> {
        self.luns.iter().position(|l| !suffixes(&l.gpt).is_empty())
    }

    /// Slot suffixes (`["a", "b"]`), empty on a phone without A/B.
    pub fn slot_suffixes(&self) -> Vec<String> {
        self.slot_lun()
            .map(|i| suffixes(&self.luns[i].gpt))
            .unwrap_or_default()
    }

    pub fn slot(&self, suffix: &str) -> Option<SlotInfo> {
        let lun = &self.luns[self.slot_lun()?];
        let p = lun.gpt.find(&format!("boot_{suffix}"))?;
        Some(slot_of(p.attributes, suffix))
    }

    pub fn slots(&self) -> Vec<SlotInfo> {
        self.slot_suffixes()
            .iter()
            .filter_map(|s| self.slot(s))
            .collect()
    }

    /// The slot that will boot: the active one, else the bootable one with the highest
    /// priority (what ABL picks). `None` on a phone without slots.
    pub fn current_slot(&self) -> Option<String> {
        let slots = self.slots();
        if let Some(active) = slots.iter().find(|s| s.active && !s.unbootable) {
            return Some(active.suffix.clone());
        }
        slots
            .iter()
            .filter(|s| !s.unbootable)
            .max_by_key(|s| s.priority)
            .or_else(|| slots.first())
            .map(|s| s.suffix.clone())
    }

    /// `fastboot set_active <s>`: the slot becomes active with top priority and a full retry
    /// budget, not yet successful and bootable; the others lose the active flag and drop below
    /// it. Written to both GPT copies.
    pub fn set_active_slot(&mut self, suffix: &str) -> Result<(), StorageError> {
        let lun = self
            .slot_lun()
            .ok_or_else(|| StorageError::NoSuchSlot(suffix.to_string()))?;
        let l = &mut self.luns[lun];
        let all = suffixes(&l.gpt);
        if !all.iter().any(|s| s == suffix) {
            return Err(StorageError::NoSuchSlot(suffix.to_string()));
        }
        for s in &all {
            let Some(p) = l.gpt.find_mut(&format!("boot_{s}")) else {
                continue;
            };
            if s == suffix {
                p.attributes &=
                    !(PRIORITY_MASK | RETRY_MASK | SLOT_ATTR_SUCCESSFUL | SLOT_ATTR_UNBOOTABLE);
                p.attributes |=
                    MAX_PRIORITY << PRIORITY_SHIFT | SLOT_ATTR_ACTIVE | MAX_RETRIES << RETRY_SHIFT;
            } else {
                let prio = ((p.attributes & PRIORITY_MASK) >> PRIORITY_SHIFT).min(MAX_PRIORITY - 1);
                p.attributes &= !(PRIORITY_MASK | SLOT_ATTR_ACTIVE);
                p.attributes |= prio << PRIORITY_SHIFT;
            }
        }
        Storage::write_table(l)
    }

    /// Set a slot's successful/unbootable flags (what the OS or a failed boot would do; lets
    /// tests stage a phone whose other slot is in a given state).
    pub fn set_slot_flags(
        &mut self,
        suffix: &str,
        successful: bool,
        unbootable: bool,
    ) -> Result<(), StorageError> {
        let lun = self
            .slot_lun()
            .ok_or_else(|| StorageError::NoSuchSlot(suffix.to_string()))?;
        let l = &mut self.luns[lun];
        let p = l
            .gpt
            .find_mut(&format!("boot_{suffix}"))
            .ok_or_else(|| StorageError::NoSuchSlot(suffix.to_string()))?;
        p.attributes &= !(SLOT_ATTR_SUCCESSFUL | SLOT_ATTR_UNBOOTABLE);
        if successful {
            p.attributes |= SLOT_ATTR_SUCCESSFUL;
        }
        if unbootable {
            p.attributes |= SLOT_ATTR_UNBOOTABLE;
        }
        Storage::write_table(l)
    }
}
