//! The phones file (`flashgate run … --phones phones.yaml`, `flashgate sim … --phone FILE`):
//! which simulated phone arrives on each slot — its mode, identity, A/B state, what its
//! partitions already hold, how its bootloader is set up, and how it misbehaves. Loaded as
//! strictly as the other configs; this is only the description: `sim_fleet::scripted` builds
//! the phones from it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{ConfigError, KeyPath};
use super::phone_bootloader::{bootloader_of, BootloaderEntry, BootloaderScript};
pub use super::phone_faults::FaultScript;
use super::phone_faults::{faults_of, ByteCount, FaultsEntry};
use super::yaml::{UniqueMap, YamlDocument};
use crate::events::SlotNumber;
use crate::mode::Mode;

/// Bytes a `fill:` without `size:` or a `read_back:` of a fill may describe at most in memory.
pub const MAX_READ_BACK_BYTES: u64 = 64 << 20;

/// A loaded phones file.
#[derive(Debug, Clone)]
pub struct PhonesFile {
    /// Kept to place errors found while building the phones (a partition the phone lacks).
    pub doc: YamlDocument,
    pub phones: Vec<PhoneScript>,
}

/// One phone as the file describes it; what it leaves out is the batch product's rig phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneScript {
    /// Where in the file it is (`phones[2]`, `phones[2].swap_at_next_reboot`).
    pub key: KeyPath,
    /// The slot it arrives on (`None` for a phone swapped in, which takes its predecessor's).
    pub slot: Option<SlotNumber>,
    pub mode: Mode,
    /// fastboot `getvar product` (default: the product's).
    pub product: Option<String>,
    /// fastboot serial (default: the rig's serial for the slot).
    pub serial: Option<String>,
    /// Slot suffixes (default `a`, `b`; empty for a phone without A/B).
    pub slots: Option<Vec<String>>,
    /// The slot that boots (default: the first).
    pub current_slot: Option<String>,
    /// What partitions hold when the phone arrives, by partition name.
    pub partitions: Vec<(String, Contents)>,
    /// How its bootloader and boot ROM are set up (default: the rig's).
    pub bootloader: BootloaderScript,
    pub faults: FaultScript,
    /// The phone an operator puts on the slot while this one reboots.
    pub swap_at_next_reboot: Option<Box<PhoneScript>>,
}

