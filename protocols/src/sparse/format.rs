//! The on-disk codec of Android sparse images (AOSP `libsparse/sparse_format.h`): the file
//! header, chunk headers and the rules that tie a chunk's type to its sizes. Sans-io: bytes in,
//! typed values out, every field checked before it is used.

use super::error::SparseError;

/// First four bytes of every sparse image (little-endian on disk: `3a ff 26 ed`).
pub const MAGIC: u32 = 0xed26_ff3a;
/// The only major version that exists; libsparse rejects any other.
pub const MAJOR_VERSION: u16 = 1;
/// The minor version we write; readers accept any minor version, as libsparse does.
pub const MINOR_VERSION: u16 = 0;
/// Size of the version-1 file header. Larger declared sizes are allowed; the excess is skipped.
pub const FILE_HEADER_LEN: usize = 28;
/// Size of the version-1 chunk header. Larger declared sizes are allowed; the excess is skipped.
pub const CHUNK_HEADER_LEN: usize = 12;
/// The block size AOSP tools use (`img2simg`, the fastboot client's resparse of raw images).
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;

/// Chunk type: `chunk_sz` blocks of data follow the header.
pub const CHUNK_TYPE_RAW: u16 = 0xCAC1;
/// Chunk type: a 4-byte value follows, repeated over `chunk_sz` blocks.
pub const CHUNK_TYPE_FILL: u16 = 0xCAC2;
/// Chunk type: `chunk_sz` blocks whose content the image does not define (left as they are).
pub const CHUNK_TYPE_DONT_CARE: u16 = 0xCAC3;
/// Chunk type: a 4-byte CRC32 of the expanded image so far; covers no blocks.
pub const CHUNK_TYPE_CRC32: u16 = 0xCAC4;

/// Cheap sniff: do these first bytes start a sparse image? Needs at least 4 bytes.
pub fn is_sparse(first_bytes: &[u8]) -> bool {
    matches!(first_bytes.get(..4), Some(m) if u32::from_le_bytes([m[0], m[1], m[2], m[3]]) == MAGIC)
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The sparse file header, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseHeader {
    pub major_version: u16,
    pub minor_version: u16,
    /// Declared header size; bytes past [`FILE_HEADER_LEN`] are skipped.
    pub file_hdr_sz: u16,
    /// Declared chunk header size; bytes past [`CHUNK_HEADER_LEN`] are skipped in every chunk.
    pub chunk_hdr_sz: u16,
    pub blk_sz: u32,
    pub total_blks: u32,
    pub total_chunks: u32,
    /// CRC32 of the expanded image as declared. libsparse neither writes (always 0) nor checks
    /// it, so neither do we; CRC32 *chunks* are checked instead.
    pub image_checksum: u32,
}

impl SparseHeader {
    /// A version-1 header with the standard header sizes.
    pub fn new(blk_sz: u32, total_blks: u32, total_chunks: u32) -> Self {
        SparseHeader {
            major_version: MAJOR_VERSION,
            minor_version: MINOR_VERSION,
            file_hdr_sz: FILE_HEADER_LEN as u16,
            chunk_hdr_sz: CHUNK_HEADER_LEN as u16,
            blk_sz,
            total_blks,
            total_chunks,
            image_checksum: 0,
        }
    }

    /// Parses and validates the first 28 bytes of a sparse image.
    pub fn parse(bytes: &[u8]) -> Result<Self, SparseError> {
        let b = bytes.get(..FILE_HEADER_LEN).ok_or(SparseError::Truncated {
            what: "sparse file header",
            offset: 0,
        })?;
        let magic = le32(b, 0);
        if magic != MAGIC {
            return Err(SparseError::BadMagic { found: magic });
        }
        let header = SparseHeader {
            major_version: le16(b, 4),
            minor_version: le16(b, 6),
            file_hdr_sz: le16(b, 8),
            chunk_hdr_sz: le16(b, 10),
            blk_sz: le32(b, 12),
            total_blks: le32(b, 16),
            total_chunks: le32(b, 20),
            image_checksum: le32(b, 24),
        };
        header.validate()?;
        Ok(header)
    }

    /// Checks the fields every reader relies on.
    pub fn validate(&self) -> Result<(), SparseError> {
        if self.major_version != MAJOR_VERSION {
            return Err(SparseError::UnsupportedVersion {
                found: self.major_version,
            });
        }
        if usize::from(self.file_hdr_sz) < FILE_HEADER_LEN {
            return Err(SparseError::FileHeaderTooSmall {
                found: self.file_hdr_sz,
            });
        }
        if usize::from(self.chunk_hdr_sz) < CHUNK_HEADER_LEN {
            return Err(SparseError::ChunkHeaderTooSmall {
                found: self.chunk_hdr_sz,
            });
        }
        if self.blk_sz == 0 || self.blk_sz & 3 != 0 {
            return Err(SparseError::BadBlockSize { found: self.blk_sz });
        }
        Ok(())
    }

    /// Bytes of the expanded (raw) image: `total_blks * blk_sz`.
    pub fn expanded_len(&self) -> u64 {
        u64::from(self.total_blks) * u64::from(self.blk_sz)
    }

    /// The 28-byte on-disk form (declared header sizes are written as they are; a writer using
    /// this must then write that many bytes per header).
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&self.major_version.to_le_bytes());
        b[6..8].copy_from_slice(&self.minor_version.to_le_bytes());
        b[8..10].copy_from_slice(&self.file_hdr_sz.to_le_bytes());
        b[10..12].copy_from_slice(&self.chunk_hdr_sz.to_le_bytes());
        b[12..16].copy_from_slice(&self.blk_sz.to_le_bytes());
        b[16..20].copy_from_slice(&self.total_blks.to_le_bytes());
        b[20..24].copy_from_slice(&self.total_chunks.to_le_bytes());
        b[24..28].copy_from_slice(&self.image_checksum.to_le_bytes());
        b
    }
}

