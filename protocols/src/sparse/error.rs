//! Everything that can go wrong reading, indexing, converting or writing a sparse image.
//!
//! Errors about the image's contents say which chunk (its index and the file offset of its
//! header) is wrong, so a person can look at it with `simg_dump.py` or a hex dump.

use std::io;

/// A sparse-image failure. The caller adds the file name (it knows it; this module does not).
#[derive(Debug, thiserror::Error)]
pub enum SparseError {
    #[error("I/O error while {doing}: {source}")]
    Io {
        doing: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("sparse image truncated: {what} at file offset {offset} is cut short by the end of the file")]
    Truncated { what: &'static str, offset: u64 },

    #[error("not an Android sparse image: magic is {found:#010x}, expected 0xed26ff3a")]
    BadMagic { found: u32 },

    #[error("sparse image major version {found} is not supported (only version 1 exists)")]
    UnsupportedVersion { found: u16 },

    #[error("sparse file header size {found} is smaller than the 28 bytes version 1 defines")]
    FileHeaderTooSmall { found: u16 },

    #[error("sparse chunk header size {found} is smaller than the 12 bytes version 1 defines")]
    ChunkHeaderTooSmall { found: u16 },

    #[error("sparse block size {found} is invalid: it must be a non-zero multiple of 4")]
    BadBlockSize { found: u32 },

    #[error("chunk {index} at file offset {offset}: unknown chunk type {chunk_type:#06x}")]
    UnknownChunkType {
        index: u32,
        offset: u64,
        chunk_type: u16,
    },

    #[error(
        "chunk {index} at file offset {offset}: {kind} chunk of {blocks} blocks declares \
         total_sz {total_sz} bytes, but its type needs {expected} bytes"
    )]
    ChunkSizeMismatch {
        index: u32,
        offset: u64,
        kind: &'static str,
        blocks: u32,
        total_sz: u32,
        expected: u64,
    },

    #[error(
        "chunk {index} at file offset {offset}: ends at block {end_block}, past the image's \
         total_blks {total_blocks}"
    )]
    ChunkPastEnd {
        index: u32,
        offset: u64,
        end_block: u64,
        total_blocks: u32,
    },

    #[error("sparse header declares total_blks {declared} but its chunks cover {found} blocks")]
    BlockCountMismatch { declared: u32, found: u64 },

    #[error(
        "chunk {index} at file offset {offset}: CRC32 chunk says {expected:#010x} but the \
         image data before it has CRC32 {computed:#010x}"
    )]
    CrcMismatch {
        index: u32,
        offset: u64,
        expected: u32,
        computed: u32,
    },

    #[error(
        "the header's image_checksum is {declared:#010x} but the expanded image has CRC32 \
         {computed:#010x}: the image is corrupt"
    )]
    ImageChecksumMismatch { declared: u32, computed: u32 },

    #[error(
        "the header declares {declared} chunks, which need at least {least_len} bytes, but the \
         file has {file_len}"
    )]
    TooManyChunks {
        declared: u32,
        file_len: u64,
        least_len: u64,
    },

    #[error(
        "read of {len} bytes at offset {offset} is outside the expanded image ({image_len} bytes)"
    )]
    OutOfRange {
        offset: u64,
        len: u64,
        image_len: u64,
    },

    #[error(
        "source file ended at offset {offset} while {doing}: was it changed after it was scanned?"
    )]
    SourceTruncated { doing: &'static str, offset: u64 },

    #[error("image of {len} bytes is too large for the sparse format with {block_size}-byte blocks (at most 2^32-1 blocks and 16 TiB)")]
    ImageTooLarge { len: u64, block_size: u32 },

    #[error("sparse piece limit of {max} bytes is too small: at least {min} bytes are needed to carry one block")]
    PieceLimitTooSmall { max: u64, min: u64 },

    #[error("sparse writer misuse: {0}")]
    Writer(String),
}

impl SparseError {
    pub(crate) fn io(doing: &'static str) -> impl FnOnce(io::Error) -> SparseError {
        move |source| SparseError::Io { doing, source }
    }
}

/// Reads exactly `buf.len()` bytes, turning an early end of file into [`SparseError::Truncated`].
pub(crate) fn read_exact_or_truncated<R: io::Read + ?Sized>(
    reader: &mut R,
    buf: &mut [u8],
    what: &'static str,
    offset: u64,
) -> Result<(), SparseError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Err(SparseError::Truncated { what, offset }),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(SparseError::Io {
                    doing: what,
                    source,
                })
            }
        }
    }
    Ok(())
}
