//! Where the geometry and metadata copies lie, in a super partition and in the two image
//! files `lpmake` writes.

use super::{
    le_u32, Geometry, LpError, ReadAt, GEOMETRY_MAGIC, GEOMETRY_SIZE, PARTITION_RESERVED_BYTES,
};

/// The primary geometry follows the reserved first 4096 bytes.
pub fn primary_geometry_offset() -> u64 {
    PARTITION_RESERVED_BYTES
}

/// The backup geometry follows the primary one.
pub fn backup_geometry_offset() -> u64 {
    PARTITION_RESERVED_BYTES + GEOMETRY_SIZE
}

/// Slot `slot`'s primary metadata copy (`slot < metadata_slot_count`; the value cannot
/// overflow: a validated geometry's slots are at most 1 MiB each and there are < 2^32).
pub fn primary_metadata_offset(geometry: &Geometry, slot: u32) -> u64 {
    PARTITION_RESERVED_BYTES
        + 2 * GEOMETRY_SIZE
        + u64::from(geometry.metadata_max_size) * u64::from(slot)
}

/// Slot `slot`'s backup copy: after all primary copies.
pub fn backup_metadata_offset(geometry: &Geometry, slot: u32) -> u64 {
    let slot_size = u64::from(geometry.metadata_max_size);
    primary_metadata_offset(geometry, 0)
        + slot_size * u64::from(geometry.metadata_slot_count)
        + slot_size * u64::from(slot)
}

/// Bytes from the start of the super partition to the end of the last backup slot: the
/// super block device's `first_logical_sector` may not start before this.
pub fn total_metadata_size(geometry: &Geometry) -> u64 {
    PARTITION_RESERVED_BYTES
        + 2 * (GEOMETRY_SIZE
            + u64::from(geometry.metadata_max_size) * u64::from(geometry.metadata_slot_count))
}

/// The two kinds of file that hold LP metadata.
///
/// - [`ImageLayout::Super`]: a whole super partition (`super.img`, or the phone's `super`
///   read back): 4096 reserved bytes, geometry, backup geometry, the primary slots, the
///   backup slots, then partition data. Every slot holds the same metadata in a fresh image.
/// - [`ImageLayout::SuperEmpty`]: `super_empty.img`, what `lpmake` writes when given no
///   partition images and what `fastboot update-super` / `wipe-super` send. AOSP's
///   `WriteToImageFile(fd, metadata)` (images.cpp) writes the 4096-byte geometry block at
///   offset 0, immediately followed by one serialized metadata (header + tables, not padded
///   to `metadata_max_size`, no reserved bytes, no backups). `ReadFromImageFile` in the
///   fastboot 29.0.6 client reads it back the same way: geometry from offset 0 (no backup
///   fallback), then the metadata at offset 4096. fastbootd parses the downloaded bytes
///   with `ReadFromImageBlob`, the same layout from a buffer. liblp tells the two apart by
///   the geometry magic at offset 0 (`IsEmptySuperImage`), as [`ImageLayout::detect`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLayout {
    Super,
    SuperEmpty,
}

impl ImageLayout {
    /// A geometry magic at offset 0 means `super_empty.img` (a super partition has zeros
    /// there); anything else is read as a super partition.
    pub fn detect<R: ReadAt + ?Sized>(read_at: &mut R) -> Result<ImageLayout, LpError> {
        let mut magic = [0u8; 4];
        read_at
            .read_exact_at(0, &mut magic)
            .map_err(|source| LpError::Io {
                what: "the first bytes of the image",
                offset: 0,
                source,
            })?;
        Ok(if le_u32(&magic, 0) == GEOMETRY_MAGIC {
            ImageLayout::SuperEmpty
        } else {
            ImageLayout::Super
        })
    }

    /// Offset of the geometry (the only copy in a `super_empty.img`, the primary one in a
    /// super partition).
    pub fn geometry_offset(self) -> u64 {
        match self {
            ImageLayout::Super => primary_geometry_offset(),
            ImageLayout::SuperEmpty => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_liblp_for_two_64k_slots() {
        let g = Geometry {
            metadata_max_size: 65536,
            metadata_slot_count: 2,
            logical_block_size: 4096,
        };
        assert_eq!(primary_geometry_offset(), 4096);
        assert_eq!(backup_geometry_offset(), 8192);
        assert_eq!(primary_metadata_offset(&g, 0), 12288);
        assert_eq!(primary_metadata_offset(&g, 1), 12288 + 65536);
        assert_eq!(backup_metadata_offset(&g, 0), 12288 + 2 * 65536);
        assert_eq!(backup_metadata_offset(&g, 1), 12288 + 3 * 65536);
        assert_eq!(total_metadata_size(&g), 12288 + 4 * 65536);
    }
}
