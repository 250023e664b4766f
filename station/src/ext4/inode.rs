//! Inodes: mode, size, flags, the 60-byte `i_block` (extent root, block map or inline data),
//! the inode checksum, and the in-inode `system.data` attribute that continues inline data.

use super::csum::crc32c;
use super::superblock::{Checksums, Superblock};
use super::{Ext4FileType, Fault, Le};

/// The root directory's inode number.
pub(super) const ROOT: u32 = 2;
/// Size of `i_block`: the extent root, the 15 block pointers, or the first inline bytes.
pub(super) const I_BLOCK_LEN: usize = 60;
const I_BLOCK_AT: usize = 0x28;
const GOOD_OLD_SIZE: usize = 128;
const CHECKSUM_LO_AT: usize = 0x7C;
const CHECKSUM_HI_AT: usize = 0x82;

const FLAG_ENCRYPT: u32 = 0x800;
const FLAG_INDEX: u32 = 0x1000;
const FLAG_EXTENTS: u32 = 0x8_0000;
const FLAG_INLINE_DATA: u32 = 0x1000_0000;

/// In-inode extended attributes start with this magic.
const XATTR_MAGIC: u32 = 0xEA02_0000;
/// `system.` is attribute name index 7; inline data continues in `system.data`.
const XATTR_INDEX_SYSTEM: u8 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    Extents,
    BlockMap,
    Inline,
}

#[derive(Debug, Clone)]
pub(super) struct Inode {
    pub number: u32,
    pub mode: u16,
    pub size: u64,
    pub flags: u32,
    pub i_block: [u8; I_BLOCK_LEN],
    pub layout: Layout,
    /// Seed of this inode's extent and directory block checksums (metadata_csum).
    pub csum_seed: Option<u32>,
    /// Inline data past `i_block` (the `system.data` value), empty otherwise.
    pub inline_tail: Vec<u8>,
}

impl Inode {
    pub fn parse(sb: &Superblock, number: u32, bytes: &[u8]) -> Result<Self, Fault> {
        let corrupt = |what: String| Fault::Corrupt(format!("inode {number}: {what}"));
        let raw = Le(bytes);
        let inode_size = bytes.len();
        let extra_isize = if inode_size > GOOD_OLD_SIZE {
            let extra = usize::from(raw.u16(0x80));
            if GOOD_OLD_SIZE + extra > inode_size || !extra.is_multiple_of(4) {
                return Err(corrupt(format!(
                    "i_extra_isize {extra} does not fit a {inode_size}-byte inode"
                )));
            }
            extra
        } else {
            0
        };
        let generation = raw.u32(0x64);
        let csum_seed = match sb.checksums {
            Checksums::Crc32c { seed } => {
                let seed = crc32c(seed, &[&number.to_le_bytes(), &generation.to_le_bytes()]);
                verify_checksum(bytes, seed, extra_isize).map_err(corrupt)?;
                Some(seed)
            }
            _ => None,
        };
        let mode = raw.u16(0x0);
        let links = raw.u16(0x1A);
        if mode == 0 || links == 0 {
            return Err(corrupt(
                "a directory entry names an unused or deleted inode".into(),
            ));
        }
        let flags = raw.u32(0x20);
        if flags & FLAG_ENCRYPT != 0 {
            return Err(Fault::Unsupported(format!(
                "encrypted files (inode {number})"
            )));
        }
        let size = u64::from(raw.u32(0x4)) | u64::from(raw.u32(0x6C)) << 32;
        let mut i_block = [0u8; I_BLOCK_LEN];
        if let Some(src) = bytes.get(I_BLOCK_AT..I_BLOCK_AT + I_BLOCK_LEN) {
            i_block.copy_from_slice(src);
        }
        let layout = match (flags & FLAG_INLINE_DATA != 0, flags & FLAG_EXTENTS != 0) {
            (true, true) => return Err(corrupt("both inline data and extents are flagged".into())),
            (true, false) if !sb.inline_data => {
                return Err(corrupt(
                    "inline data is flagged on a filesystem without inline_data".into(),
                ))
            }
            (true, false) => Layout::Inline,
            (false, true) => Layout::Extents,
            (false, false) => Layout::BlockMap,
        };
        let inline_tail = if layout == Layout::Inline {
            let body = bytes.get(GOOD_OLD_SIZE + extra_isize..).unwrap_or(&[]);
            system_data(body, number)?.to_vec()
        } else {
            Vec::new()
        };
        Ok(Self {
            number,
            mode,
            size,
            flags,
            i_block,
            layout,
            csum_seed,
            inline_tail,
        })
    }