/// Bytes for a partition or a read-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// An image file, raw or Android sparse (path resolved against the phones file's folder).
    Image(PathBuf),
    /// This byte repeated `size` bytes (default: the whole partition).
    Fill { byte: u8, size: Option<u64> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhonesDoc {
    phones: Vec<PhoneEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneEntry {
    #[serde(default)]
    slot: Option<SlotNumber>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    slots: Option<Vec<String>>,
    #[serde(default)]
    current_slot: Option<String>,
    #[serde(default)]
    partitions: Option<UniqueMap<String, ContentsEntry>>,
    #[serde(default)]
    bootloader: Option<BootloaderEntry>,
    #[serde(default)]
    faults: Option<FaultsEntry>,
    #[serde(default)]
    swap_at_next_reboot: Option<Box<PhoneEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentsEntry {
    #[serde(default)]
    image: Option<PathBuf>,
    #[serde(default)]
    fill: Option<u8>,
    #[serde(default)]
    size: Option<ByteCount>,
}

impl PhonesFile {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::from_document(YamlDocument::read(file)?)
    }

    pub fn from_document(doc: YamlDocument) -> Result<Self, ConfigError> {
        let raw: PhonesDoc = doc.parse()?;
        let folder = doc.file.parent().map(Path::to_path_buf).unwrap_or_default();
        if raw.phones.is_empty() {
            return Err(doc.error_at(
                &KeyPath::of(&["phones"]),
                "no phones",
                "describe at least one phone (configs/demo/phones.yaml has an example)",
            ));
        }
        let mut phones = Vec::with_capacity(raw.phones.len());
        let mut seen = std::collections::BTreeSet::new();
        for (i, entry) in raw.phones.into_iter().enumerate() {
            let key = KeyPath::of(&["phones"]).index(i);
            let Some(slot) = entry.slot else {
                return Err(doc.error_at(
                    &key,
                    "this phone has no `slot`",
                    "say which slot it arrives on (`slot: 1`)",
                ));
            };
            if slot == 0 || !seen.insert(slot) {
                return Err(doc.error_at(
                    &key.clone().key("slot"),
                    format!("slot {slot} is zero or given to an earlier phone"),
                    "give each phone its own slot, counted from 1",
                ));
            }
            phones.push(convert(&doc, &folder, key, slot, entry)?);
        }
        Ok(PhonesFile { doc, phones })
    }

    /// The phone on `slot`.
    pub fn phone_on(&self, slot: SlotNumber) -> Option<&PhoneScript> {
        self.phones.iter().find(|p| p.slot == Some(slot))
    }
}

/// The phone `entry` describes; `slot` is the one it arrives on (a phone swapped in has none
/// of its own and takes `slot` from the phone it replaces).
fn convert(
    doc: &YamlDocument,
    folder: &Path,
    key: KeyPath,
    slot: SlotNumber,
    entry: PhoneEntry,
) -> Result<PhoneScript, ConfigError> {
    if let (Some(slots), Some(current)) = (&entry.slots, &entry.current_slot) {
        if !slots.contains(current) {
            return Err(doc.error_at(
                &key.clone().key("current_slot"),
                format!("slot `{current}` is not one of the phone's slots {slots:?}"),
                "name one of `slots`",
            ));
        }
    }
    if let Some(slots) = &entry.slots {
        if let Some(bad) = slots
            .iter()
            .find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_lowercase()))
        {
            return Err(doc.error_at(
                &key.clone().key("slots"),
                format!("slot suffix `{bad}` is not a lowercase letter"),
                "write slots as `[a, b]` (or `[]` for a phone without A/B)",
            ));
        }
    }
    let mut partitions = Vec::new();
    for (name, contents) in entry.partitions.map(|m| m.0).unwrap_or_default() {
        let at = key.clone().key("partitions").key(name.as_str());
        let contents = contents_of(
            doc,
            folder,
            &at,
            contents.image,
            contents.fill,
            contents.size,
        )?;
        partitions.push((name, contents));
    }
    let bootloader = match entry.bootloader {
        None => BootloaderScript::default(),
        Some(b) => {
            let swapped = entry.slot.is_none();
            bootloader_of(doc, &key.clone().key("bootloader"), slot, swapped, b)?
        }
    };
    let faults = match entry.faults {
        None => FaultScript::default(),
        Some(f) => faults_of(doc, folder, &key.clone().key("faults"), f)?,
    };
    let swap_at_next_reboot = match entry.swap_at_next_reboot {
        None => None,
        Some(next) => {
            let at = key.clone().key("swap_at_next_reboot");
            if next.slot.is_some() {
                return Err(doc.error_at(
                    &at.clone().key("slot"),
                    "a phone swapped in takes the slot of the one it replaces",
                    "remove `slot` here",
                ));
            }
            Some(Box::new(convert(doc, folder, at, slot, *next)?))
        }
    };
    Ok(PhoneScript {
        key,
        slot: entry.slot,
        mode: entry.mode.unwrap_or(Mode::Fastboot),
        product: entry.product,
        serial: entry.serial,
        slots: entry.slots,
        current_slot: entry.current_slot,
        partitions,
        bootloader,
        faults,
        swap_at_next_reboot,
    })
}

