//! The metadata header (`LpMetadataHeader`): version, checksums, and where the four tables
//! lie in the bytes that follow it.

use super::{
    le_u16, le_u32, sha256, LpError, Which, BLOCK_DEVICE_ENTRY_SIZE, EXTENT_ENTRY_SIZE,
    GROUP_ENTRY_SIZE, HEADER_MAGIC, HEADER_SIZE_V1_0, HEADER_SIZE_V1_2, MAJOR_VERSION,
    MINOR_VERSION_MAX, PARTITION_ENTRY_SIZE, VERSION_FOR_EXPANDED_HEADER,
};

/// Where one table lies, relative to the end of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableDescriptor {
    pub offset: u32,
    pub num_entries: u32,
    pub entry_size: u32,
}

impl TableDescriptor {
    fn read(b: &[u8], at: usize) -> TableDescriptor {
        TableDescriptor {
            offset: le_u32(b, at),
            num_entries: le_u32(b, at + 4),
            entry_size: le_u32(b, at + 8),
        }
    }

    fn write(&self, b: &mut [u8], at: usize) {
        b[at..at + 4].copy_from_slice(&self.offset.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&self.num_entries.to_le_bytes());
        b[at + 8..at + 12].copy_from_slice(&self.entry_size.to_le_bytes());
    }

    /// Byte range of the table inside the tables (checked against `tables_size` on parse).
    pub fn byte_range(&self) -> std::ops::Range<usize> {
        let start = self.offset as usize;
        start..start + self.num_entries as usize * self.entry_size as usize
    }
}

/// A decoded, validated metadata header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataHeader {
    pub minor_version: u16,
    /// 128 (10.0, 10.1) or 256 (10.2).
    pub header_size: u32,
    pub header_checksum: [u8; 32],
    pub tables_size: u32,
    pub tables_checksum: [u8; 32],
    pub partitions: TableDescriptor,
    pub extents: TableDescriptor,
    pub groups: TableDescriptor,
    pub block_devices: TableDescriptor,
    /// `LP_HEADER_FLAG_*`; always 0 before 10.2.
    pub flags: u32,
}

/// The header size a version needs.
pub fn header_size_for(minor_version: u16) -> u32 {
    if minor_version >= VERSION_FOR_EXPANDED_HEADER {
        HEADER_SIZE_V1_2
    } else {
        HEADER_SIZE_V1_0
    }
}

impl MetadataHeader {
    /// How many bytes to read for the whole header, from its first 8 (so a reader of a
    /// device asks for 128 or 256 bytes, not a whole slot). The result is bounded: 128 or 256.
    pub fn bytes_needed(prefix: &[u8]) -> usize {
        header_size_for(le_u16(prefix, 6)) as usize
    }

    /// Decode and check a header (`bytes` holds at least its `header_size` bytes; what
    /// follows is ignored).
    pub fn parse(bytes: &[u8], which: Which) -> Result<MetadataHeader, LpError> {
        let short = |need: u32| LpError::HeaderShort {
            which,
            len: bytes.len(),
            need: need as usize,
        };
        if bytes.len() < HEADER_SIZE_V1_0 as usize {
            return Err(short(HEADER_SIZE_V1_0));
        }
        let magic = le_u32(bytes, 0);
        if magic != HEADER_MAGIC {
            return Err(LpError::HeaderMagic {
                which,
                found: magic,
            });
        }
        let (major, minor) = (le_u16(bytes, 4), le_u16(bytes, 6));
        if major != MAJOR_VERSION || minor > MINOR_VERSION_MAX {
            return Err(LpError::HeaderVersion {
                which,
                major,
                minor,
            });
        }
        let expected = header_size_for(minor);
        let header_size = le_u32(bytes, 8);
        if header_size != expected {
            return Err(LpError::HeaderSize {
                which,
                size: header_size,
                minor,
                expected,
            });
        }
        let Some(raw) = bytes.get(..header_size as usize) else {
            return Err(short(header_size));
        };
        if sha256(&[&raw[..12], &[0u8; 32], &raw[44..]]) != raw[12..44] {
            return Err(LpError::HeaderChecksum { which });
        }
        let array = |at: usize| -> [u8; 32] { raw[at..at + 32].try_into().unwrap_or([0; 32]) };
        let header = MetadataHeader {
            minor_version: minor,
            header_size,
            header_checksum: array(12),
            tables_size: le_u32(raw, 44),
            tables_checksum: array(48),
            partitions: TableDescriptor::read(raw, 80),
            extents: TableDescriptor::read(raw, 92),
            groups: TableDescriptor::read(raw, 104),
            block_devices: TableDescriptor::read(raw, 116),
            flags: if minor >= VERSION_FOR_EXPANDED_HEADER {
                le_u32(raw, 128)
            } else {
                0
            },
        };
        header.check_tables(which)?;
        Ok(header)
    }

    /// Every table has liblp's entry size and lies inside `tables_size`.
    pub fn check_tables(&self, which: Which) -> Result<(), LpError> {
        for (table, desc, expected) in self.tables() {
            if desc.entry_size != expected {
                return Err(LpError::TableEntrySize {
                    which,
                    table,
                    size: desc.entry_size,
                    expected,
                });
            }
            let end =
                u64::from(desc.offset) + u64::from(desc.num_entries) * u64::from(desc.entry_size);
            if end > u64::from(self.tables_size) {
                return Err(LpError::TableBounds {
                    which,
                    table,
                    offset: desc.offset,
                    count: desc.num_entries,
                    entry_size: desc.entry_size,
                    tables_size: self.tables_size,
                });
            }
        }
        if self.flags != 0 && self.minor_version < VERSION_FOR_EXPANDED_HEADER {
            return Err(LpError::HeaderFlags {
                which,
                flags: self.flags,
                minor: self.minor_version,
            });
        }
        Ok(())
    }

    fn tables(&self) -> [(&'static str, TableDescriptor, u32); 4] {
        [
            ("partition", self.partitions, PARTITION_ENTRY_SIZE),
            ("extent", self.extents, EXTENT_ENTRY_SIZE),
            ("group", self.groups, GROUP_ENTRY_SIZE),
            ("block device", self.block_devices, BLOCK_DEVICE_ENTRY_SIZE),
        ]
    }

    /// Encode `header_size` bytes, computing the header checksum (the tables checksum must
    /// already be filled in).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.header_size as usize];
        b[0..4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&MAJOR_VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&self.minor_version.to_le_bytes());
        b[8..12].copy_from_slice(&self.header_size.to_le_bytes());
        b[44..48].copy_from_slice(&self.tables_size.to_le_bytes());
        b[48..80].copy_from_slice(&self.tables_checksum);
        self.partitions.write(&mut b, 80);
        self.extents.write(&mut b, 92);
        self.groups.write(&mut b, 104);
        self.block_devices.write(&mut b, 116);
        if self.header_size >= HEADER_SIZE_V1_2 {
            b[128..132].copy_from_slice(&self.flags.to_le_bytes());
        }
        let checksum = sha256(&[&b]);
        b[12..44].copy_from_slice(&checksum);
        b
    }
}
