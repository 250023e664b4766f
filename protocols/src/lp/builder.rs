//! Building and editing metadata the way liblp's `MetadataBuilder` does, so images we make and
//! metadata a simulated fastbootd changes look like a phone's: the metadata area aligned up to
//! the device's alignment, sizes rounded up to the logical block size, new extents taken from
//! the lowest free aligned regions, a partition's unaligned tail extended in place first, and
//! shrinking cutting extents from the end.
//!
//! Left out: the on-device heuristic that allocates `_b` partitions from the upper half of
//! super on Virtual A/B phones (it depends on device properties; lpmake on a host never uses
//! it), and free-region hints.

use super::allocator::{align_up, BuilderPartition};
use super::Group;
use super::{
    attr, encode_name, total_metadata_size, BlockDevice, ExtentTarget, Geometry, LpError, Metadata,
    Partition, Which, DEFAULT_ALIGNMENT, DEFAULT_BLOCK_SIZE, DEFAULT_GROUP, DEFAULT_SUPER_NAME,
    HEADER_SIZE_V1_2, MAX_METADATA_SIZE, SECTOR_SIZE, VERSION_FOR_EXPANDED_HEADER,
    VERSION_FOR_UPDATED_ATTR,
};

/// The physical partition that holds the metadata and the logical partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub partition_name: String,
    /// Bytes; a multiple of `logical_block_size`.
    pub size: u64,
    /// Partition alignment in bytes (0: the logical block size).
    pub alignment: u32,
    pub alignment_offset: u32,
    pub logical_block_size: u32,
}

impl DeviceSpec {
    /// A partition named `super` of `size` bytes with lpmake's defaults (1 MiB alignment,
    /// 4096-byte blocks).
    pub fn super_partition(size: u64) -> DeviceSpec {
        DeviceSpec {
            partition_name: DEFAULT_SUPER_NAME.to_string(),
            size,
            alignment: DEFAULT_ALIGNMENT,
            alignment_offset: 0,
            logical_block_size: DEFAULT_BLOCK_SIZE,
        }
    }
}

/// Metadata under construction or being edited (see the module documentation).
#[derive(Debug, Clone)]
pub struct MetadataBuilder {
    pub(super) geometry: Geometry,
    pub(super) block_devices: Vec<BlockDevice>,
    groups: Vec<Group>,
    pub(super) partitions: Vec<BuilderPartition>,
    minor_version_floor: u16,
    header_flags: u32,
}

fn build_error(message: String) -> LpError {
    LpError::Build(message)
}

