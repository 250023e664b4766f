//! Checking a whole sparse image before anything is flashed from it: every chunk walked and
//! validated, every CRC the file carries verified, the chunk count bounded by the file's size.
//!
//! What libsparse (29.0.6) does, and where we go further:
//! - CRC32 chunks: libsparse verifies them only when the caller asks (`sparse_file_import(fd,
//!   verbose, crc)`; `simg2img` and the fastboot client pass `crc = false`), and writes one only
//!   when asked. A CRC32 chunk exists because its writer wanted it checked, so we always do.
//! - The header's `image_checksum` ("CRC32 of the original data, counting don't care as 0"):
//!   the old ext4_utils writer filled it in and the old `simg2img` compared it (refusing, later
//!   only printing, a mismatch); today's libsparse always writes 0 and never reads it. We check
//!   it when it is not 0: no current writer puts a non-zero value there that is not the CRC.

use std::io::Read;

use super::error::SparseError;
use super::format::SparseHeader;
use super::reader::{ChunkKind, SparseReader};

/// RAW data is read through this buffer (the reader's own skip buffer is small).
const READ_BUF_LEN: usize = 256 * 1024;

/// What a verified sparse image holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseSummary {
    pub header: SparseHeader,
    /// Bytes of the expanded image (what the partition receives).
    pub expanded_len: u64,
    /// CRC32 chunks found (each verified).
    pub crc32_chunks: u32,
    /// Whether the header carried a non-zero `image_checksum` (then verified).
    pub image_checksum_verified: bool,
}

/// Walks the sparse image read from `input` (a file of `file_len` bytes) to its last chunk and
/// verifies it. Time is linear in the file's size and memory constant: the declared chunk
/// count is refused up front when the file cannot hold that many chunk headers, and FILL and
/// DONT_CARE runs are folded into the CRC in O(log n).
pub fn verify<R: Read>(input: R, file_len: u64) -> Result<SparseSummary, SparseError> {
    let mut reader = SparseReader::new(input)?.verify_crc(true);
    let header = *reader.header();
    let least_len = u64::from(header.file_hdr_sz)
        + u64::from(header.total_chunks) * u64::from(header.chunk_hdr_sz);
    if least_len > file_len {
        return Err(SparseError::TooManyChunks {
            declared: header.total_chunks,
            file_len,
            least_len,
        });
    }
    let mut buf = vec![0u8; READ_BUF_LEN];
    let mut crc32_chunks = 0u32;
    while let Some(chunk) = reader.next_chunk()? {
        match chunk.kind {
            ChunkKind::Raw { .. } => while reader.read_raw(&mut buf)? > 0 {},
            ChunkKind::Crc32 { .. } => crc32_chunks += 1,
            ChunkKind::Fill { .. } | ChunkKind::DontCare { .. } => {}
        }
    }
    let image_checksum_verified = header.image_checksum != 0;
    if image_checksum_verified {
        let computed = reader.expanded_crc32().unwrap_or_default();
        if computed != header.image_checksum {
            return Err(SparseError::ImageChecksumMismatch {
                declared: header.image_checksum,
                computed,
            });
        }
    }
    Ok(SparseSummary {
        header,
        expanded_len: header.expanded_len(),
        crc32_chunks,
        image_checksum_verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::{crc, expanded, image, noise, C};

    fn with_checksum(mut bytes: Vec<u8>, checksum: u32) -> Vec<u8> {
        bytes[24..28].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    fn check(bytes: &[u8]) -> Result<SparseSummary, SparseError> {
        verify(bytes, bytes.len() as u64)
    }

    #[test]
    fn a_good_image_with_crc_chunk_and_header_checksum_verifies() {
        let chunks = [
            C::Raw(noise(1, 3 * 64)),
            C::Skip(2),
            C::Fill(0xdead_beef, 3),
            C::Crc(0),
            C::Raw(noise(2, 64)),
        ];
        let data = expanded(64, &chunks);
        let mut chunks = chunks;
        chunks[3] = C::Crc(crc(&data[..8 * 64]));
        let bytes = with_checksum(image(64, 9, &chunks), crc(&data));
        let summary = check(&bytes).unwrap();
        assert_eq!(summary.expanded_len, 9 * 64);
        assert_eq!(summary.crc32_chunks, 1);
        assert!(summary.image_checksum_verified);
        // image_checksum 0 means "not computed", as libsparse writes it.
        let summary = check(&with_checksum(bytes, 0)).unwrap();
        assert!(!summary.image_checksum_verified);
    }

    #[test]
    fn a_wrong_header_checksum_is_refused() {
        let chunks = [C::Raw(noise(3, 128)), C::Skip(1)];
        let data = expanded(64, &chunks);
        let bytes = with_checksum(image(64, 3, &chunks), crc(&data) ^ 1);
        let error = check(&bytes).unwrap_err();
        assert!(
            matches!(error, SparseError::ImageChecksumMismatch { computed, .. } if computed == crc(&data)),
            "{error}"
        );
        assert!(error.to_string().contains("image_checksum"), "{error}");
    }

    #[test]
    fn a_wrong_crc_chunk_is_refused() {
        let bytes = image(64, 2, &[C::Raw(noise(4, 64)), C::Crc(7), C::Fill(1, 1)]);
        assert!(matches!(
            check(&bytes),
            Err(SparseError::CrcMismatch { index: 1, .. })
        ));
    }

    #[test]
    fn a_chunk_count_the_file_cannot_hold_is_refused_before_walking() {
        let mut bytes = image(64, 1, &[C::Fill(1, 1)]);
        bytes[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = check(&bytes).unwrap_err();
        assert!(
            matches!(
                error,
                SparseError::TooManyChunks {
                    declared: u32::MAX,
                    ..
                }
            ),
            "{error}"
        );
        // A walk that runs out of file, and blocks that do not add up, are refused too.
        let mut bytes = image(64, 2, &[C::Raw(noise(5, 128))]);
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(check(&bytes), Err(SparseError::Truncated { .. })));
        let bytes = image(64, 5, &[C::Fill(1, 2)]);
        assert!(matches!(
            check(&bytes),
            Err(SparseError::BlockCountMismatch { .. })
        ));
    }
}
