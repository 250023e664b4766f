//! A dynamic-partition phone, as every phone launched with Android 10 or later ships: the GPT
//! holds the boot chain's partitions and one `super`, and `system`, `vendor`, … are logical
//! partitions inside `super`, described by Android's LP metadata ([`crate::lp`]).
//!
//! A new phone's `super` holds what a factory `super.img` gives it (as AOSP's
//! `build_super_image.py` makes it for a non-retrofit A/B phone): three metadata slots of
//! 64 KiB, one group per slot (`qti_dynamic_partitions_a`/`_b`, as Qualcomm names them, each
//! half of what `super` can hold), slot a's partitions sized, slot b's present and empty, all
//! read-only. A phone whose storage already holds valid metadata (a simulator restarted on the
//! same directory) keeps it.
//!
//! The personalities read and write the metadata through [`read_slot`], [`write_slots`] and
//! [`flash_table`], which work on the phone's storage as fastbootd's liblp does on the block
//! device.

use crate::lp::{
    self, attr, DeviceSpec, Geometry, LpError, Metadata, MetadataBuilder, DEFAULT_ALIGNMENT,
    DEFAULT_BLOCK_SIZE, DEFAULT_METADATA_MAX_SIZE,
};

use super::storage::{Storage, StorageError};

/// The physical partition that holds the metadata (`fs_mgr_get_super_partition_name` on a
/// phone that is not a retrofit).
pub const SUPER: &str = "super";

/// Metadata slots of a non-retrofit A/B phone's `super` (`--metadata-slots 3` in AOSP's
/// `build_super_image.py`); a phone without slots has 2.
pub const AB_METADATA_SLOTS: u32 = 3;

/// Qualcomm's group name; each slot has its own (`…_a`, `…_b`).
pub const GROUP: &str = "qti_dynamic_partitions";

/// What the metadata area and its alignment take from the start of `super`, at most.
const RESERVED: u64 = 1 << 20;

/// Slot a's logical partitions of a shipped phone, in 64ths of their group.
const DEFAULT_LOGICAL: &[(&str, u64)] = &[
    ("system", 24),
    ("system_ext", 6),
    ("product", 10),
    ("vendor", 10),
    ("odm", 2),
];

/// Why the phone's `super` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SuperError {
    #[error(transparent)]
    Lp(#[from] LpError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The shape of a dynamic-partition phone (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicLayout {
    /// Bytes of the physical `super` partition.
    pub super_size: u64,
    /// Slot a's logical partitions and their sizes, without suffix; empty for the shipped
    /// default (system, system_ext, product, vendor, odm in proportion to `super`).
    pub logical: Vec<(String, u64)>,
}

impl DynamicLayout {
    pub fn new(super_size: u64) -> Self {
        DynamicLayout {
            super_size,
            logical: Vec::new(),
        }
    }

    /// The metadata a factory `super.img` of this layout carries, for a `super` of
    /// `device_size` bytes on a phone with these slot suffixes.
    pub fn factory_metadata(
        &self,
        device_size: u64,
        slots: &[String],
    ) -> Result<Metadata, LpError> {
        let slot_count = if slots.is_empty() {
            2
        } else {
            AB_METADATA_SLOTS
        };
        let device = DeviceSpec {
            partition_name: SUPER.to_string(),
            size: device_size,
            alignment: DEFAULT_ALIGNMENT,
            alignment_offset: 0,
            logical_block_size: DEFAULT_BLOCK_SIZE,
        };
        let mut b = MetadataBuilder::new(device, DEFAULT_METADATA_MAX_SIZE, slot_count)?;
        let groups = slots.len().max(1) as u64;
        let group_size = (device_size.saturating_sub(RESERVED) / groups) & !(RESERVED - 1);
        if group_size == 0 {
            return Err(LpError::Build(format!(
                "super of {device_size} bytes leaves no room for {groups} partition group(s)"
            )));
        }
        let logical: Vec<(String, u64)> = if self.logical.is_empty() {
            let block = u64::from(DEFAULT_BLOCK_SIZE);
            DEFAULT_LOGICAL
                .iter()
                .map(|(name, share)| (name.to_string(), group_size / 64 * share / block * block))
                .collect()
        } else {
            self.logical.clone()
        };
        let suffixes: Vec<String> = if slots.is_empty() {
            vec![String::new()]
        } else {
            slots.iter().map(|s| format!("_{s}")).collect()
        };
        for (index, suffix) in suffixes.iter().enumerate() {
            let group = format!("{GROUP}{suffix}");
            b.add_group(&group, group_size)?;
            for (name, size) in &logical {
                let full = format!("{name}{suffix}");
                b.add_partition(&full, &group, attr::READONLY)?;
                // The first slot's partitions hold the factory build; the others are empty.
                if index == 0 {
                    b.resize_partition(&full, *size)?;
                }
            }
        }
        b.export()
    }

