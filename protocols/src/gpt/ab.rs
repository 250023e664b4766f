//! Qualcomm A/B slot state in the GPT, and the slot the bootloader will boot from it.
//!
//! Qualcomm phones keep each slot's state in the attribute field of its `boot_<slot>` entry,
//! bits 48–55 (byte 6 of the little-endian 64-bit field, which UEFI leaves to the partition
//! type). The layout is the one Qualcomm's `gpt-utils.h` (AOSP `hardware/qcom/bootctrl`:
//! `AB_FLAG_OFFSET` = attribute byte 6, `AB_PARTITION_ATTR_SLOT_ACTIVE` = 1 << 2,
//! `AB_PARTITION_ATTR_BOOT_SUCCESSFUL` = 1 << 6, `AB_PARTITION_ATTR_UNBOOTABLE` = 1 << 7) and the
//! bootloader's `PartitionTableUpdate.h` (ABL, `QcomModulePkg/Library/BootLib`:
//! `PART_ATT_PRIORITY_BIT` 48, two bits; `PART_ATT_ACTIVE_BIT` 50; `PART_ATT_MAX_RETRY_CNT_BIT`
//! 51, three bits; `PART_ATT_SUCCESS_BIT` 54; `PART_ATT_UNBOOTABLE_BIT` 55) define:
//!
//! | bits  | meaning                                          |
//! |-------|--------------------------------------------------|
//! | 48–49 | priority (0–3)                                   |
//! | 50    | active                                           |
//! | 51–53 | boot attempts left (0–7)                         |
//! | 54    | boot successful (the OS marked the slot good)    |
//! | 55    | unbootable (the bootloader gave up on the slot)  |
//!
//! [`booting_slot`] decides, from those bits alone, which slot ABL boots next; see its
//! documentation for the rule and where it comes from. Sans-io: attribute values in, a slot out.

use std::fmt;

use super::Partition;

pub const PRIORITY_SHIFT: u32 = 48;
pub const PRIORITY_MASK: u64 = 0b11 << PRIORITY_SHIFT;
pub const ACTIVE: u64 = 1 << 50;
pub const RETRY_SHIFT: u32 = 51;
pub const RETRY_MASK: u64 = 0b111 << RETRY_SHIFT;
pub const SUCCESSFUL: u64 = 1 << 54;
pub const UNBOOTABLE: u64 = 1 << 55;
/// Every A/B bit: byte 6 of the attribute field.
pub const AB_BITS: u64 = 0xFF << 48;

pub const MAX_PRIORITY: u8 = 3;
pub const MAX_RETRIES: u8 = 7;

/// The slots ABL knows (`Slots[] = {L"_a", L"_b"}`), in the order it scans them.
pub const SLOT_SUFFIXES: [&str; 2] = ["a", "b"];

/// One slot's state, decoded from its `boot_<slot>` entry's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotState {
    pub priority: u8,
    pub active: bool,
    pub retry_count: u8,
    pub successful: bool,
    pub unbootable: bool,
}

impl SlotState {
    pub fn from_attributes(attributes: u64) -> Self {
        SlotState {
            priority: ((attributes & PRIORITY_MASK) >> PRIORITY_SHIFT) as u8,
            active: attributes & ACTIVE != 0,
            retry_count: ((attributes & RETRY_MASK) >> RETRY_SHIFT) as u8,
            successful: attributes & SUCCESSFUL != 0,
            unbootable: attributes & UNBOOTABLE != 0,
        }
    }

    /// `attributes` with its A/B bits replaced by this state (other bits kept). Fields out of
    /// range are clamped to their bit width.
    pub fn apply_to(self, attributes: u64) -> u64 {
        let mut bits = attributes & !AB_BITS;
        bits |= u64::from(self.priority.min(MAX_PRIORITY)) << PRIORITY_SHIFT;
        bits |= u64::from(self.retry_count.min(MAX_RETRIES)) << RETRY_SHIFT;
        if self.active {
            bits |= ACTIVE;
        }
        if self.successful {
            bits |= SUCCESSFUL;
        }
        if self.unbootable {
            bits |= UNBOOTABLE;
        }
        bits
    }

    /// ABL boots its active slot when the slot is not marked unbootable and either booted
    /// successfully before or has attempts left (`FindBootableSlot`).
    fn boots_when_active(self) -> bool {
        !self.unbootable && (self.successful || self.retry_count > 0)
    }