/// A chunk header as stored, before its sizes are checked against its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    pub chunk_type: u16,
    pub reserved1: u16,
    /// Blocks of the expanded image this chunk covers.
    pub chunk_sz: u32,
    /// Bytes of this chunk in the sparse file, header included.
    pub total_sz: u32,
}

impl ChunkHeader {
    pub fn new(chunk_type: u16, chunk_sz: u32, total_sz: u32) -> Self {
        ChunkHeader {
            chunk_type,
            reserved1: 0,
            chunk_sz,
            total_sz,
        }
    }

    /// Parses the first 12 bytes of a chunk header.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<Self, SparseError> {
        let b = bytes
            .get(..CHUNK_HEADER_LEN)
            .ok_or(SparseError::Truncated {
                what: "chunk header",
                offset,
            })?;
        Ok(ChunkHeader {
            chunk_type: le16(b, 0),
            reserved1: le16(b, 2),
            chunk_sz: le32(b, 4),
            total_sz: le32(b, 8),
        })
    }

    pub fn encode(&self) -> [u8; CHUNK_HEADER_LEN] {
        let mut b = [0u8; CHUNK_HEADER_LEN];
        b[0..2].copy_from_slice(&self.chunk_type.to_le_bytes());
        b[2..4].copy_from_slice(&self.reserved1.to_le_bytes());
        b[4..8].copy_from_slice(&self.chunk_sz.to_le_bytes());
        b[8..12].copy_from_slice(&self.total_sz.to_le_bytes());
        b
    }

    /// Checks `total_sz` against the type (exactly what libsparse's reader demands) and returns
    /// the kind and the number of data bytes that follow the (declared-size) header.
    /// `index` and `offset` (of this header in the file) only label errors.
    pub fn classify(
        &self,
        file: &SparseHeader,
        index: u32,
        offset: u64,
    ) -> Result<(ChunkType, u64), SparseError> {
        let hdr = u64::from(file.chunk_hdr_sz);
        let (kind, data_len) = match self.chunk_type {
            CHUNK_TYPE_RAW => (
                ChunkType::Raw,
                u64::from(self.chunk_sz) * u64::from(file.blk_sz),
            ),
            CHUNK_TYPE_FILL => (ChunkType::Fill, 4),
            CHUNK_TYPE_DONT_CARE => (ChunkType::DontCare, 0),
            CHUNK_TYPE_CRC32 => (ChunkType::Crc32, 4),
            other => {
                return Err(SparseError::UnknownChunkType {
                    index,
                    offset,
                    chunk_type: other,
                })
            }
        };
        let expected = hdr + data_len;
        if u64::from(self.total_sz) != expected {
            return Err(SparseError::ChunkSizeMismatch {
                index,
                offset,
                kind: kind.name(),
                blocks: self.chunk_sz,
                total_sz: self.total_sz,
                expected,
            });
        }
        Ok((kind, data_len))
    }
}