impl MetadataBuilder {
    /// Empty metadata for `device` with `slot_count` slots of `metadata_max_size` bytes (rounded
    /// up to a sector), and the `default` group.
    pub fn new(
        device: DeviceSpec,
        metadata_max_size: u32,
        slot_count: u32,
    ) -> Result<MetadataBuilder, LpError> {
        // liblp refuses sizes below a header before it rounds up to a sector.
        let metadata_max_size = Some(u64::from(metadata_max_size))
            .filter(|&m| m >= u64::from(HEADER_SIZE_V1_2))
            .and_then(|m| align_up(m, SECTOR_SIZE))
            .filter(|&m| m <= u64::from(MAX_METADATA_SIZE))
            .ok_or_else(|| {
                build_error(format!(
                    "metadata size {metadata_max_size} must be between 256 bytes and 1 MiB"
                ))
            })? as u32;
        if slot_count == 0 {
            return Err(build_error("metadata slot count must be at least 1".into()));
        }
        let bs = device.logical_block_size;
        let name = &device.partition_name;
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(build_error(format!("block device {name:?}: {what}")))
            }
        };
        check(
            bs != 0 && u64::from(bs).is_multiple_of(SECTOR_SIZE),
            "logical block size must be a non-zero multiple of 512",
        )?;
        check(
            device.size.is_multiple_of(u64::from(bs)),
            "size must be a multiple of its block size",
        )?;
        check(
            u64::from(device.alignment).is_multiple_of(SECTOR_SIZE)
                && u64::from(device.alignment_offset).is_multiple_of(SECTOR_SIZE),
            "alignment and alignment offset must be multiples of 512",
        )?;
        encode_name(name)
            .map_err(|reason| build_error(format!("block device {name:?}: {reason}")))?;
        let geometry = Geometry {
            metadata_max_size,
            metadata_slot_count: slot_count,
            logical_block_size: bs,
        };
        geometry.validate(Which::Only)?;
        let reserved = total_metadata_size(&geometry);
        let alignment = if device.alignment != 0 {
            device.alignment
        } else {
            bs
        };
        let first_free = align_up(reserved, u64::from(alignment))
            .ok_or_else(|| build_error("metadata area overflows".into()))?;
        let needed = first_free + u64::from(bs);
        if device.size < needed {
            return Err(build_error(format!(
                "block device {name:?} is {} bytes; its metadata and one block need {needed}",
                device.size
            )));
        }
        let mut builder = MetadataBuilder {
            geometry,
            block_devices: vec![BlockDevice {
                first_logical_sector: first_free / SECTOR_SIZE,
                alignment: device.alignment,
                alignment_offset: device.alignment_offset,
                size: device.size,
                partition_name: device.partition_name,
                flags: 0,
            }],
            groups: Vec::new(),
            partitions: Vec::new(),
            minor_version_floor: 0,
            header_flags: 0,
        };
        builder.add_group(DEFAULT_GROUP, 0)?;
        Ok(builder)
    }

    /// Edit existing metadata (as read from a slot or a `super_empty.img`).
    pub fn from_metadata(metadata: &Metadata) -> Result<MetadataBuilder, LpError> {
        metadata.validate(Which::Only)?;
        let mut builder = MetadataBuilder {
            geometry: metadata.geometry,
            block_devices: metadata.block_devices.clone(),
            groups: metadata.groups.clone(),
            partitions: Vec::new(),
            minor_version_floor: 0,
            header_flags: metadata.header_flags,
        };
        if metadata.minor_version >= VERSION_FOR_EXPANDED_HEADER {
            builder.minor_version_floor = VERSION_FOR_EXPANDED_HEADER;
        }
        for p in &metadata.partitions {
            let group = metadata
                .group_of(p)
                .map(|g| g.name.clone())
                .unwrap_or_default();
            builder.partitions.push(BuilderPartition {
                name: p.name.clone(),
                group,
                attributes: p.attributes,
                extents: metadata.partition_extents(p).to_vec(),
            });
        }
        Ok(builder)
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn block_devices(&self) -> &[BlockDevice] {
        &self.block_devices
    }

    /// Write the 256-byte 10.2 header with these flags (`header_flag::*`).
    pub fn set_header_flags(&mut self, flags: u32) {
        self.minor_version_floor = self.minor_version_floor.max(VERSION_FOR_EXPANDED_HEADER);
        self.header_flags = flags;
    }

    pub fn add_group(&mut self, name: &str, maximum_size: u64) -> Result<(), LpError> {
        encode_name(name).map_err(|reason| build_error(format!("group {name:?}: {reason}")))?;
        if self.groups.iter().any(|g| g.name == name) {
            return Err(build_error(format!("group {name:?} already exists")));
        }
        self.groups.push(Group {
            name: name.to_string(),
            flags: 0,
            maximum_size,
        });
        Ok(())
    }

    /// Change a group's maximum size (0: unlimited); not allowed for `default`.
    pub fn resize_group(&mut self, name: &str, maximum_size: u64) -> Result<(), LpError> {
        if name == DEFAULT_GROUP {
            return Err(build_error("the default group's size cannot change".into()));
        }
        let group = self.groups.iter_mut().find(|g| g.name == name);
        let group = group.ok_or_else(|| build_error(format!("no group {name:?}")))?;
        group.maximum_size = maximum_size;
        Ok(())
    }

    /// Remove a group and every partition in it; not allowed for `default`.
    pub fn remove_group(&mut self, name: &str) -> Result<(), LpError> {
        if name == DEFAULT_GROUP {
            return Err(build_error("the default group cannot be removed".into()));
        }
        let before = self.groups.len();
        self.groups.retain(|g| g.name != name);
        if self.groups.len() == before {
            return Err(build_error(format!("no group {name:?}")));
        }
        self.partitions.retain(|p| p.group != name);
        Ok(())
    }

    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }

    /// Add an empty partition (size 0) to `group`; [`Self::resize_partition`] gives it space.
    pub fn add_partition(
        &mut self,
        name: &str,
        group: &str,
        attributes: u32,
    ) -> Result<(), LpError> {
        encode_name(name).map_err(|reason| build_error(format!("partition {name:?}: {reason}")))?;
        if self.partitions.iter().any(|p| p.name == name) {
            return Err(build_error(format!("partition {name:?} already exists")));
        }
        if !self.groups.iter().any(|g| g.name == group) {
            return Err(build_error(format!(
                "no group {group:?} for partition {name:?}"
            )));
        }
        if attributes & !attr::MASK != 0 {
            return Err(build_error(format!(
                "partition {name:?}: unknown attributes {attributes:#x}"
            )));
        }
        self.partitions.push(BuilderPartition {
            name: name.to_string(),
            group: group.to_string(),
            attributes,
            extents: Vec::new(),
        });
        Ok(())
    }

    pub fn remove_partition(&mut self, name: &str) -> Result<(), LpError> {
        let index = self.index_of(name)?;
        self.partitions.remove(index);
        Ok(())
    }

    pub fn partition_names(&self) -> Vec<String> {
        self.partitions.iter().map(|p| p.name.clone()).collect()
    }

    /// Bytes the partition maps, if it exists.
    pub fn partition_size(&self, name: &str) -> Option<u64> {
        self.partitions
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.size())
    }

    /// Bytes logical partitions may use on all block devices.
    pub fn allocatable_space(&self) -> u64 {
        self.block_devices
            .iter()
            .map(|d| d.size.saturating_sub(d.first_logical_sector * SECTOR_SIZE))
            .sum()
    }

    /// Bytes partitions take on the block devices.
    pub fn used_space(&self) -> u64 {
        self.partitions
            .iter()
            .map(BuilderPartition::bytes_on_disk)
            .sum()
    }

    fn index_of(&self, name: &str) -> Result<usize, LpError> {
        self.partitions
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| LpError::PartitionNotFound {
                name: name.to_string(),
            })
    }

    /// Resize a partition to `size` bytes rounded up to the logical block size: growing takes
    /// free space (within its group's maximum), shrinking drops sectors from the end.
    pub fn resize_partition(&mut self, name: &str, size: u64) -> Result<(), LpError> {
        let index = self.index_of(name)?;
        let block = u64::from(self.geometry.logical_block_size);
        let aligned = align_up(size, block)
            .ok_or_else(|| build_error(format!("partition {name:?}: size {size} overflows")))?;
        let old = self.partitions[index].size();
        if aligned > old {
            self.check_group_room(index, aligned - old)?;
            self.grow(index, aligned - old)?;
        } else if aligned < old {
            self.partitions[index].shrink_to(aligned);
        }
        Ok(())
    }

    /// Take the partitions named in `names`, extents and all, from `old` (liblp's
    /// `ImportPartitions`, with which fastbootd's `update-super` keeps the other slot's
    /// partitions): the block device tables must match, each partition's group must exist
    /// here, a partition of that name here must be empty, and its group must have room.
    pub fn import_partitions(&mut self, old: &Metadata, names: &[&str]) -> Result<(), LpError> {
        let same_devices = old.block_devices.len() == self.block_devices.len()
            && old
                .block_devices
                .iter()
                .zip(&self.block_devices)
                .all(|(a, b)| {
                    a.first_logical_sector == b.first_logical_sector
                        && a.size == b.size
                        && a.partition_name == b.partition_name
                });
        if !same_devices {
            return Err(build_error("the block device tables differ".into()));
        }
        for p in old
            .partitions
            .iter()
            .filter(|p| names.contains(&p.name.as_str()))
        {
            let index = match self.partitions.iter().position(|q| q.name == p.name) {
                Some(index) => index,
                None => {
                    let group = old.group_of(p).map(|g| g.name.as_str()).unwrap_or_default();
                    self.add_partition(&p.name, group, p.attributes)?;
                    self.partitions.len() - 1
                }
            };
            if self.partitions[index].size() > 0 {
                return Err(build_error(format!(
                    "importing {:?} would overwrite a non-empty partition",
                    p.name
                )));
            }
            let extents = old.partition_extents(p).to_vec();
            let needed = extents
                .iter()
                .filter(|e| matches!(e.target, ExtentTarget::Linear { .. }))
                .fold(0u64, |sum, e| sum.saturating_add(e.len_bytes()));
            self.check_group_room(index, needed)?;
            self.partitions[index].extents = extents;
        }
        Ok(())
    }

    fn check_group_room(&self, index: usize, needed: u64) -> Result<(), LpError> {
        let partition = &self.partitions[index];
        let Some(group) = self.groups.iter().find(|g| g.name == partition.group) else {
            return Err(build_error(format!("no group {:?}", partition.group)));
        };
        if group.maximum_size == 0 {
            return Ok(());
        }
        let used: u64 = self
            .partitions
            .iter()
            .filter(|p| p.group == group.name)
            .map(BuilderPartition::bytes_on_disk)
            .sum();
        let free = group.maximum_size.saturating_sub(used);
        if free < needed {
            return Err(LpError::GroupFull {
                group: group.name.clone(),
                partition: partition.name.clone(),
                needed,
                free,
                maximum: group.maximum_size,
            });
        }
        Ok(())
    }

    /// The metadata to encode: groups and partitions in the order they were added, each
    /// partition's extents contiguous in the extent table.
    pub fn export(&self) -> Result<Metadata, LpError> {
        let mut metadata = Metadata {
            geometry: self.geometry,
            minor_version: self.minor_version_floor,
            header_flags: self.header_flags,
            partitions: Vec::new(),
            extents: Vec::new(),
            groups: self.groups.clone(),
            block_devices: self.block_devices.clone(),
        };
        for (group_index, group) in self.groups.iter().enumerate() {
            let used: u64 = self
                .partitions
                .iter()
                .filter(|p| p.group == group.name)
                .map(BuilderPartition::bytes_on_disk)
                .sum();
            if group.maximum_size != 0 && used > group.maximum_size {
                return Err(build_error(format!(
                    "group {:?} (entry {group_index}) holds {used} bytes, more than its maximum {}",
                    group.name, group.maximum_size
                )));
            }
        }
        for p in &self.partitions {
            if p.attributes & attr::MASK_V1 != 0 {
                metadata.minor_version = metadata.minor_version.max(VERSION_FOR_UPDATED_ATTR);
            }
            let group_index = self.groups.iter().position(|g| g.name == p.group);
            let group_index = group_index.ok_or_else(|| {
                build_error(format!("partition {:?}: no group {:?}", p.name, p.group))
            })?;
            metadata.partitions.push(Partition {
                name: p.name.clone(),
                attributes: p.attributes,
                first_extent_index: metadata.extents.len() as u32,
                num_extents: p.extents.len() as u32,
                group_index: group_index as u32,
            });
            metadata.extents.extend_from_slice(&p.extents);
        }
        metadata.validate(Which::Only)?;
        Ok(metadata)
    }
}
