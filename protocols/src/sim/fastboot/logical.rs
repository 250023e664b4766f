//! fastbootd's logical partitions: finding them in the current slot's metadata, and the
//! commands that edit the metadata — `create-`, `delete-`, `resize-logical-partition` and
//! `update-super` — answered as AOSP's `fastboot/device/commands.cpp` and `flashing.cpp` do,
//! FAIL texts included. Edits are read from the current slot's metadata and written to every
//! slot the boot control HAL has (both on an A/B phone), as liblp's `UpdatePartitionTable` is
//! called by fastbootd's `UpdateAllPartitionMetadata`.

use super::{fail, okay, FastbootDevice};
use crate::lp::{self, attr, Metadata, MetadataBuilder, DEFAULT_GROUP};
use crate::sim::dynamic::{self, SuperError, SUPER};
use crate::sim::phone::PhoneMode;
use crate::transport::{Transport, TransportError};

/// Partitions `update-super` never keeps: snapshot COW partitions and adb remount's scratch.
const COW_GROUP: &str = "cow";
const SCRATCH: &str = "scratch";

/// `_a` of `system_a`, as liblp's `GetPartitionSlotSuffix`: the last two characters when they
/// are `_` and a letter.
fn slot_suffix_of(name: &str) -> Option<&str> {
    let suffix = name.get(name.len().checked_sub(2)?..)?;
    let mut chars = suffix.chars();
    (chars.next() == Some('_') && chars.next().is_some_and(|c| c.is_ascii_lowercase()))
        .then_some(suffix)
}

impl FastbootDevice {
    pub(super) fn userspace(&self) -> bool {
        self.phone.lock().mode == PhoneMode::Fastbootd
    }

    /// The current slot's metadata and its slot number.
    fn current_metadata(&self) -> Result<(Metadata, u32), SuperError> {
        let mut state = self.phone.lock();
        let slot = dynamic::slot_number(state.storage.current_slot().as_deref());
        Ok((dynamic::read_slot(&mut state.storage, slot)?, slot))
    }

    /// A logical partition as the phone finds it: the exact name, else the name with the
    /// current slot's suffix. `None` on a phone without readable metadata.
    pub(super) fn logical(&self, name: &str) -> Option<(Metadata, usize)> {
        let (metadata, slot) = self.current_metadata().ok()?;
        let index = metadata
            .partitions
            .iter()
            .position(|p| p.name == name)
            .or_else(|| {
                let full = format!("{name}{}", lp::slot_suffix(slot));
                metadata.partitions.iter().position(|p| p.name == full)
            })?;
        Some((metadata, index))
    }

    /// The current slot's logical partitions (none without readable metadata).
    pub(super) fn logical_names(&self) -> Vec<String> {
        self.current_metadata()
            .map(|(m, _)| m.partitions.into_iter().map(|p| p.name).collect())
            .unwrap_or_default()
    }

    /// Write `metadata` to every slot of the boot control HAL.
    fn write_all_slots(&self, metadata: &Metadata) -> Result<(), SuperError> {
        let mut state = self.phone.lock();
        let slots = state.storage.slot_suffixes().len().max(1) as u32;
        dynamic::write_slots(&mut state.storage, metadata, slots)
    }

    /// Flashing a partition a snapshot-based update had touched cancels that update for it
    /// (fastbootd clears the UPDATED attribute before it writes).
    pub(super) fn cancel_snapshot(&self, metadata: &Metadata, index: usize) {
        if metadata.partitions[index].attributes & attr::UPDATED == 0 {
            return;
        }
        let mut edited = metadata.clone();
        edited.partitions[index].attributes &= !attr::UPDATED;
        if let Err(e) = self.write_all_slots(&edited) {
            tracing::warn!("cancelling the snapshot of a flashed partition failed: {e}");
        }
    }