    /// ABL falls back to the other slot only when that slot is not unbootable and booted
    /// successfully before (`HandleActiveSlotUnbootable`): attempts left are not enough.
    fn boots_as_fallback(self) -> bool {
        !self.unbootable && self.successful
    }

    /// A/B bits all clear on `boot_a` except the retry count: ABL's "first boot" case.
    fn is_first_boot(self) -> bool {
        !self.active && !self.successful && !self.unbootable && self.priority == 0
    }
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "priority {}, {}, {} attempt(s) left, {}{}",
            self.priority,
            if self.active { "active" } else { "inactive" },
            self.retry_count,
            if self.successful {
                "successful"
            } else {
                "not successful"
            },
            if self.unbootable { ", unbootable" } else { "" }
        )
    }
}

/// Why the bootloader picks the slot it boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootReason {
    /// The active slot (highest priority among those marked active) is bootable.
    Active,
    /// No slot is active and `boot_a`'s A/B bits are all clear: ABL makes `a` active itself.
    FirstBoot,
    /// The active slot cannot boot; ABL marks it unbootable and boots the other, which booted
    /// successfully before.
    Fallback { active: &'static str },
}

/// The slot the bootloader will boot, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootingSlot {
    /// `a` or `b` (no underscore).
    pub suffix: &'static str,
    /// Its state as the GPT holds it now.
    pub state: SlotState,
    pub reason: BootReason,
}

/// Why no slot can be named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbError {
    #[error(
        "the GPT has boot_{present} but no boot_{missing}: an A/B table has both, so the slot \
         the bootloader boots cannot be told"
    )]
    HalfTable {
        present: &'static str,
        missing: &'static str,
    },
    #[error(
        "no slot is active (boot_a: {a}; boot_b: {b}) and boot_a is not blank as on a first \
         boot: the bootloader finds no slot to boot"
    )]
    NoActiveSlot { a: SlotState, b: SlotState },
    #[error(
        "no bootable slot: the active slot {active} ({active_state}) cannot boot and slot \
         {other} ({other_state}) is no fallback (it must be successful and not unbootable): \
         the bootloader will boot neither"
    )]
    NoBootableSlot {
        active: &'static str,
        active_state: SlotState,
        other: &'static str,
        other_state: SlotState,
    },
}

/// The slot Qualcomm's bootloader (ABL) boots next, from the attributes of `boot_a` and
/// `boot_b`; `Ok(None)` on a phone without slots (neither entry).
///
/// The rule is ABL's own, read from `QcomModulePkg/Library/BootLib/PartitionTableUpdate.c`
/// (`GetActiveSlot`, `FindBootableSlot`, `HandleActiveSlotUnbootable`):
/// 1. The active slot is the one with the active bit and the highest priority, scanning `a`
///    then `b` and taking a later slot only at a strictly higher priority; a slot must have a
///    priority above 0 to count (ties go to `a`).
/// 2. With no active slot: if `boot_a`'s A/B bits are clear (priority 0, not active, not
///    successful, not unbootable) it is a first boot and ABL makes `a` active and boots it;
///    otherwise nothing boots.
/// 3. The active slot boots when it is not unbootable and is successful or has attempts left.
/// 4. Otherwise ABL marks it unbootable and boots the other slot if that one is not unbootable
///    and was successful; otherwise nothing boots.
///
/// This is what the bootloader does at its next boot from the table as it is now; a retry
/// count it decrements on the way does not change the slot.
pub fn booting_slot(
    boot_a: Option<u64>,
    boot_b: Option<u64>,
) -> Result<Option<BootingSlot>, AbError> {
    let (a, b) = match (boot_a, boot_b) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(AbError::HalfTable {
                present: "a",
                missing: "b",
            })
        }
        (None, Some(_)) => {
            return Err(AbError::HalfTable {
                present: "b",
                missing: "a",
            })
        }
        (Some(a), Some(b)) => (SlotState::from_attributes(a), SlotState::from_attributes(b)),
    };
    let states = [a, b];
    let mut active: Option<usize> = None;
    let mut best = 0u8;
    for (index, state) in states.iter().enumerate() {
        if state.active && state.priority > best {
            best = state.priority;
            active = Some(index);
        }
    }
    let Some(active) = active else {
        if a.is_first_boot() {
            return Ok(Some(BootingSlot {
                suffix: SLOT_SUFFIXES[0],
                state: a,
                reason: BootReason::FirstBoot,
            }));
        }
        return Err(AbError::NoActiveSlot { a, b });
    };
    if states[active].boots_when_active() {
        return Ok(Some(BootingSlot {
            suffix: SLOT_SUFFIXES[active],
            state: states[active],
            reason: BootReason::Active,
        }));
    }
    let other = 1 - active;
    if states[other].boots_as_fallback() {
        return Ok(Some(BootingSlot {
            suffix: SLOT_SUFFIXES[other],
            state: states[other],
            reason: BootReason::Fallback {
                active: SLOT_SUFFIXES[active],
            },
        }));
    }
    Err(AbError::NoBootableSlot {
        active: SLOT_SUFFIXES[active],
        active_state: states[active],
        other: SLOT_SUFFIXES[other],
        other_state: states[other],
    })
}

