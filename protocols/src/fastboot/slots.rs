//! A/B slot handling the way the AOSP client does it: a partition has slots when
//! `has-slot:PART` is `yes`; then the suffix is the current slot unless one is asked for
//! (`a`, `b`, `all`, `other`). Partitions without slots are used by their plain name.

use std::fmt;
use std::str::FromStr;

use super::client::Fastboot;
use super::error::FastbootError;
use crate::transport::Transport;

/// Which slot(s) of a slotted partition to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SlotChoice {
    /// The device's `current-slot`.
    #[default]
    Current,
    /// One named slot (`a`, `b`, …).
    Slot(String),
    /// Every slot the device has (`slot-count`).
    All,
    /// The slot after the current one (wrapping), i.e. the inactive one on A/B devices.
    Other,
}

impl FromStr for SlotChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "" | "current" => Ok(SlotChoice::Current),
            "all" => Ok(SlotChoice::All),
            "other" => Ok(SlotChoice::Other),
            _ => match super::vars::parse_slot(text) {
                Some(slot) => Ok(SlotChoice::Slot(slot)),
                None => Err(format!(
                    "`{text}` is not a slot: use a, b, all, other or current"
                )),
            },
        }
    }
}

impl fmt::Display for SlotChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotChoice::Current => f.write_str("current"),
            SlotChoice::Slot(s) => f.write_str(s),
            SlotChoice::All => f.write_str("all"),
            SlotChoice::Other => f.write_str("other"),
        }
    }
}

fn slot_letters(count: u32) -> Vec<String> {
    (0..count.min(26))
        .map(|i| char::from(b'a' + i as u8).to_string())
        .collect()
}

impl<T: Transport> Fastboot<T> {
    /// The partition names (`system_a`, …) that `choice` means for `partition` on this device.
    pub fn resolve_partitions(
        &mut self,
        partition: &str,
        choice: &SlotChoice,
    ) -> Result<Vec<String>, FastbootError> {
        if !self.has_slot(partition)? {
            if *choice != SlotChoice::Current {
                // As the AOSP client: a slot asked for on a partition without slots is a
                // warning, not an error, and the partition is used by its own name.
                tracing::warn!(
                    partition,
                    slot = %choice,
                    "partition has no slots; using it without a suffix"
                );
            }
            return Ok(vec![partition.to_string()]);
        }
        let slots = self.resolve_slots(choice)?;
        Ok(slots.iter().map(|s| format!("{partition}_{s}")).collect())
    }

    /// The slot letters `choice` means on this device.
    pub fn resolve_slots(&mut self, choice: &SlotChoice) -> Result<Vec<String>, FastbootError> {
        let count = self.slot_count()?;
        let letters = slot_letters(count);
        match choice {
            SlotChoice::Current => match self.current_slot()? {
                Some(slot) => Ok(vec![slot]),
                None => Err(no_current()),
            },
            SlotChoice::Slot(slot) => {
                if letters.contains(slot) {
                    Ok(vec![slot.clone()])
                } else {
                    Err(FastbootError::Unsupported(format!(
                        "slot `{slot}` does not exist: the device reports slot-count {count}"
                    )))
                }
            }
            SlotChoice::All => {
                if letters.is_empty() {
                    Err(FastbootError::Unsupported(
                        "`all` slots asked for but the device reports no slot-count".into(),
                    ))
                } else {
                    Ok(letters)
                }
            }
            SlotChoice::Other => {
                let Some(now) = self.current_slot()? else {
                    return Err(no_current());
                };
                let Some(index) = letters.iter().position(|s| *s == now) else {
                    return Err(FastbootError::Unsupported(format!(
                        "current slot `{now}` is outside slot-count {count}"
                    )));
                };
                if letters.len() < 2 {
                    return Err(FastbootError::Unsupported(format!(
                        "no other slot: the device reports slot-count {count}"
                    )));
                }
                Ok(vec![letters[(index + 1) % letters.len()].clone()])
            }
        }
    }
}

fn no_current() -> FastbootError {
    FastbootError::Unsupported(
        "the device has slotted partitions but reports no current-slot; pass an explicit slot"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastboot::client::tests::{scripted, send, Step::Expect};

    #[test]
    fn choices_parse() {
        assert_eq!("a".parse::<SlotChoice>(), Ok(SlotChoice::Slot("a".into())));
        assert_eq!("_b".parse::<SlotChoice>(), Ok(SlotChoice::Slot("b".into())));
        assert_eq!("all".parse::<SlotChoice>(), Ok(SlotChoice::All));
        assert_eq!("other".parse::<SlotChoice>(), Ok(SlotChoice::Other));
        assert!("slot1".parse::<SlotChoice>().is_err());
    }

    #[test]
    fn current_slot_is_appended_when_the_partition_has_slots() {
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:has-slot:boot"),
            send(b"OKAYyes"),
            Expect(b"getvar:slot-count"),
            send(b"OKAY2"),
            Expect(b"getvar:current-slot"),
            send(b"OKAY_b"),
        ]);
        let mut fb = Fastboot::new(link);
        assert_eq!(
            fb.resolve_partitions("boot", &SlotChoice::Current).unwrap(),
            vec!["boot_b"]
        );
        drop(fb);
        dev.join().unwrap();
    }

    #[test]
    fn other_and_all_follow_slot_count() {
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:has-slot:system"),
            send(b"OKAYyes"),
            Expect(b"getvar:slot-count"),
            send(b"OKAY2"),
            Expect(b"getvar:current-slot"),
            send(b"OKAYb"),
            Expect(b"getvar:has-slot:system"),
            send(b"OKAYyes"),
            Expect(b"getvar:slot-count"),
            send(b"OKAY2"),
        ]);
        let mut fb = Fastboot::new(link);
        assert_eq!(
            fb.resolve_partitions("system", &SlotChoice::Other).unwrap(),
            vec!["system_a"]
        );
        assert_eq!(
            fb.resolve_partitions("system", &SlotChoice::All).unwrap(),
            vec!["system_a", "system_b"]
        );
        drop(fb);
        dev.join().unwrap();
    }

    #[test]
    fn unslotted_partition_keeps_its_name_and_unknown_slot_is_refused() {
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:has-slot:userdata"),
            send(b"FAILunknown variable"),
            Expect(b"getvar:has-slot:boot"),
            send(b"OKAYyes"),
            Expect(b"getvar:slot-count"),
            send(b"OKAY2"),
        ]);
        let mut fb = Fastboot::new(link);
        assert_eq!(
            fb.resolve_partitions("userdata", &SlotChoice::Slot("a".into()))
                .unwrap(),
            vec!["userdata"]
        );
        let err = fb
            .resolve_partitions("boot", &SlotChoice::Slot("c".into()))
            .unwrap_err();
        assert!(matches!(err, FastbootError::Unsupported(_)), "{err:?}");
        drop(fb);
        dev.join().unwrap();
    }
}
