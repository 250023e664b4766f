//! GUID Partition Table codec (UEFI spec 2.x, chapter 5), shared by hosts resolving labels and
//! simulated phones.
//!
//! Sans-io: [`GptHeader::parse`] decodes one header sector and [`GptHeader::parse_entries`] the
//! entry array it points to, so a Firehose host can read LBA 1, learn how many bytes the array
//! takes (bounded before anything is allocated) and read only those. [`Gpt::read`] does both
//! over any positioned reader, falling back to the backup header like firmware does.
//! [`Gpt::encode`] builds the protective MBR, primary and backup structures for a disk.
//!
//! One concern per file: `header.rs` (the header sector), `entry.rs` (the entry array and its
//! entries), `table.rs` (a whole table: building and encoding it), `reader.rs` (reading a table
//! from a disk, with the backup fallback), `guid.rs` (mixed-endian GUIDs and type GUIDs),
//! [`ab`] (Qualcomm's A/B slot bits in the attributes, and the slot the bootloader boots).

use std::fmt;

pub mod ab;
mod entry;
mod guid;
mod header;
mod reader;
mod table;

pub use entry::Partition;
pub use guid::{types, Guid};
pub use header::GptHeader;
pub use table::{EncodedGpt, Gpt};

/// "EFI PART".
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Revision 1.0, the only one the spec defines.
pub const REVISION_1_0: u32 = 0x0001_0000;
/// The header's defined fields; a larger `header_size` is allowed (zero padding) up to a sector.
pub const HEADER_SIZE: u32 = 92;
/// Entry size every tool writes; the spec allows 128 × 2^n.
pub const ENTRY_SIZE: u32 = 128;
/// Entries in the array every tool writes (16 KiB, the spec's minimum array size).
pub const DEFAULT_ENTRY_COUNT: u32 = 128;
/// UTF-16 code units in a partition name.
pub const NAME_UNITS: usize = 36;
/// Largest entry array we accept from a device or file. Real tables are 16 KiB; this bound stops
/// a hostile header from making us allocate or read gigabytes.
pub const MAX_ENTRY_ARRAY_BYTES: u64 = 1 << 20;
/// Largest entry we accept (the spec allows 128 × 2^n; nobody uses more than 128).
pub const MAX_ENTRY_SIZE: u32 = 4096;

/// Why a GPT was refused. Every variant says which structure and what to check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GptError {
    #[error("sector size {0} is not supported (need 512 or 4096)")]
    SectorSize(u32),
    #[error("{which} GPT header: short sector ({len} bytes, need {need})")]
    Short {
        which: Which,
        len: usize,
        need: usize,
    },
    #[error(
        "{which} GPT header: no \"EFI PART\" signature (not a GPT disk, or wrong sector size)"
    )]
    Signature { which: Which },
    #[error("{which} GPT header: revision {0:#010x} is not 1.0", .revision)]
    Revision { which: Which, revision: u32 },
    #[error("{which} GPT header: header size {size} out of range (92..={max})")]
    HeaderSize { which: Which, size: u32, max: u32 },
    #[error("{which} GPT header: CRC32 {found:#010x} does not match computed {computed:#010x}")]
    HeaderCrc {
        which: Which,
        found: u32,
        computed: u32,
    },
    #[error("{which} GPT header: entry size {size} is not 128 × 2^n (≤ {max})", max = MAX_ENTRY_SIZE)]
    EntrySize { which: Which, size: u32 },
    #[error("{which} GPT header: {count} entries of {size} bytes exceed the {max}-byte limit", max = MAX_ENTRY_ARRAY_BYTES)]
    EntryArrayTooLarge { which: Which, count: u32, size: u32 },
    #[error("{which} GPT: LBA {lba} at {sector_size}-byte sectors lies beyond 2^64 bytes (no disk is that large)")]
    BeyondAddressSpace {
        which: Which,
        lba: u64,
        sector_size: u32,
    },
    #[error("{which} GPT header: inconsistent layout: {reason}")]
    Layout { which: Which, reason: String },
    #[error("{which} GPT entry array: {len} bytes given, header needs {need}")]
    EntriesShort {
        which: Which,
        len: usize,
        need: usize,
    },
    #[error(
        "{which} GPT entry array: CRC32 {found:#010x} does not match computed {computed:#010x}"
    )]
    EntriesCrc {
        which: Which,
        found: u32,
        computed: u32,
    },
    #[error("GPT entry {index} ({name:?}): {reason}")]
    Entry {
        index: u32,
        name: String,
        reason: String,
    },
    #[error("partition name {name:?}: {reason}")]
    Name { name: String, reason: String },
    #[error("partition {name:?}: {reason}")]
    Build { name: String, reason: String },
    #[error("reading GPT at byte {offset}: {message}")]
    Io { offset: u64, message: String },
    #[error("no valid GPT: primary: {primary}; backup: {backup}")]
    BothInvalid { primary: String, backup: String },
}

/// Which copy of the table an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Primary,
    Backup,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Which::Primary => "primary",
            Which::Backup => "backup",
        })
    }
}

pub(super) fn check_sector_size(sector_size: u32) -> Result<(), GptError> {
    match sector_size {
        512 | 4096 => Ok(()),
        other => Err(GptError::SectorSize(other)),
    }
}

/// Whether sector `lba` ends inside a byte address space of 2^64 bytes, so that byte offsets
/// and sizes computed from it cannot overflow.
pub(super) fn lba_is_addressable(lba: u64, sector_size: u32) -> bool {
    lba < u64::MAX / u64::from(sector_size.max(1))
}

pub(super) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

pub(super) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

#[cfg(test)]
mod sgdisk_tests;
#[cfg(test)]
pub(crate) mod test_support;