    /// Give a new phone's `super` its factory metadata, unless it already holds a valid
    /// geometry (a phone kept in files remembers what was flashed).
    pub fn install(&self, storage: &mut Storage) -> Result<(), SuperError> {
        let info = storage
            .partition(SUPER)
            .ok_or_else(|| StorageError::NoSuchPartition(SUPER.to_string()))?;
        if read_geometry(storage).is_ok() {
            return Ok(());
        }
        let slots = storage.slot_suffixes();
        let metadata = self.factory_metadata(info.size_bytes, &slots)?;
        flash_table(storage, &metadata)
    }
}

/// The geometry of the phone's `super` (primary copy, else backup).
pub fn read_geometry(storage: &mut Storage) -> Result<Geometry, SuperError> {
    Ok(lp::read_geometry(&mut reader(storage))?)
}

/// The metadata of `super`'s metadata slot `slot` (0 for `_a`), primary copy else backup.
pub fn read_slot(storage: &mut Storage, slot: u32) -> Result<Metadata, SuperError> {
    let geometry = read_geometry(storage)?;
    Ok(lp::read_metadata(&mut reader(storage), &geometry, slot)?)
}

/// Write `metadata` into metadata slots `0..slots` (primary, then backup, each), as liblp's
/// `UpdatePartitionTable` does for every slot of the boot control HAL. The geometry on the
/// device must be the metadata's: a table built for another device is refused.
pub fn write_slots(
    storage: &mut Storage,
    metadata: &Metadata,
    slots: u32,
) -> Result<(), SuperError> {
    let on_device = read_geometry(storage)?;
    if on_device != metadata.geometry {
        return Err(LpError::Build(
            "the new table's geometry differs from the one on the device".to_string(),
        )
        .into());
    }
    check_device_size(storage, metadata)?;
    for slot in 0..slots.min(metadata.geometry.metadata_slot_count) {
        for w in lp::slot_update_writes(metadata, slot)? {
            storage.write_partition(SUPER, w.offset, &w.bytes)?;
        }
    }
    Ok(())
}

/// Write a fresh table (both geometries, every slot), as liblp's `FlashPartitionTable`.
pub fn flash_table(storage: &mut Storage, metadata: &Metadata) -> Result<(), SuperError> {
    check_device_size(storage, metadata)?;
    for w in lp::flash_table_writes(metadata)? {
        storage.write_partition(SUPER, w.offset, &w.bytes)?;
    }
    Ok(())
}

/// liblp refuses a table whose super block device is not the size of the partition.
fn check_device_size(storage: &Storage, metadata: &Metadata) -> Result<(), SuperError> {
    let actual = storage
        .partition(SUPER)
        .ok_or_else(|| StorageError::NoSuchPartition(SUPER.to_string()))?
        .size_bytes;
    let said = metadata.super_device().map(|d| d.size).unwrap_or(0);
    if said != actual {
        return Err(LpError::Build(format!(
            "the table is for a {said}-byte super, this phone's is {actual} bytes"
        ))
        .into());
    }
    Ok(())
}

/// The metadata slot of a slot suffix (`a` → 0); 0 on a phone without slots.
pub fn slot_number(suffix: Option<&str>) -> u32 {
    suffix
        .and_then(|s| s.bytes().next())
        .map_or(0, |c| u32::from(c.saturating_sub(b'a')))
}