    /// The metadata to edit, or the FAIL fastbootd answers: locked devices first, then a
    /// phone without `super`.
    fn editable(&self) -> Result<Metadata, &'static str> {
        if !self.phone.lock().identity.unlocked {
            return Err("Command not available on locked devices");
        }
        self.current_metadata()
            .map(|(metadata, _)| metadata)
            .map_err(|_| "Could not open super partition")
    }

    pub(super) fn create_logical(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
        size: u64,
    ) -> Result<(), TransportError> {
        let old = match self.editable() {
            Ok(m) => m,
            Err(reason) => return fail(link, reason),
        };
        if old.partition(name).is_some() {
            return fail(link, "Partition already exists");
        }
        let Ok(mut b) = MetadataBuilder::from_metadata(&old) else {
            return fail(link, "Could not open super partition");
        };
        // AOSP adds it to the default group, without attributes.
        if b.add_partition(name, DEFAULT_GROUP, 0).is_err() {
            return fail(link, "Failed to add partition");
        }
        if b.resize_partition(name, size).is_err() {
            return fail(link, "Not enough space for partition");
        }
        self.commit(link, &b, "Partition created")
    }

    pub(super) fn delete_logical(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
    ) -> Result<(), TransportError> {
        let old = match self.editable() {
            Ok(m) => m,
            Err(reason) => return fail(link, reason),
        };
        let Ok(mut b) = MetadataBuilder::from_metadata(&old) else {
            return fail(link, "Could not open super partition");
        };
        // liblp's RemovePartition ignores a name it does not have; so does fastbootd.
        let _ = b.remove_partition(name);
        self.commit(link, &b, "Partition deleted")
    }

    pub(super) fn resize_logical(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
        size: u64,
    ) -> Result<(), TransportError> {
        let mut old = match self.editable() {
            Ok(m) => m,
            Err(reason) => return fail(link, reason),
        };
        let Some(index) = old.partitions.iter().position(|p| p.name == name) else {
            return fail(link, "Partition does not exist");
        };
        // Resizing cancels a snapshot of the partition.
        old.partitions[index].attributes &= !attr::UPDATED;
        let Ok(mut b) = MetadataBuilder::from_metadata(&old) else {
            return fail(link, "Could not open super partition");
        };
        if b.resize_partition(name, size).is_err() {
            return fail(link, "Not enough space to resize partition");
        }
        self.commit(link, &b, "Partition resized")
    }

    fn commit(
        &mut self,
        link: &mut dyn Transport,
        b: &MetadataBuilder,
        done: &str,
    ) -> Result<(), TransportError> {
        let written = b
            .export()
            .map_err(SuperError::from)
            .and_then(|m| self.write_all_slots(&m));
        match written {
            Ok(()) => okay(link, done),
            Err(e) => {
                tracing::info!("partition table not written: {e}");
                fail(link, "Failed to write partition table")
            }
        }
    }

    /// `update-super:<name>[:wipe]` with a downloaded `super_empty.img` (or a whole super
    /// image): with `wipe`, or when the phone's metadata is unreadable, the new table replaces
    /// everything; otherwise the other slot's partitions are kept in the new table.
    pub(super) fn update_super(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
        wipe: bool,
    ) -> Result<(), TransportError> {
        if !self.phone.lock().identity.unlocked {
            return fail(link, "Command not available on locked devices");
        }
        // fastbootd moves the download out of its buffer.
        let Some(staging) = self.download.take() else {
            return fail(link, "No data available");
        };
        let mut read_at = |offset: u64, buf: &mut [u8]| staging.read_exact_at(offset, buf);
        let Ok((_, new)) = lp::read_image(&mut read_at, 0) else {
            return fail(link, "Data is not a valid logical partition metadata image");
        };
        if self.phone.lock().storage.partition(name).is_none() {
            return fail(
                link,
                format!("Cannot find {name}, build may be missing broken or missing boot_devices"),
            );
        }
        if name != SUPER {
            return fail(
                link,
                format!("{name} is not this phone's super partition ({SUPER})"),
            );
        }
        let old = self.current_metadata();
        let Ok((old, slot)) = old.map_err(|e| tracing::info!("old metadata unreadable: {e}"))
        else {
            return self.flash_new_table(link, &new);
        };
        if wipe {
            return self.flash_new_table(link, &new);
        }
        let current = lp::slot_suffix(slot);
        let keep: Vec<&str> = old
            .partitions
            .iter()
            .filter(|p| slot_suffix_of(&p.name) != Some(current.as_str()))
            .filter(|p| old.group_of(p).is_none_or(|g| g.name != COW_GROUP))
            .filter(|p| p.name != SCRATCH)
            .map(|p| p.name.as_str())
            .collect();
        let mut merged = new;
        if !keep.is_empty() {
            let imported = MetadataBuilder::from_metadata(&merged)
                .and_then(|mut b| b.import_partitions(&old, &keep).map(|()| b));
            let Ok(b) = imported else {
                return fail(
                    link,
                    "Old partitions are not compatible with the new super layout; wipe needed",
                );
            };
            let Ok(exported) = b.export() else {
                return fail(link, "Unable to build new partition table; wipe needed");
            };
            merged = exported;
        }
        match self.write_all_slots(&merged) {
            Ok(()) => okay(link, "Successfully updated partition table"),
            Err(e) => {
                tracing::info!("update-super: {e}");
                fail(link, "Unable to write new partition table")
            }
        }
    }

    fn flash_new_table(
        &mut self,
        link: &mut dyn Transport,
        metadata: &Metadata,
    ) -> Result<(), TransportError> {
        let flashed = dynamic::flash_table(&mut self.phone.lock().storage, metadata);
        match flashed {
            Ok(()) => okay(link, "Successfully flashed partition table"),
            Err(e) => {
                tracing::info!("update-super: {e}");
                fail(link, "Unable to flash new partition table")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::slot_suffix_of;

    #[test]
    fn slot_suffixes_as_liblp_reads_them() {
        assert_eq!(slot_suffix_of("system_a"), Some("_a"));
        assert_eq!(slot_suffix_of("vendor_b"), Some("_b"));
        assert_eq!(slot_suffix_of("userdata"), None);
        assert_eq!(slot_suffix_of("_a"), Some("_a"));
        assert_eq!(slot_suffix_of("a"), None);
        assert_eq!(slot_suffix_of("x_1"), None);
    }
}
