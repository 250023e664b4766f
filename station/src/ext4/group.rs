//! Block group descriptors: where a group's inode table is, found through the classic table
//! after the superblock or, with META_BG, inside each meta group.

use super::csum::{crc16, crc32c};
use super::superblock::{Checksums, Superblock, SUPERBLOCK_OFFSET};
use super::{Fault, Le};

const BG_INODE_UNINIT: u16 = 0x1;
/// Byte offset of `bg_checksum` inside a descriptor.
const CHECKSUM_AT: usize = 0x1E;

#[derive(Debug, Clone, Copy)]
pub(super) struct GroupDesc {
    pub inode_table: u64,
}

impl Superblock {
    /// Byte offset of `group`'s descriptor.
    pub fn descriptor_offset(&self, group: u32) -> Result<u64, Fault> {
        if group >= self.group_count {
            return Err(Fault::Corrupt(format!(
                "group {group} is past the filesystem's {} groups",
                self.group_count
            )));
        }
        let per_block = self.block_size / u64::from(self.desc_size);
        let group = u64::from(group);
        let meta_group = group / per_block;
        // The block right after the one holding the primary superblock.
        let table_start = SUPERBLOCK_OFFSET / self.block_size + 1;
        let block = match self.first_meta_bg {
            Some(first) if meta_group >= u64::from(first) => {
                // META_BG: the descriptors of a meta group fill one block at the start of its
                // first group, after that group's superblock copy if it has one.
                let first_group = u32::try_from(meta_group * per_block)
                    .map_err(|_| Fault::Corrupt(format!("group {group} has no meta group")))?;
                if first_group == 0 {
                    table_start
                } else {
                    self.group_first_block(first_group)
                        + u64::from(self.has_superblock(first_group))
                }
            }
            _ => table_start + meta_group,
        };
        if block >= self.blocks_count {
            return Err(Fault::Corrupt(format!(
                "the descriptor of group {group} would be in block {block}, past the filesystem's {} blocks",
                self.blocks_count
            )));
        }
        Ok(block * self.block_size + (group % per_block) * u64::from(self.desc_size))
    }

    /// Checks and decodes the `desc_size` bytes of `group`'s descriptor.
    pub fn parse_descriptor(&self, group: u32, bytes: &[u8]) -> Result<GroupDesc, Fault> {
        let desc = Le(bytes);
        let le_group = group.to_le_bytes();
        let before = bytes.get(..CHECKSUM_AT).unwrap_or(&[]);
        let after = bytes.get(CHECKSUM_AT + 2..).unwrap_or(&[]);
        let stored = desc.u16(CHECKSUM_AT);
        let computed = match self.checksums {
            Checksums::None => None,
            Checksums::Crc32c { seed } => {
                Some(crc32c(seed, &[&le_group, before, &[0, 0], after]) as u16)
            }
            // The old checksum covers the 64-bit half only when the filesystem is 64bit.
            Checksums::GroupCrc16 => Some(crc16(&[&self.uuid, &le_group, before, after])),
        };
        if let Some(computed) = computed {
            if computed != stored {
                return Err(Fault::Corrupt(format!(
                    "group {group} descriptor checksum is {stored:#06x}, the contents give {computed:#06x}"
                )));
            }
        }
        let high = |at: usize| {
            if self.desc_size >= 64 {
                u64::from(desc.u32(at)) << 32
            } else {
                0
            }
        };
        let inode_table = u64::from(desc.u32(0x8)) | high(0x28);
        let flags = desc.u16(0x12);
        if flags & BG_INODE_UNINIT != 0 && self.checksums != Checksums::None {
            return Err(Fault::Corrupt(format!(
                "group {group}'s inode table is marked uninitialised, yet an inode in it is in use"
            )));
        }
        let table_blocks = (u64::from(self.inodes_per_group) * u64::from(self.inode_size))
            .div_ceil(self.block_size);
        if inode_table <= self.first_data_block
            || inode_table.saturating_add(table_blocks) > self.blocks_count
        {
            return Err(Fault::Corrupt(format!(
                "group {group}'s inode table at block {inode_table} ({table_blocks} blocks) is outside the filesystem's {} blocks",
                self.blocks_count
            )));
        }
        Ok(GroupDesc { inode_table })
    }

    /// The group holding inode `number` and the inode's byte offset given that group's table.
    pub fn inode_group(&self, number: u32) -> Result<u32, Fault> {
        if number == 0 || number > self.inodes_count {
            return Err(Fault::Corrupt(format!(
                "inode number {number} is outside 1..={}",
                self.inodes_count
            )));
        }
        Ok((number - 1) / self.inodes_per_group)
    }

    pub fn inode_offset(&self, number: u32, desc: &GroupDesc) -> u64 {
        let index = u64::from((number.saturating_sub(1)) % self.inodes_per_group);
        desc.inode_table * self.block_size + index * u64::from(self.inode_size)
    }
}