/// The four chunk types of version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkType {
    Raw,
    Fill,
    DontCare,
    Crc32,
}

impl ChunkType {
    pub fn code(self) -> u16 {
        match self {
            ChunkType::Raw => CHUNK_TYPE_RAW,
            ChunkType::Fill => CHUNK_TYPE_FILL,
            ChunkType::DontCare => CHUNK_TYPE_DONT_CARE,
            ChunkType::Crc32 => CHUNK_TYPE_CRC32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChunkType::Raw => "RAW",
            ChunkType::Fill => "FILL",
            ChunkType::DontCare => "DONT_CARE",
            ChunkType::Crc32 => "CRC32",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// img2simg's header for a 3-block, 2-chunk image of 4096-byte blocks.
    const HEADER: [u8; 28] = [
        0x3a, 0xff, 0x26, 0xed, // magic
        0x01, 0x00, 0x00, 0x00, // major 1, minor 0
        0x1c, 0x00, 0x0c, 0x00, // file_hdr_sz 28, chunk_hdr_sz 12
        0x00, 0x10, 0x00, 0x00, // blk_sz 4096
        0x03, 0x00, 0x00, 0x00, // total_blks 3
        0x02, 0x00, 0x00, 0x00, // total_chunks 2
        0x00, 0x00, 0x00, 0x00, // image_checksum
    ];

    fn with(bytes: &[u8; 28], at: usize, patch: &[u8]) -> [u8; 28] {
        let mut b = *bytes;
        b[at..at + patch.len()].copy_from_slice(patch);
        b
    }

    #[test]
    fn parses_and_encodes_a_header() {
        let h = SparseHeader::parse(&HEADER).unwrap();
        assert_eq!(h, SparseHeader::new(4096, 3, 2));
        assert_eq!(h.expanded_len(), 3 * 4096);
        assert_eq!(h.encode(), HEADER);
    }

    #[test]
    fn sniffs_magic() {
        assert!(is_sparse(&HEADER));
        assert!(is_sparse(&[0x3a, 0xff, 0x26, 0xed]));
        assert!(!is_sparse(&[0x3a, 0xff, 0x26]));
        assert!(!is_sparse(b""));
        assert!(!is_sparse(b"\x7fELF"));
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(matches!(
            SparseHeader::parse(&HEADER[..27]),
            Err(SparseError::Truncated { offset: 0, .. })
        ));
        assert!(matches!(
            SparseHeader::parse(&with(&HEADER, 0, &[0, 0, 0, 0])),
            Err(SparseError::BadMagic { found: 0 })
        ));
        assert!(matches!(
            SparseHeader::parse(&with(&HEADER, 4, &[2, 0])),
            Err(SparseError::UnsupportedVersion { found: 2 })
        ));
        assert!(matches!(
            SparseHeader::parse(&with(&HEADER, 8, &[27, 0])),
            Err(SparseError::FileHeaderTooSmall { found: 27 })
        ));
        assert!(matches!(
            SparseHeader::parse(&with(&HEADER, 10, &[11, 0])),
            Err(SparseError::ChunkHeaderTooSmall { found: 11 })
        ));
        assert!(matches!(
            SparseHeader::parse(&with(&HEADER, 12, &[0, 0, 0, 0])),
            Err(SparseError::BadBlockSize { found: 0 })
        ));
        assert!(matches!(
            SparseHeader::parse(&with(&HEADER, 12, &[2, 0x10, 0, 0])),
            Err(SparseError::BadBlockSize { found: 0x1002 })
        ));
    }

    #[test]
    fn accepts_newer_minor_version_and_larger_header_sizes() {
        let h = SparseHeader::parse(&with(&HEADER, 6, &[7, 0])).unwrap();
        assert_eq!(h.minor_version, 7);
        let h = SparseHeader::parse(&with(&HEADER, 8, &[32, 0, 16, 0])).unwrap();
        assert_eq!((h.file_hdr_sz, h.chunk_hdr_sz), (32, 16));
    }

    #[test]
    fn classifies_chunks_by_type_and_size() {
        let file = SparseHeader::new(4096, 100, 4);
        let raw =
            ChunkHeader::parse(&[0xc1, 0xca, 0, 0, 2, 0, 0, 0, 0x0c, 0x20, 0, 0], 28).unwrap();
        assert_eq!(raw, ChunkHeader::new(CHUNK_TYPE_RAW, 2, 12 + 8192));
        assert_eq!(raw.classify(&file, 0, 28).unwrap(), (ChunkType::Raw, 8192));
        let fill = ChunkHeader::parse(&[0xc2, 0xca, 0, 0, 5, 0, 0, 0, 16, 0, 0, 0], 0).unwrap();
        assert_eq!(fill.classify(&file, 1, 0).unwrap(), (ChunkType::Fill, 4));
        let skip = ChunkHeader::parse(&[0xc3, 0xca, 0, 0, 9, 0, 0, 0, 12, 0, 0, 0], 0).unwrap();
        assert_eq!(
            skip.classify(&file, 2, 0).unwrap(),
            (ChunkType::DontCare, 0)
        );
        let crc = ChunkHeader::parse(&[0xc4, 0xca, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0], 0).unwrap();
        assert_eq!(crc.classify(&file, 3, 0).unwrap(), (ChunkType::Crc32, 4));
        assert_eq!(
            raw.encode(),
            [0xc1, 0xca, 0, 0, 2, 0, 0, 0, 0x0c, 0x20, 0, 0]
        );
    }

    #[test]
    fn rejects_chunks_whose_size_does_not_match_their_type() {
        let file = SparseHeader::new(4096, 100, 4);
        let cases: [(u16, u32, u32); 6] = [
            (CHUNK_TYPE_RAW, 2, 12),              // no data for 2 blocks
            (CHUNK_TYPE_RAW, 2, 12 + 8191),       // one byte short
            (CHUNK_TYPE_RAW, u32::MAX, u32::MAX), // huge: checked in u64, no overflow
            (CHUNK_TYPE_FILL, 1, 12),             // fill value missing
            (CHUNK_TYPE_DONT_CARE, 1, 16),        // data after DONT_CARE
            (CHUNK_TYPE_CRC32, 0, 20),
        ];
        for (t, sz, total) in cases {
            let err = ChunkHeader::new(t, sz, total)
                .classify(&file, 7, 1234)
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    SparseError::ChunkSizeMismatch {
                        index: 7,
                        offset: 1234,
                        ..
                    }
                ),
                "{t:#x} {sz} {total}: {err}"
            );
        }
        let err = ChunkHeader::new(0xCAC5, 1, 12)
            .classify(&file, 2, 40)
            .unwrap_err();
        assert!(matches!(
            err,
            SparseError::UnknownChunkType {
                index: 2,
                offset: 40,
                chunk_type: 0xCAC5
            }
        ));
        assert!(ChunkHeader::parse(&[0xc1, 0xca, 0], 99).is_err());
    }

    #[test]
    fn larger_chunk_header_size_counts_in_total_sz() {
        let file = SparseHeader {
            chunk_hdr_sz: 16,
            ..SparseHeader::new(4096, 10, 1)
        };
        assert_eq!(
            ChunkHeader::new(CHUNK_TYPE_FILL, 1, 20)
                .classify(&file, 0, 0)
                .unwrap(),
            (ChunkType::Fill, 4)
        );
        assert!(ChunkHeader::new(CHUNK_TYPE_FILL, 1, 16)
            .classify(&file, 0, 0)
            .is_err());
    }
}
