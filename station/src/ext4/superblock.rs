//! The superblock: geometry, features, and the refusals that keep every later computation in
//! range (`s_blocks_per_group` and `s_inodes_per_group` are divisors; block and inode sizes
//! bound every buffer).

use super::csum::crc32c;
use super::{Fault, Le};

/// Where the primary superblock starts, whatever the block size.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Bytes of the on-disk superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;

const MAGIC: u16 = 0xEF53;
/// 1 KiB << 6 = 64 KiB, the largest block size ext4 defines.
const MAX_LOG_BLOCK_SIZE: u32 = 6;

const COMPAT_SPARSE_SUPER2: u32 = 0x200;

const INCOMPAT_COMPRESSION: u32 = 0x1;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_MMP: u32 = 0x100;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const INCOMPAT_EA_INODE: u32 = 0x400;
const INCOMPAT_DIRDATA: u32 = 0x1000;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const INCOMPAT_LARGEDIR: u32 = 0x4000;
const INCOMPAT_INLINE_DATA: u32 = 0x8000;
const INCOMPAT_ENCRYPT: u32 = 0x10000;
const INCOMPAT_CASEFOLD: u32 = 0x20000;

/// Incompatible features this reader implements (or that cannot change what it reads: MMP
/// guards mounting, EA_INODE moves extended attributes, ENCRYPT is refused per inode).
const INCOMPAT_UNDERSTOOD: u32 = INCOMPAT_FILETYPE
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_ENCRYPT;

