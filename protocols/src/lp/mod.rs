//! Android logical-partition metadata (liblp, the `super` partition of dynamic-partition
//! phones): a sans-io reader and writer of the on-disk format, and a builder that allocates
//! extents the way liblp's `MetadataBuilder` does.
//!
//! # Public API
//! - Format ([`Geometry`], [`MetadataHeader`], [`Metadata`] with [`Partition`], [`Extent`],
//!   [`Group`], [`BlockDevice`]): `parse` checks every SHA-256, count, offset, index and name;
//!   `encode` refuses what `parse` would refuse, so we never write what we cannot read back.
//! - Reading over any `FnMut(offset, &mut [u8]) -> io::Result<()>` ([`ReadAt`]):
//!   [`read_geometry`] (primary, else backup), [`read_metadata`] (a slot's primary copy, else
//!   its backup; slot 0 is `_a`, 1 is `_b`), [`read_super_empty`], [`read_image`] (either
//!   layout, told apart by [`ImageLayout::detect`]).
//! - Lookups on [`Metadata`]: [`Metadata::partition`] / [`Metadata::partition_for_slot`]
//!   (`system` or `system_a`), [`Metadata::partition_size`], [`Metadata::summaries`] (name,
//!   size, group), [`Metadata::map_range`] (a logical byte range → [`MappedRange`]s on the
//!   block devices) and [`Metadata::read_partition_at`] (read a logical range through the
//!   super device's reader, so a filesystem reader can sit on top of a logical partition).
//! - Writing: [`super_empty_image`] (what `lpmake` writes without images), [`SuperImagePlan`] /
//!   [`write_super_image`] (a full `super.img` streamed from partition images into any
//!   `Write + Seek`), [`slot_update_writes`] / [`flash_table_writes`] (in-place metadata
//!   updates, as fastbootd does them).
//! - [`MetadataBuilder`]: create/resize/remove partitions within groups and devices.
//! - [`exercise_image`]: every read path over arbitrary bytes, for fuzzing.
//!
//! # Layout of a `super` partition (and `super.img`)
//! `PARTITION_RESERVED_BYTES` (4096) of zeros, the geometry (4096 bytes), its backup copy
//! (4096 bytes), `slot_count` primary metadata slots of `metadata_max_size` bytes, as many
//! backup slots, then the logical partitions' data from the super block device's
//! `first_logical_sector`. `super_empty.img` is different: see [`ImageLayout`].
//!
//! # Where we are stricter than liblp, and why
//! Bytes read back from a phone or found in an image file are not trusted: extent target types
//! other than LINEAR/ZERO, empty extents, ZERO extents with non-zero target fields, LINEAR
//! extents outside their block device, duplicate partition or group names, names that are
//! not printable ASCII, a block-device entry size other than 64 and a `metadata_max_size`
//! above [`MAX_METADATA_SIZE`] are refused (liblp accepts some of these on read and fails
//! later, or reads past its buffer). Nothing that liblp's own writer produces is refused.

mod allocator;
mod builder;
mod error;
mod fuzz;
mod geometry;
mod header;
mod layout;
mod lookup;
mod metadata;
mod reader;
mod writer;

#[cfg(test)]
mod builder_tests;
#[cfg(test)]
mod corruption_tests;
#[cfg(test)]
mod literal_tests;
#[cfg(test)]
mod reader_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod test_support;

pub use builder::{DeviceSpec, MetadataBuilder};
pub use error::LpError;
pub use fuzz::exercise_image;
pub use geometry::Geometry;
pub use header::{MetadataHeader, TableDescriptor};
pub use layout::{
    backup_geometry_offset, backup_metadata_offset, primary_geometry_offset,
    primary_metadata_offset, total_metadata_size, ImageLayout,
};
pub use lookup::{MappedRange, PartitionSummary};
pub use metadata::{BlockDevice, Extent, ExtentTarget, Group, Metadata, Partition};
pub use reader::{read_geometry, read_image, read_metadata, read_metadata_copy, read_super_empty};
pub use writer::{
    flash_table_writes, slot_update_writes, super_empty_image, write_super_image, PartitionImage,
    PlanData, PlanPiece, RegionWrite, SuperImagePlan,
};

use std::fmt;

/// A reader of absolute byte offsets (a file, a phone's `super` partition read through
/// Firehose or fastboot): fills all of the buffer or fails. Any
/// `FnMut(u64, &mut [u8]) -> io::Result<()>` is one, so a caller with its own positioned
/// reader passes `&mut |offset, buf| source.read_exact_at(offset, buf)`.
pub trait ReadAt {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl<F> ReadAt for F
where
    F: FnMut(u64, &mut [u8]) -> std::io::Result<()>,
{
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self(offset, buf)
    }
}