fn reader(storage: &mut Storage) -> impl FnMut(u64, &mut [u8]) -> std::io::Result<()> + '_ {
    move |offset, buf| {
        storage
            .read_partition(SUPER, offset, buf)
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Phone;

    #[test]
    fn a_new_phone_ships_with_slot_a_filled_and_slot_b_empty() {
        let phone = Phone::builder()
            .dynamic_partitions(256 << 20)
            .build()
            .unwrap();
        let mut state = phone.lock();
        let storage = &mut state.storage;
        for name in ["boot_a", "vbmeta_b", "super", "userdata"] {
            assert!(storage.partition(name).is_some(), "{name}");
        }
        assert!(storage.partition("system_a").is_none(), "system is logical");
        let geometry = read_geometry(storage).unwrap();
        assert_eq!(geometry.metadata_slot_count, AB_METADATA_SLOTS);
        let m = read_slot(storage, 0).unwrap();
        assert_eq!(
            m,
            read_slot(storage, 1).unwrap(),
            "every slot holds the table"
        );
        let group_a = m
            .groups
            .iter()
            .find(|g| g.name == "qti_dynamic_partitions_a");
        assert_eq!(group_a.unwrap().maximum_size, 127 << 20);
        let system_a = m.find("system_a").unwrap();
        assert_eq!(
            m.partition_size(system_a),
            (127 << 20) * 24 / 64 / 4096 * 4096
        );
        assert_eq!(system_a.attributes, attr::READONLY);
        assert_eq!(m.partition_size(m.find("vendor_b").unwrap()), 0);
        assert_eq!(m.summaries().len(), 10);
    }

    #[test]
    fn explicit_logical_partitions_and_a_phone_without_slots() {
        let phone = Phone::builder()
            .slots(&[])
            .partition("boot", 1 << 20)
            .dynamic_partitions(32 << 20)
            .logical_partition("system", 5 << 20)
            .build()
            .unwrap();
        let mut state = phone.lock();
        let m = read_slot(&mut state.storage, 0).unwrap();
        assert_eq!(m.geometry.metadata_slot_count, 2);
        let names: Vec<_> = m.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["system"]);
        assert_eq!(m.groups[1].name, GROUP);
        assert_eq!(m.partition_size(m.find("system").unwrap()), 5 << 20);
    }

    #[test]
    fn a_phone_kept_in_files_keeps_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let build = || {
            Phone::builder()
                .storage_dir(dir.path())
                .dynamic_partitions(64 << 20)
                .build()
                .unwrap()
        };
        let phone = build();
        {
            let mut state = phone.lock();
            let mut b =
                MetadataBuilder::from_metadata(&read_slot(&mut state.storage, 0).unwrap()).unwrap();
            b.remove_partition("odm_b").unwrap();
            write_slots(&mut state.storage, &b.export().unwrap(), 2).unwrap();
        }
        drop(phone);
        let again = build();
        let mut state = again.lock();
        let m = read_slot(&mut state.storage, 1).unwrap();
        assert!(
            m.partition("odm_b").is_none(),
            "the edit survived the restart"
        );
    }

    #[test]
    fn a_table_for_another_device_is_refused() {
        let phone = Phone::builder()
            .dynamic_partitions(64 << 20)
            .build()
            .unwrap();
        let mut state = phone.lock();
        let other = DynamicLayout::new(128 << 20)
            .factory_metadata(128 << 20, &["a".into(), "b".into()])
            .unwrap();
        let err = flash_table(&mut state.storage, &other).unwrap_err();
        assert!(err.to_string().contains("134217728-byte super"), "{err}");
        let err = write_slots(&mut state.storage, &other, 2).unwrap_err();
        assert!(err.to_string().contains("134217728-byte super"), "{err}");
        let mut b =
            MetadataBuilder::from_metadata(&read_slot(&mut state.storage, 0).unwrap()).unwrap();
        b.add_partition("extra", "default", 0).unwrap();
        let mut other_geometry = b.export().unwrap();
        other_geometry.geometry.metadata_max_size *= 2;
        let err = write_slots(&mut state.storage, &other_geometry, 2).unwrap_err();
        assert!(err.to_string().contains("differs"), "{err}");
    }

    #[test]
    fn slot_numbers() {
        assert_eq!(slot_number(Some("a")), 0);
        assert_eq!(slot_number(Some("b")), 1);
        assert_eq!(slot_number(None), 0);
    }
}