const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_BIGALLOC: u32 = 0x200;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// How group descriptors, inodes and extent blocks are checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checksums {
    None,
    /// `uninit_bg`/`gdt_csum`: crc16 over uuid, group number and descriptor.
    GroupCrc16,
    /// `metadata_csum`: crc32c seeded from the uuid (or `s_checksum_seed`).
    Crc32c {
        seed: u32,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Superblock {
    pub block_size: u64,
    pub blocks_count: u64,
    pub first_data_block: u64,
    pub blocks_per_group: u64,
    pub inodes_per_group: u32,
    pub inodes_count: u32,
    pub group_count: u32,
    pub inode_size: u32,
    pub desc_size: u32,
    /// `s_first_meta_bg` when META_BG places descriptors inside their meta group.
    pub first_meta_bg: Option<u32>,
    pub sparse_super: bool,
    /// `s_backup_bgs` when SPARSE_SUPER2 keeps at most two backups.
    pub backup_groups: Option<[u32; 2]>,
    pub filetype: bool,
    pub inline_data: bool,
    pub checksums: Checksums,
    pub uuid: [u8; 16],
}

/// A cheap probe: the ext4 magic and a block size ext4 defines, in the 1024 bytes found at
/// [`SUPERBLOCK_OFFSET`]. Says nothing about whether the rest is sound.
pub fn is_ext4(superblock: &[u8]) -> bool {
    let sb = Le(superblock);
    superblock.len() >= SUPERBLOCK_SIZE
        && sb.u16(0x38) == MAGIC
        && sb.u32(0x18) <= MAX_LOG_BLOCK_SIZE
}

/// Bytes of the filesystem as its superblock declares them (`s_blocks_count` × block size),
/// from the same 1024 bytes as [`is_ext4`]. Unchecked beyond that probe: a reader that trusts
/// it only to bound read-ahead loses nothing if it lies.
pub fn declared_size(superblock: &[u8]) -> Option<u64> {
    if !is_ext4(superblock) {
        return None;
    }
    let sb = Le(superblock);
    let high = if sb.u32(0x60) & INCOMPAT_64BIT != 0 {
        u64::from(sb.u32(0x150)) << 32
    } else {
        0
    };
    (u64::from(sb.u32(0x4)) | high).checked_mul(1024u64 << sb.u32(0x18))
}

fn corrupt(detail: impl Into<String>) -> Fault {
    Fault::Corrupt(format!("superblock: {}", detail.into()))
}

impl Superblock {
    pub fn parse(bytes: &[u8]) -> Result<Self, Fault> {
        let sb = Le(bytes);
        if bytes.len() < SUPERBLOCK_SIZE || sb.u16(0x38) != MAGIC {
            return Err(Fault::NotExt4(format!(
                "no ext4 magic at byte {}",
                SUPERBLOCK_OFFSET + 0x38
            )));
        }
        let ro_compat = sb.u32(0x64);
        let checksums = verify_checksum(bytes, ro_compat)?;
        let incompat = sb.u32(0x60);
        refuse_features(incompat)?;
        let compat = sb.u32(0x5C);

        let log_block_size = sb.u32(0x18);
        if log_block_size > MAX_LOG_BLOCK_SIZE {
            return Err(corrupt(format!(
                "s_log_block_size {log_block_size} means a block over 64 KiB"
            )));
        }
        let block_size = 1024u64 << log_block_size;
        let is_64bit = incompat & INCOMPAT_64BIT != 0;
        let blocks_count = u64::from(sb.u32(0x4))
            | if is_64bit {
                u64::from(sb.u32(0x150)) << 32
            } else {
                0
            };
        if blocks_count.checked_mul(block_size).is_none() {
            return Err(corrupt(format!(
                "{blocks_count} blocks of {block_size} bytes overflow a 64-bit size"
            )));
        }
        let bigalloc = ro_compat & RO_COMPAT_BIGALLOC != 0;
        let first_data_block = u64::from(sb.u32(0x14));
        let expected_first = u64::from(block_size == 1024 && !bigalloc);
        if first_data_block != expected_first {
            return Err(corrupt(format!(
                "s_first_data_block is {first_data_block}, {expected_first} for {block_size}-byte blocks"
            )));
        }
        if blocks_count <= first_data_block + 1 {
            return Err(corrupt(format!("s_blocks_count is {blocks_count}")));
        }

        let blocks_per_group = u64::from(sb.u32(0x20));
        // One block bitmap covers a group: 8 bits per byte (per cluster with bigalloc).
        let bits_per_bitmap = block_size * 8;
        let max_blocks_per_group = if bigalloc {
            bits_per_bitmap << 16
        } else {
            bits_per_bitmap
        };
        if blocks_per_group == 0 || blocks_per_group > max_blocks_per_group {
            return Err(corrupt(format!(
                "s_blocks_per_group is {blocks_per_group} (1 to {max_blocks_per_group} for {block_size}-byte blocks)"
            )));
        }
        let rev_level = sb.u32(0x4C);
        let inode_size = if rev_level == 0 {
            128
        } else {
            u32::from(sb.u16(0x58))
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || u64::from(inode_size) > block_size {
            return Err(corrupt(format!(
                "s_inode_size is {inode_size} (a power of two from 128 to the {block_size}-byte block)"
            )));
        }
        let inodes_per_group = sb.u32(0x28);
        let inodes_per_block = block_size / u64::from(inode_size);
        if u64::from(inodes_per_group) < inodes_per_block
            || u64::from(inodes_per_group) > bits_per_bitmap
        {
            return Err(corrupt(format!(
                "s_inodes_per_group is {inodes_per_group} ({inodes_per_block} to {bits_per_bitmap})"
            )));
        }
        let data_blocks = blocks_count - first_data_block;
        let group_count = u32::try_from(data_blocks.div_ceil(blocks_per_group)).map_err(|_| {
            corrupt(format!(
                "{data_blocks} blocks in groups of {blocks_per_group} are more than 2^32 groups"
            ))
        })?;
        let inodes_count = sb.u32(0x0);
        if u64::from(group_count) * u64::from(inodes_per_group) != u64::from(inodes_count) {
            return Err(corrupt(format!(
                "s_inodes_count is {inodes_count}, not {group_count} groups × {inodes_per_group}"
            )));
        }
        let desc_size = if is_64bit {
            u32::from(sb.u16(0xFE))
        } else {
            32
        };
        if !(32..=1024).contains(&desc_size)
            || !desc_size.is_power_of_two()
            || is_64bit && desc_size < 64
        {
            return Err(corrupt(format!("s_desc_size is {desc_size}")));
        }
        let first_meta_bg = if incompat & INCOMPAT_META_BG != 0 {
            let descriptor_blocks =
                u64::from(group_count).div_ceil(block_size / u64::from(desc_size));
            let first = sb.u32(0x104);
            if u64::from(first) > descriptor_blocks {
                return Err(corrupt(format!(
                    "s_first_meta_bg {first} is past the {descriptor_blocks} descriptor blocks"
                )));
            }
            Some(first)
        } else {
            None
        };
        let mut uuid = [0u8; 16];
        if let Some(bytes) = bytes.get(0x68..0x78) {
            uuid.copy_from_slice(bytes);
        }
        let checksums = match checksums {
            Checksums::Crc32c { .. } if incompat & INCOMPAT_CSUM_SEED != 0 => Checksums::Crc32c {
                seed: sb.u32(0x270),
            },
            Checksums::Crc32c { .. } => Checksums::Crc32c {
                seed: crc32c(!0, &[&uuid]),
            },
            other => other,
        };
        Ok(Self {
            block_size,
            blocks_count,
            first_data_block,
            blocks_per_group,
            inodes_per_group,
            inodes_count,
            group_count,
            inode_size,
            desc_size,
            first_meta_bg,
            sparse_super: ro_compat & RO_COMPAT_SPARSE_SUPER != 0,
            backup_groups: (compat & COMPAT_SPARSE_SUPER2 != 0)
                .then(|| [sb.u32(0x24C), sb.u32(0x250)]),
            filetype: incompat & INCOMPAT_FILETYPE != 0,
            inline_data: incompat & INCOMPAT_INLINE_DATA != 0,
            checksums,
            uuid,
        })
    }

    /// Whether `group` starts with a superblock copy (and, without META_BG, a descriptor table).
    pub fn has_superblock(&self, group: u32) -> bool {
        if group == 0 {
            return true;
        }
        if let Some(backups) = self.backup_groups {
            return backups.contains(&group);
        }
        if !self.sparse_super || group == 1 {
            return true;
        }
        [3u32, 5, 7].iter().any(|&base| is_power_of(group, base))
    }

    /// The first block of `group`, which the geometry checks keep inside the filesystem.
    pub fn group_first_block(&self, group: u32) -> u64 {
        self.first_data_block + u64::from(group) * self.blocks_per_group
    }
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    while n > 1 && n.is_multiple_of(base) {
        n /= base;
    }
    n == 1
}

fn verify_checksum(bytes: &[u8], ro_compat: u32) -> Result<Checksums, Fault> {
    if ro_compat & RO_COMPAT_METADATA_CSUM == 0 {
        return Ok(if ro_compat & RO_COMPAT_GDT_CSUM != 0 {
            Checksums::GroupCrc16
        } else {
            Checksums::None
        });
    }
    let sb = Le(bytes);
    let kind = bytes.get(0x175).copied().unwrap_or(0);
    if kind != 1 {
        return Err(Fault::Unsupported(format!(
            "metadata_csum with checksum type {kind} (only 1, crc32c, is defined)"
        )));
    }
    let stored = sb.u32(0x3FC);
    let computed = crc32c(!0, &[bytes.get(..0x3FC).unwrap_or(&[])]);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum is {stored:#010x}, the contents give {computed:#010x}"
        )));
    }
    // The seed needs the uuid and features; `parse` fills it in.
    Ok(Checksums::Crc32c { seed: 0 })
}

