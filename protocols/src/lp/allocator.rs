//! Where a growing partition's new sectors come from, as liblp's `MetadataBuilder` decides:
//! aligned gaps between allocated extents, lowest first, device by device, after the
//! partition's own unaligned tail; and how partitions shrink (from the end).

use super::builder::MetadataBuilder;
use super::{Extent, ExtentTarget, LpError, SECTOR_SIZE};

#[derive(Debug, Clone)]
pub(super) struct BuilderPartition {
    pub(super) name: String,
    pub(super) group: String,
    pub(super) attributes: u32,
    pub(super) extents: Vec<Extent>,
}

impl BuilderPartition {
    pub(super) fn size(&self) -> u64 {
        self.extents.iter().map(Extent::len_bytes).sum()
    }

    /// Bytes that take space on a device (ZERO extents take none).
    pub(super) fn bytes_on_disk(&self) -> u64 {
        self.extents
            .iter()
            .filter(|e| matches!(e.target, ExtentTarget::Linear { .. }))
            .map(Extent::len_bytes)
            .sum()
    }

    /// Append, merging with the last extent when it continues it on the same device.
    pub(super) fn add_extent(&mut self, extent: Extent) {
        if let (
            Some(last),
            ExtentTarget::Linear {
                block_device,
                sector,
            },
        ) = (self.extents.last_mut(), extent.target)
        {
            if let ExtentTarget::Linear {
                block_device: last_device,
                sector: last_sector,
            } = last.target
            {
                if last_device == block_device && last_sector + last.num_sectors == sector {
                    last.num_sectors += extent.num_sectors;
                    return;
                }
            }
        }
        self.extents.push(extent);
    }

    pub(super) fn shrink_to(&mut self, size: u64) {
        let mut excess = (self.size() - size) / SECTOR_SIZE;
        while excess > 0 {
            let Some(last) = self.extents.last_mut() else {
                break;
            };
            if last.num_sectors > excess {
                last.num_sectors -= excess;
                break;
            }
            excess -= last.num_sectors;
            self.extents.pop();
        }
    }
}

/// Free sectors `start..end` on a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    device: u32,
    start: u64,
    end: u64,
}

pub(super) fn align_up(value: u64, alignment: u64) -> Option<u64> {
    if alignment == 0 {
        return Some(value);
    }
    value.div_ceil(alignment).checked_mul(alignment)
}

impl MetadataBuilder {
    /// The first sector at or after `sector` on an alignment boundary of `device`.
    fn align_sector(&self, device: u32, sector: u64) -> Option<u64> {
        let d = self.block_devices.get(device as usize)?;
        let byte = sector.checked_mul(SECTOR_SIZE)?;
        let aligned = align_up(byte, u64::from(d.alignment))?;
        Some(align_up(aligned, SECTOR_SIZE)? / SECTOR_SIZE)
    }

    fn linear_extents(&self) -> impl Iterator<Item = Interval> + '_ {
        self.partitions
            .iter()
            .flat_map(|p| &p.extents)
            .filter_map(|e| match e.target {
                ExtentTarget::Linear {
                    block_device,
                    sector,
                } => Some(Interval {
                    device: block_device,
                    start: sector,
                    end: sector + e.num_sectors,
                }),
                ExtentTarget::Zero => None,
            })
    }

    /// Aligned gaps between allocated extents, device by device, lowest first.
    fn free_regions(&self) -> Vec<Interval> {
        let mut free = Vec::new();
        for (device, d) in self.block_devices.iter().enumerate() {
            let device = device as u32;
            let first = d.first_logical_sector;
            let last = d.size / SECTOR_SIZE;
            let mut used: Vec<Interval> = self
                .linear_extents()
                .filter(|i| i.device == device)
                .collect();
            // Empty markers at both ends make the space before the first extent and after
            // the last one gaps like any other.
            used.push(Interval {
                device,
                start: first,
                end: first,
            });
            used.push(Interval {
                device,
                start: last,
                end: last,
            });
            used.sort_by_key(|i| (i.start, i.end));
            let mut reached = first;
            for interval in used {
                if let Some(aligned) = self.align_sector(device, reached) {
                    if aligned < interval.start {
                        free.push(Interval {
                            device,
                            start: aligned,
                            end: interval.start,
                        });
                    }
                }
                reached = reached.max(interval.end);
            }
        }
        free
    }

    pub(super) fn grow(&mut self, index: usize, bytes: u64) -> Result<(), LpError> {
        let mut needed = bytes / SECTOR_SIZE;
        let per_block = u64::from(self.geometry.logical_block_size) / SECTOR_SIZE;
        let free = self.free_regions();
        let mut new_extents = Vec::new();
        if let Some(tail) = self.unaligned_tail(index, needed, &free) {
            needed -= tail.end - tail.start;
            new_extents.push(tail);
        }
        for region in &free {
            if needed == 0 {
                break;
            }
            // Regions are whole blocks unless an imported extent was not; never hand out a
            // partial block.
            let usable = (region.end - region.start) / per_block * per_block;
            let take = usable.min(needed);
            if take > 0 {
                new_extents.push(Interval {
                    end: region.start + take,
                    ..*region
                });
                needed -= take;
            }
        }
        if needed > 0 {
            let free_bytes: u64 = free.iter().map(|r| (r.end - r.start) * SECTOR_SIZE).sum();
            return Err(LpError::NoSpace {
                partition: self.partitions[index].name.clone(),
                needed: bytes,
                free: free_bytes,
            });
        }
        for i in new_extents {
            self.partitions[index].add_extent(Extent {
                num_sectors: i.end - i.start,
                target: ExtentTarget::Linear {
                    block_device: i.device,
                    sector: i.start,
                },
            });
        }
        Ok(())
    }

    /// The sectors between the partition's last extent and the next alignment boundary: free
    /// regions start on boundaries, so without this they would be lost.
    fn unaligned_tail(&self, index: usize, needed: u64, free: &[Interval]) -> Option<Interval> {
        let last = self.partitions[index].extents.last()?;
        let ExtentTarget::Linear {
            block_device,
            sector,
        } = last.target
        else {
            return None;
        };
        let end = sector + last.num_sectors;
        let aligned = self.align_sector(block_device, end)?;
        if aligned == end {
            return None;
        }
        let candidate = Interval {
            device: block_device,
            start: end,
            end: end + (aligned - end).min(needed),
        };
        let overlaps = |i: &Interval| {
            i.device == candidate.device && i.start < candidate.end && candidate.start < i.end
        };
        if self.linear_extents().any(|i| overlaps(&i)) || free.iter().any(overlaps) {
            return None;
        }
        Some(candidate)
    }
}