pub(super) fn contents_of(
    doc: &YamlDocument,
    folder: &Path,
    at: &KeyPath,
    image: Option<PathBuf>,
    fill: Option<u8>,
    size: Option<ByteCount>,
) -> Result<Contents, ConfigError> {
    match (image, fill) {
        (Some(path), None) if size.is_none() => Ok(Contents::Image(folder.join(path))),
        (None, Some(byte)) => Ok(Contents::Fill {
            byte,
            size: size.map(|s| s.0),
        }),
        (Some(_), None) => Err(doc.error_at(
            &at.clone().key("size"),
            "`size` goes with `fill`; an image's size is its own",
            "remove `size`",
        )),
        _ => Err(doc.error_at(
            at,
            "give exactly one of `image: FILE` (raw or sparse) or `fill: BYTE`",
            "e.g. `{ image: ../images/00CN/system.img }` or `{ fill: 0xff, size: 1M }`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DropWritesScript;

    fn load(text: &str) -> Result<PhonesFile, ConfigError> {
        PhonesFile::from_document(YamlDocument::from_text("/line/phones.yaml", text))
    }

    #[test]
    fn a_full_phone_and_its_swap() {
        let file = load(
            "phones:\n\
             - slot: 2\n\
             \x20 mode: edl\n\
             \x20 serial: CN0001\n\
             \x20 slots: [a, b]\n\
             \x20 current_slot: b\n\
             \x20 partitions:\n\
             \x20   system_b: { image: cn/system.img }\n\
             \x20   misc: { fill: 0xff, size: 4K }\n\
             \x20 faults:\n\
             \x20   drop_writes: [system_a]\n\
             \x20   disconnect_after: 64M\n\
             \x20   hang: [{ on: \"flash:boot_a\", for: 5s }, { on: getvar, for: ever, times: 1 }]\n\
             \x20   fail: [{ on: \"oem sha256\", message: not today }]\n\
             \x20   rate: 40M\n\
             \x20   programmer_boot: 250ms\n\
             \x20   read_back: [{ on: \"fetch:system_a\", fill: 0, size: 1M }]\n\
             \x20 swap_at_next_reboot: { serial: OTHER1, product: otherphone }\n",
        )
        .unwrap();
        let p = &file.phones[0];
        assert_eq!(p.slot, Some(2));
        assert_eq!(p.mode, Mode::Edl);
        assert_eq!(p.current_slot.as_deref(), Some("b"));
        assert_eq!(
            p.partitions,
            [
                (
                    "misc".to_string(),
                    Contents::Fill {
                        byte: 0xff,
                        size: Some(4096)
                    }
                ),
                (
                    "system_b".to_string(),
                    Contents::Image(PathBuf::from("/line/cn/system.img"))
                ),
            ]
        );
        let f = &p.faults;
        assert_eq!(
            f.drop_writes,
            Some(DropWritesScript::Partitions(vec!["system_a".into()]))
        );
        assert_eq!(f.disconnect_after, Some(64 << 20));
        assert_eq!(
            f.hang,
            [
                ("flash:boot_a".into(), Some(Duration::from_secs(5)), None),
                ("getvar".into(), None, Some(1)),
            ]
        );
        assert_eq!(f.fail, [("oem sha256".into(), "not today".into(), None)]);
        assert_eq!(f.rate, Some(40 << 20));
        assert_eq!(f.programmer_boot, Some(Duration::from_millis(250)));
        assert_eq!(f.read_back.len(), 1);
        let swap = p.swap_at_next_reboot.as_ref().unwrap();
        assert_eq!(swap.serial.as_deref(), Some("OTHER1"));
        assert_eq!(swap.mode, Mode::Fastboot);
        assert_eq!(file.phone_on(2), Some(p));
    }

    fn refused(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn mistakes_name_file_line_and_key() {
        let e = refused("phones:\n  - slot: 1\n    faults:\n      rate: fast\n");
        assert!(e.contains("/line/phones.yaml:4"), "{e}");
        assert!(e.contains("phones[0].faults.rate"), "{e}");
        assert!(e.contains("not a byte count"), "{e}");

        let e = refused("phones:\n  - slot: 1\n    colour: red\n");
        assert!(e.contains(":3") && e.contains("colour"), "{e}");

        let e = refused("phones:\n  - slot: 1\n  - slot: 1\n");
        assert!(e.contains("phones[1].slot") && e.contains("slot 1"), "{e}");

        let e = refused("phones:\n  - slot: 1\n    slots: [a, b]\n    current_slot: c\n");
        assert!(e.contains(":4") && e.contains("current_slot"), "{e}");

        let e = refused(
            "phones:\n  - slot: 1\n    partitions:\n      boot_a: { image: b.img, fill: 1 }\n",
        );
        assert!(e.contains("phones[0].partitions.boot_a"), "{e}");

        let e =
            refused("phones:\n  - slot: 1\n    faults:\n      hang: [{ on: flash, for: soon }]\n");
        assert!(e.contains("not a time"), "{e}");

        let e = refused("phones:\n  - slot: 1\n    faults: { drop_writes: some }\n");
        assert!(e.contains("drop_writes") && e.contains("`some`"), "{e}");

        let e = refused("phones:\n  - mode: edl\n");
        assert!(e.contains("no `slot`"), "{e}");

        let e = refused("phones:\n  - slot: 1\n    swap_at_next_reboot: { slot: 2 }\n");
        assert!(e.contains("swap_at_next_reboot.slot"), "{e}");
        assert!(refused("phones: []\n").contains("no phones"));
    }
}
