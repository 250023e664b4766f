//! The geometry block (`LpMetadataGeometry`): how big a metadata slot is and how many there
//! are. Written twice and never changed after the super partition is created.

use super::{
    le_u32, sha256, LpError, Which, GEOMETRY_MAGIC, GEOMETRY_SIZE, GEOMETRY_STRUCT_SIZE,
    MAX_METADATA_SIZE, SECTOR_SIZE,
};

/// A decoded, validated geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes of one metadata slot (a multiple of 512, at most [`MAX_METADATA_SIZE`]).
    pub metadata_max_size: u32,
    /// Metadata slots (2 on A/B devices); each has a primary and a backup copy.
    pub metadata_slot_count: u32,
    /// The super device's logical block size: partition sizes are multiples of it.
    pub logical_block_size: u32,
}

impl Geometry {
    /// Decode and check one geometry copy (`bytes` holds at least its 52-byte struct; a
    /// 4096-byte block is what is stored).
    ///
    /// Layout: magic u32, struct_size u32, SHA-256 of the struct with this field zeroed
    /// [32], metadata_max_size u32, metadata_slot_count u32, logical_block_size u32.
    pub fn parse(bytes: &[u8], which: Which) -> Result<Geometry, LpError> {
        let size = GEOMETRY_STRUCT_SIZE as usize;
        let Some(raw) = bytes.get(..size) else {
            return Err(LpError::GeometryShort {
                which,
                len: bytes.len(),
            });
        };
        let magic = le_u32(raw, 0);
        if magic != GEOMETRY_MAGIC {
            return Err(LpError::GeometryMagic {
                which,
                found: magic,
            });
        }
        let struct_size = le_u32(raw, 4);
        if struct_size != GEOMETRY_STRUCT_SIZE {
            return Err(LpError::GeometryStructSize {
                which,
                size: struct_size,
            });
        }
        if sha256(&[&raw[..8], &[0u8; 32], &raw[40..]]) != raw[8..40] {
            return Err(LpError::GeometryChecksum { which });
        }
        let geometry = Geometry {
            metadata_max_size: le_u32(raw, 40),
            metadata_slot_count: le_u32(raw, 44),
            logical_block_size: le_u32(raw, 48),
        };
        geometry.validate(which)?;
        Ok(geometry)
    }

    /// The bounds every geometry we read or write must satisfy.
    pub fn validate(&self, which: Which) -> Result<(), LpError> {
        if self.metadata_slot_count == 0 {
            return Err(LpError::GeometrySlotCount { which });
        }
        let size_error = |reason| LpError::GeometryMetadataSize {
            which,
            size: self.metadata_max_size,
            reason,
        };
        if !u64::from(self.metadata_max_size).is_multiple_of(SECTOR_SIZE) {
            return Err(size_error("is not a multiple of 512"));
        }
        if self.metadata_max_size < super::HEADER_SIZE_V1_2 {
            return Err(size_error("cannot hold a metadata header"));
        }
        if self.metadata_max_size > MAX_METADATA_SIZE {
            return Err(size_error("is above the 1 MiB we accept"));
        }
        let bs = self.logical_block_size;
        if bs == 0 || !u64::from(bs).is_multiple_of(SECTOR_SIZE) {
            return Err(LpError::GeometryBlockSize { which, size: bs });
        }
        Ok(())
    }

    /// The 4096-byte geometry block, checksum computed.
    pub fn encode(&self) -> Vec<u8> {
        let mut block = vec![0u8; GEOMETRY_SIZE as usize];
        block[0..4].copy_from_slice(&GEOMETRY_MAGIC.to_le_bytes());
        block[4..8].copy_from_slice(&GEOMETRY_STRUCT_SIZE.to_le_bytes());
        block[40..44].copy_from_slice(&self.metadata_max_size.to_le_bytes());
        block[44..48].copy_from_slice(&self.metadata_slot_count.to_le_bytes());
        block[48..52].copy_from_slice(&self.logical_block_size.to_le_bytes());
        let checksum = sha256(&[&block[..GEOMETRY_STRUCT_SIZE as usize]]);
        block[8..40].copy_from_slice(&checksum);
        block
    }
}