fn refuse_features(incompat: u32) -> Result<(), Fault> {
    let named = [
        (INCOMPAT_RECOVER, "needs_recovery (the journal holds transactions never replayed; a flashed, never-mounted image never needs this: run e2fsck on it or rebuild it)"),
        (INCOMPAT_JOURNAL_DEV, "journal_dev (this is an external journal, not a filesystem)"),
        (INCOMPAT_COMPRESSION, "compression"),
        (INCOMPAT_DIRDATA, "dirdata"),
        (INCOMPAT_CASEFOLD, "casefold (case-insensitive names)"),
    ];
    for (bit, name) in named {
        if incompat & bit != 0 {
            return Err(Fault::Unsupported(format!("the incompat feature {name}")));
        }
    }
    let unknown = incompat & !INCOMPAT_UNDERSTOOD;
    if unknown != 0 {
        return Err(Fault::Unsupported(format!(
            "unknown incompat feature bits {unknown:#x}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superblock_backups_follow_sparse_super() {
        let with: Vec<u32> = (0..100)
            .filter(|&g| is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7))
            .collect();
        assert_eq!(with, vec![1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    #[test]
    fn the_probe_wants_magic_and_a_sane_block_size() {
        let mut sb = vec![0u8; SUPERBLOCK_SIZE];
        assert!(!is_ext4(&sb));
        sb[0x38] = 0x53;
        sb[0x39] = 0xEF;
        assert!(is_ext4(&sb));
        sb[0x18] = 7;
        assert!(!is_ext4(&sb));
        assert!(!is_ext4(&sb[..100]));
    }

    #[test]
    fn the_declared_size_counts_the_high_word_only_with_64bit() {
        let mut sb = vec![0u8; SUPERBLOCK_SIZE];
        assert_eq!(declared_size(&sb), None);
        sb[0x38..0x3A].copy_from_slice(&MAGIC.to_le_bytes());
        sb[0x18] = 2;
        sb[0x4..0x8].copy_from_slice(&1000u32.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(declared_size(&sb), Some(1000 * 4096));
        sb[0x60..0x64].copy_from_slice(&INCOMPAT_64BIT.to_le_bytes());
        assert_eq!(declared_size(&sb), Some(((1u64 << 32) + 1000) * 4096));
    }
}