/// `LP_METADATA_GEOMETRY_MAGIC` ("gDla" little-endian).
pub const GEOMETRY_MAGIC: u32 = 0x616c_4467;
/// Bytes reserved for each geometry copy.
pub const GEOMETRY_SIZE: u64 = 4096;
/// Bytes of the geometry structure itself (the rest of its 4096-byte block is zero).
pub const GEOMETRY_STRUCT_SIZE: u32 = 52;
/// `LP_METADATA_HEADER_MAGIC` ("0PLA" little-endian).
pub const HEADER_MAGIC: u32 = 0x414c_5030;
/// The only major version liblp reads.
pub const MAJOR_VERSION: u16 = 10;
/// Highest minor version we read (1.2: expanded header with flags).
pub const MINOR_VERSION_MAX: u16 = 2;
/// Minor version from which the UPDATED and DISABLED attributes are valid.
pub const VERSION_FOR_UPDATED_ATTR: u16 = 1;
/// Minor version from which the header is 256 bytes with a flags field.
pub const VERSION_FOR_EXPANDED_HEADER: u16 = 2;
/// Header bytes for minor versions 0 and 1.
pub const HEADER_SIZE_V1_0: u32 = 128;
/// Header bytes for minor version 2.
pub const HEADER_SIZE_V1_2: u32 = 256;
/// liblp counts extents in 512-byte sectors whatever the device's block size.
pub const SECTOR_SIZE: u64 = 512;
/// Zeros at the start of every super partition, so it never looks like a boot sector.
pub const PARTITION_RESERVED_BYTES: u64 = 4096;
/// Bytes of a name field (partition, group, block device); the name may fill all of it.
pub const NAME_LEN: usize = 36;
/// Table entry sizes.
pub const PARTITION_ENTRY_SIZE: u32 = 52;
pub const EXTENT_ENTRY_SIZE: u32 = 24;
pub const GROUP_ENTRY_SIZE: u32 = 48;
pub const BLOCK_DEVICE_ENTRY_SIZE: u32 = 64;
/// Extent target types.
pub const TARGET_TYPE_LINEAR: u32 = 0;
pub const TARGET_TYPE_ZERO: u32 = 1;
/// The group every metadata has, of unlimited size.
pub const DEFAULT_GROUP: &str = "default";
/// The super partition's usual name.
pub const DEFAULT_SUPER_NAME: &str = "super";
/// liblp's and lpmake's default partition alignment.
pub const DEFAULT_ALIGNMENT: u32 = 1 << 20;
/// lpmake's default logical block size.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;
/// What AOSP builds pass as `--metadata-size`.
pub const DEFAULT_METADATA_MAX_SIZE: u32 = 65536;
/// Largest `metadata_max_size` we accept: real devices use 64 KiB; this ceiling bounds every
/// allocation a hostile geometry could ask for.
pub const MAX_METADATA_SIZE: u32 = 1 << 20;

/// Partition attribute bits (`LP_PARTITION_ATTR_*`).
pub mod attr {
    pub const READONLY: u32 = 1 << 0;
    /// Retrofit images: the name gets the slot's suffix when the metadata is read for a slot.
    pub const SLOT_SUFFIXED: u32 = 1 << 1;
    /// Created or changed by a snapshot-based update (minor version ≥ 1).
    pub const UPDATED: u32 = 1 << 2;
    /// Not to be mapped (minor version ≥ 1).
    pub const DISABLED: u32 = 1 << 3;
    /// Valid at minor version 0.
    pub const MASK_V0: u32 = READONLY | SLOT_SUFFIXED;
    /// Added by minor version 1.
    pub const MASK_V1: u32 = UPDATED | DISABLED;
    pub const MASK: u32 = MASK_V0 | MASK_V1;
}

/// Header flags (`LP_HEADER_FLAG_*`, minor version 2).
pub mod header_flag {
    pub const VIRTUAL_AB_DEVICE: u32 = 0x1;
    pub const OVERLAYS_ACTIVE: u32 = 0x2;
}

/// `LP_GROUP_SLOT_SUFFIXED`.
pub const GROUP_SLOT_SUFFIXED: u32 = 1 << 0;
/// `LP_BLOCK_DEVICE_SLOT_SUFFIXED`.
pub const BLOCK_DEVICE_SLOT_SUFFIXED: u32 = 1 << 0;

/// Which copy of a structure (geometry or a metadata slot) an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Primary,
    Backup,
    /// The single copy in a `super_empty.img`, or bytes given directly.
    Only,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Which::Primary => "primary",
            Which::Backup => "backup",
            Which::Only => "the",
        })
    }
}

/// `_a` for slot 0, `_b` for slot 1, and so on (liblp only knows two, A/B/C devices are
/// hypothetical; we continue the alphabet rather than fail).
pub fn slot_suffix(slot: u32) -> String {
    let letter = char::from_u32(u32::from(b'a') + slot.min(25)).unwrap_or('z');
    format!("_{letter}")
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut v = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        v.copy_from_slice(s);
    }
    u16::from_le_bytes(v)
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Decode a fixed 36-byte name: it ends at the first NUL or fills the field (liblp reads
/// both), must be non-empty and printable ASCII (liblp's names are letters, digits and `_`;
/// snapshot COW partitions add `-`).
pub(crate) fn decode_name(raw: &[u8]) -> Result<String, &'static str> {
    let field = raw.get(..NAME_LEN).ok_or("name field is cut short")?;
    let len = field.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    let name = &field[..len];
    check_name_bytes(name)?;
    Ok(name.iter().map(|&b| char::from(b)).collect())
}

/// Encode a name into its 36-byte field, zero-padded.
pub(crate) fn encode_name(name: &str) -> Result<[u8; NAME_LEN], &'static str> {
    check_name_bytes(name.as_bytes())?;
    if name.len() > NAME_LEN {
        return Err("longer than 36 bytes");
    }
    let mut field = [0u8; NAME_LEN];
    field[..name.len()].copy_from_slice(name.as_bytes());
    Ok(field)
}

fn check_name_bytes(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if !name.iter().all(|b| b.is_ascii_graphic()) {
        return Err("not printable ASCII (letters, digits, `_`, `-`, ...)");
    }
    Ok(())
}