    pub fn file_type(&self) -> Ext4FileType {
        Ext4FileType::from_mode(self.mode)
    }

    pub fn is_htree(&self) -> bool {
        self.flags & FLAG_INDEX != 0
    }

    /// The inline bytes: `i_block` then the `system.data` value.
    pub fn inline_bytes(&self) -> (&[u8], &[u8]) {
        (&self.i_block, &self.inline_tail)
    }
}

fn verify_checksum(bytes: &[u8], seed: u32, extra_isize: usize) -> Result<(), String> {
    let raw = Le(bytes);
    let part = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or(&[]);
    let zero = [0u8; 2];
    // `i_checksum_hi` exists when the extra space reaches past it.
    let has_hi = bytes.len() > GOOD_OLD_SIZE && GOOD_OLD_SIZE + extra_isize >= CHECKSUM_HI_AT + 2;
    let computed = if has_hi {
        crc32c(
            seed,
            &[
                part(0..CHECKSUM_LO_AT),
                &zero,
                part(CHECKSUM_LO_AT + 2..CHECKSUM_HI_AT),
                &zero,
                part(CHECKSUM_HI_AT + 2..bytes.len()),
            ],
        )
    } else {
        crc32c(
            seed,
            &[
                part(0..CHECKSUM_LO_AT),
                &zero,
                part(CHECKSUM_LO_AT + 2..bytes.len()),
            ],
        ) & 0xFFFF
    };
    let stored = u32::from(raw.u16(CHECKSUM_LO_AT))
        | if has_hi {
            u32::from(raw.u16(CHECKSUM_HI_AT)) << 16
        } else {
            0
        };
    if stored != computed {
        return Err(format!(
            "checksum is {stored:#010x}, the contents give {computed:#010x}"
        ));
    }
    Ok(())
}

/// The `system.data` value among the in-inode attributes that follow `i_extra_isize`.
fn system_data(body: &[u8], number: u32) -> Result<&[u8], Fault> {
    let corrupt = |what: &str| Fault::Corrupt(format!("inode {number}: {what}"));
    let attrs = Le(body);
    if body.len() < 4 || attrs.u32(0) != XATTR_MAGIC {
        return Ok(&[]);
    }
    // Entries and value offsets count from just after the magic.
    let entries = body.get(4..).unwrap_or(&[]);
    let e = Le(entries);
    let mut at = 0usize;
    // Each entry is at least 16 bytes and `at` only grows, so this ends within the inode.
    while at + 4 <= entries.len() && e.u32(at) != 0 {
        if at + 16 > entries.len() {
            return Err(corrupt("an extended attribute entry runs past the inode"));
        }
        let name_len = usize::from(entries.get(at).copied().unwrap_or(0));
        let index = entries.get(at + 1).copied().unwrap_or(0);
        let value_at = usize::from(e.u16(at + 2));
        let value_inode = e.u32(at + 4);
        let value_len = e.u32(at + 8) as usize;
        let name = entries
            .get(at + 16..at + 16 + name_len)
            .ok_or_else(|| corrupt("an extended attribute name runs past the inode"))?;
        if index == XATTR_INDEX_SYSTEM && name == b"data" {
            if value_inode != 0 {
                return Err(Fault::Unsupported(format!(
                    "inline data continued in an EA inode (inode {number})"
                )));
            }
            return value_at
                .checked_add(value_len)
                .and_then(|end| entries.get(value_at..end))
                .ok_or_else(|| corrupt("the system.data value runs past the inode"));
        }
        at += (16 + name_len).div_ceil(4) * 4;
    }
    Ok(&[])
}