/// [`booting_slot`] from a table's entries (`boot_a` and `boot_b` by name; the first of each).
pub fn booting_slot_of<'a>(
    partitions: impl IntoIterator<Item = &'a Partition>,
) -> Result<Option<BootingSlot>, AbError> {
    let (mut a, mut b) = (None, None);
    for p in partitions {
        match p.name.as_str() {
            "boot_a" if a.is_none() => a = Some(p.attributes),
            "boot_b" if b.is_none() => b = Some(p.attributes),
            _ => {}
        }
    }
    booting_slot(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Literal attribute values as a phone's GPT holds them (byte 6 of the field shown first).
    /// Priority 3, active, 7 attempts, successful: `0x7F`.
    const A_GOOD_ACTIVE: u64 = 0x007F_0000_0000_0000;
    /// Priority 3, active, 7 attempts, not yet successful (just `set_active`): `0x3F`.
    const FRESHLY_ACTIVE: u64 = 0x003F_0000_0000_0000;
    /// Priority 2, inactive, 7 attempts, successful: `0x7A`.
    const GOOD_STANDBY: u64 = 0x007A_0000_0000_0000;
    /// Priority 2, inactive, 7 attempts, not successful: `0x3A`.
    const UNTRIED_STANDBY: u64 = 0x003A_0000_0000_0000;
    /// Unbootable, everything else clear: `0x80`.
    const UNBOOTABLE_ONLY: u64 = 0x0080_0000_0000_0000;
    /// Priority 3, active, no attempts left, not successful: `0x07`.
    const ACTIVE_OUT_OF_TRIES: u64 = 0x0007_0000_0000_0000;
    /// UEFI's "required" and "legacy BIOS bootable" bits (0 and 2): not A/B state.
    const UEFI_BITS: u64 = 0b101;

    #[test]
    fn bits_decode_as_qualcomm_lays_them_out() {
        assert_eq!(
            SlotState::from_attributes(A_GOOD_ACTIVE | UEFI_BITS),
            SlotState {
                priority: 3,
                active: true,
                retry_count: 7,
                successful: true,
                unbootable: false,
            }
        );
        assert_eq!(
            SlotState::from_attributes(GOOD_STANDBY),
            SlotState {
                priority: 2,
                active: false,
                retry_count: 7,
                successful: true,
                unbootable: false,
            }
        );
        let unbootable = SlotState::from_attributes(UNBOOTABLE_ONLY);
        assert!(unbootable.unbootable && !unbootable.active && unbootable.priority == 0);
        // Byte 6 of the field as it sits in the 128-byte entry (offset 48 + 6 = 54).
        assert_eq!(A_GOOD_ACTIVE.to_le_bytes()[6], 0x7F);
        assert_eq!(
            SlotState::from_attributes(A_GOOD_ACTIVE).apply_to(UEFI_BITS),
            A_GOOD_ACTIVE | UEFI_BITS
        );
    }

    #[test]
    fn the_active_slot_boots() {
        let slot = booting_slot(Some(A_GOOD_ACTIVE), Some(GOOD_STANDBY))
            .unwrap()
            .unwrap();
        assert_eq!((slot.suffix, slot.reason), ("a", BootReason::Active));
        // After `set_active b`: b is active, untried, with attempts left.
        let slot = booting_slot(Some(GOOD_STANDBY), Some(FRESHLY_ACTIVE))
            .unwrap()
            .unwrap();
        assert_eq!((slot.suffix, slot.reason), ("b", BootReason::Active));
        assert_eq!(slot.state.retry_count, 7);
    }

    #[test]
    fn the_highest_priority_active_slot_wins_and_ties_go_to_a() {
        // Both active (a table a tool left half-switched): b at priority 3 beats a at 2.
        let a_prio2_active = 0x003E_0000_0000_0000;
        let slot = booting_slot(Some(a_prio2_active), Some(FRESHLY_ACTIVE))
            .unwrap()
            .unwrap();
        assert_eq!(slot.suffix, "b");
        let slot = booting_slot(Some(FRESHLY_ACTIVE), Some(FRESHLY_ACTIVE))
            .unwrap()
            .unwrap();
        assert_eq!(slot.suffix, "a");
        // Active at priority 0 does not count: a is active by priority, b is not.
        let b_active_prio0 = 0x007C_0000_0000_0000;
        let slot = booting_slot(Some(A_GOOD_ACTIVE), Some(b_active_prio0))
            .unwrap()
            .unwrap();
        assert_eq!(slot.suffix, "a");
    }

    #[test]
    fn a_blank_table_is_a_first_boot_of_slot_a() {
        let slot = booting_slot(Some(0), Some(0)).unwrap().unwrap();
        assert_eq!((slot.suffix, slot.reason), ("a", BootReason::FirstBoot));
        // The retry count alone does not spoil a first boot; UEFI bits are not A/B state.
        let slot = booting_slot(Some(0x0038_0000_0000_0000 | UEFI_BITS), Some(0))
            .unwrap()
            .unwrap();
        assert_eq!(slot.reason, BootReason::FirstBoot);
    }

    #[test]
    fn an_active_slot_that_cannot_boot_falls_back_to_a_successful_other_slot() {
        let slot = booting_slot(Some(GOOD_STANDBY), Some(ACTIVE_OUT_OF_TRIES))
            .unwrap()
            .unwrap();
        assert_eq!(
            (slot.suffix, slot.reason),
            ("a", BootReason::Fallback { active: "b" })
        );
        let b_active_unbootable = FRESHLY_ACTIVE | UNBOOTABLE;
        let slot = booting_slot(Some(GOOD_STANDBY), Some(b_active_unbootable))
            .unwrap()
            .unwrap();
        assert_eq!(slot.suffix, "a");
    }

    #[test]
    fn no_bootable_slot_is_refused_by_name() {
        // The fallback must have booted successfully: attempts left are not enough.
        let err = booting_slot(Some(UNTRIED_STANDBY), Some(ACTIVE_OUT_OF_TRIES)).unwrap_err();
        assert!(
            matches!(
                err,
                AbError::NoBootableSlot {
                    active: "b",
                    other: "a",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(
            "no bootable slot: the active slot b (priority 3, active, 0 attempt(s) left, not \
             successful) cannot boot"
        ));
        let both_unbootable = booting_slot(
            Some(A_GOOD_ACTIVE | UNBOOTABLE),
            Some(GOOD_STANDBY | UNBOOTABLE),
        );
        assert!(matches!(
            both_unbootable,
            Err(AbError::NoBootableSlot { active: "a", .. })
        ));
        // Nothing active, and boot_a is not blank.
        let err = booting_slot(Some(UNBOOTABLE_ONLY), Some(UNBOOTABLE_ONLY)).unwrap_err();
        assert!(matches!(err, AbError::NoActiveSlot { .. }), "{err:?}");
        let err = booting_slot(Some(GOOD_STANDBY), Some(UNTRIED_STANDBY)).unwrap_err();
        assert!(matches!(err, AbError::NoActiveSlot { .. }), "{err:?}");
    }

    #[test]
    fn a_table_without_slots_has_none_and_half_a_table_is_refused() {
        assert_eq!(booting_slot(None, None), Ok(None));
        assert_eq!(
            booting_slot(Some(A_GOOD_ACTIVE), None),
            Err(AbError::HalfTable {
                present: "a",
                missing: "b"
            })
        );
    }

    #[test]
    fn entries_are_found_by_name() {
        let entry = |name: &str, attributes| Partition {
            index: 0,
            type_guid: crate::gpt::types::for_name(name),
            unique_guid: crate::gpt::Guid::NIL,
            first_lba: 34,
            last_lba: 35,
            attributes,
            name: name.into(),
        };
        let table = [
            entry("boot_a", GOOD_STANDBY),
            entry("system_a", 0),
            entry("boot_b", FRESHLY_ACTIVE),
        ];
        assert_eq!(booting_slot_of(&table).unwrap().unwrap().suffix, "b");
        assert_eq!(booting_slot_of(&table[1..2]).unwrap(), None);
    }
}
