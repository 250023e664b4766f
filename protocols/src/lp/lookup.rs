//! Questions asked of decoded metadata: which partition, how big, in which group, and where
//! its bytes lie on the super device.

use super::{
    attr, slot_suffix, BlockDevice, Extent, ExtentTarget, Group, LpError, Metadata, Partition,
    ReadAt, Which, BLOCK_DEVICE_SLOT_SUFFIXED, GROUP_SLOT_SUFFIXED, NAME_LEN, SECTOR_SIZE,
};

/// One line of `flashgate image ls super.img`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSummary {
    pub name: String,
    /// Bytes.
    pub size: u64,
    pub group: String,
    pub attributes: u32,
    pub num_extents: u32,
}

/// A piece of a logical byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappedRange {
    /// `len` bytes at byte `offset` of block device `block_device` (0: the super partition).
    Device {
        block_device: u32,
        offset: u64,
        len: u64,
    },
    /// `len` bytes that read as zeros (a ZERO extent).
    Zero { len: u64 },
}

impl MappedRange {
    pub fn len(&self) -> u64 {
        match *self {
            MappedRange::Device { len, .. } | MappedRange::Zero { len } => len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Metadata {
    /// The partition named exactly `name`.
    pub fn partition(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// `name` as given (`system_a`, or a partition without A/B copies), else `name` with
    /// slot `slot`'s suffix (`system` in slot 1 is `system_b`).
    pub fn partition_for_slot(&self, name: &str, slot: u32) -> Option<&Partition> {
        self.partition(name)
            .or_else(|| self.partition(&format!("{name}{}", slot_suffix(slot))))
    }

    /// Like [`Metadata::partition`], with an error naming what was not found.
    pub fn find(&self, name: &str) -> Result<&Partition, LpError> {
        self.partition(name)
            .ok_or_else(|| LpError::PartitionNotFound {
                name: name.to_string(),
            })
    }

    /// The super partition's entry (the first block device).
    pub fn super_device(&self) -> Option<&BlockDevice> {
        self.block_devices.first()
    }

    /// The partition's extents in logical order (empty if the entry does not belong to this
    /// metadata: validated metadata always has them).
    pub fn partition_extents(&self, partition: &Partition) -> &[Extent] {
        let first = partition.first_extent_index as usize;
        first
            .checked_add(partition.num_extents as usize)
            .and_then(|end| self.extents.get(first..end))
            .unwrap_or(&[])
    }

    /// Bytes in the partition (saturating: only a hostile ZERO extent could overflow).
    pub fn partition_size(&self, partition: &Partition) -> u64 {
        self.partition_extents(partition)
            .iter()
            .fold(0u64, |sum, e| sum.saturating_add(e.len_bytes()))
    }

    pub fn group_of(&self, partition: &Partition) -> Option<&Group> {
        self.groups.get(partition.group_index as usize)
    }

    /// Every partition with its size and group, in table order.
    pub fn summaries(&self) -> Vec<PartitionSummary> {
        self.partitions
            .iter()
            .map(|p| PartitionSummary {
                name: p.name.clone(),
                size: self.partition_size(p),
                group: self.group_of(p).map(|g| g.name.clone()).unwrap_or_default(),
                attributes: p.attributes,
                num_extents: p.num_extents,
            })
            .collect()
    }

    /// Where the partition's bytes `offset..offset + len` lie: pieces on block devices or
    /// zero runs, in logical order, together exactly `len` bytes.
    pub fn map_range(
        &self,
        partition: &Partition,
        offset: u64,
        len: u64,
    ) -> Result<Vec<MappedRange>, LpError> {
        let size = self.partition_size(partition);
        let end = offset.checked_add(len).filter(|&end| end <= size);
        let Some(end) = end else {
            return Err(LpError::RangeOutsidePartition {
                name: partition.name.clone(),
                offset,
                len,
                size,
            });
        };
        let mut pieces = Vec::new();
        let mut extent_start = 0u64;
        for extent in self.partition_extents(partition) {
            let extent_end = extent_start.saturating_add(extent.len_bytes());
            let from = offset.max(extent_start);
            let to = end.min(extent_end);
            if from < to {
                let len = to - from;
                pieces.push(match extent.target {
                    ExtentTarget::Linear {
                        block_device,
                        sector,
                    } => MappedRange::Device {
                        block_device,
                        // Inside the device once validated; saturating for metadata
                        // assembled by hand.
                        offset: sector
                            .saturating_mul(SECTOR_SIZE)
                            .saturating_add(from - extent_start),
                        len,
                    },
                    ExtentTarget::Zero => MappedRange::Zero { len },
                });
            }
            if extent_end >= end {
                break;
            }
            extent_start = extent_end;
        }
        Ok(pieces)
    }

    /// Fill `buf` from the partition's byte `offset`, reading the super device through
    /// `read_at` (the partition must lie on block device 0, as on every non-retrofit phone).
    pub fn read_partition_at<R: ReadAt + ?Sized>(
        &self,
        partition: &Partition,
        read_at: &mut R,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), LpError> {
        let mut at = 0usize;
        for piece in self.map_range(partition, offset, buf.len() as u64)? {
            // Pieces add up to buf.len(), so each fits in usize.
            let dest = &mut buf[at..at + piece.len() as usize];
            match piece {
                MappedRange::Zero { .. } => dest.fill(0),
                MappedRange::Device {
                    block_device: 0,
                    offset,
                    ..
                } => read_at
                    .read_exact_at(offset, dest)
                    .map_err(|source| LpError::Io {
                        what: "logical partition data",
                        offset,
                        source,
                    })?,
                MappedRange::Device { block_device, .. } => {
                    return Err(LpError::OtherBlockDevice {
                        name: partition.name.clone(),
                        device: block_device,
                        device_name: self
                            .block_devices
                            .get(block_device as usize)
                            .map(|d| d.partition_name.clone())
                            .unwrap_or_default(),
                    })
                }
            }
            at += dest.len();
        }
        Ok(())
    }

    /// Give slot-suffixed names their slot's suffix and clear the flags, as liblp does when
    /// it reads a slot (retrofit images mark names this way because they do not know which
    /// slot they will be flashed to).
    pub fn apply_slot_suffixes(&mut self, slot: u32) -> Result<(), LpError> {
        let suffix = slot_suffix(slot);
        let suffixed = |table: &'static str, index: usize, name: &str| {
            let long = format!("{name}{suffix}");
            if long.len() > NAME_LEN {
                return Err(LpError::Name {
                    table,
                    index,
                    reason: "longer than 36 bytes once the slot suffix is added",
                });
            }
            Ok(long)
        };
        for (index, p) in self.partitions.iter_mut().enumerate() {
            if p.attributes & attr::SLOT_SUFFIXED != 0 {
                p.name = suffixed("partition", index, &p.name)?;
                p.attributes &= !attr::SLOT_SUFFIXED;
            }
        }
        for (index, g) in self.groups.iter_mut().enumerate() {
            if g.flags & GROUP_SLOT_SUFFIXED != 0 {
                g.name = suffixed("group", index, &g.name)?;
                g.flags &= !GROUP_SLOT_SUFFIXED;
            }
        }
        for (index, d) in self.block_devices.iter_mut().enumerate() {
            if d.flags & BLOCK_DEVICE_SLOT_SUFFIXED != 0 {
                d.partition_name = suffixed("block device", index, &d.partition_name)?;
                d.flags &= !BLOCK_DEVICE_SLOT_SUFFIXED;
            }
        }
        // New names may now collide with existing ones.
        self.validate(Which::Only)
    }
}
