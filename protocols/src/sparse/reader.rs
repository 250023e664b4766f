//! Streaming reader: walks a sparse image chunk by chunk from any `Read`, validating as it
//! goes, with a RAW chunk's data handed out as a bounded stream (never buffered whole).

use std::io::{self, Read};

use super::checksum::RunningCrc;
use super::error::{read_exact_or_truncated, SparseError};
use super::format::{ChunkHeader, ChunkType, SparseHeader, CHUNK_HEADER_LEN, FILE_HEADER_LEN};

/// One chunk of a sparse image, as found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Position among the image's chunks, from 0.
    pub index: u32,
    /// File offset of the chunk header.
    pub offset: u64,
    /// File offset of the chunk's data (after the declared-size header).
    pub data_offset: u64,
    /// First block of the expanded image this chunk covers.
    pub start_block: u32,
    pub kind: ChunkKind,
}

/// What a chunk puts in the expanded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// `blocks * blk_sz` bytes of data follow in the file.
    Raw { blocks: u32 },
    /// `value` (little-endian on disk, so its bytes are `value.to_le_bytes()`) repeated.
    Fill { blocks: u32, value: u32 },
    /// Blocks left as they are on the target (zeros in a fresh image).
    DontCare { blocks: u32 },
    /// CRC32 of the expanded image up to here; covers no blocks.
    Crc32 { crc: u32 },
}

impl ChunkKind {
    /// Blocks of the expanded image covered.
    pub fn blocks(&self) -> u32 {
        match *self {
            ChunkKind::Raw { blocks }
            | ChunkKind::Fill { blocks, .. }
            | ChunkKind::DontCare { blocks } => blocks,
            ChunkKind::Crc32 { .. } => 0,
        }
    }

    pub fn chunk_type(&self) -> ChunkType {
        match self {
            ChunkKind::Raw { .. } => ChunkType::Raw,
            ChunkKind::Fill { .. } => ChunkType::Fill,
            ChunkKind::DontCare { .. } => ChunkType::DontCare,
            ChunkKind::Crc32 { .. } => ChunkType::Crc32,
        }
    }
}

impl Chunk {
    /// Byte offset of the chunk's first block in the expanded image.
    pub fn expanded_offset(&self, blk_sz: u32) -> u64 {
        u64::from(self.start_block) * u64::from(blk_sz)
    }

    /// Bytes of the expanded image this chunk covers.
    pub fn expanded_len(&self, blk_sz: u32) -> u64 {
        u64::from(self.kind.blocks()) * u64::from(blk_sz)
    }
}

/// Reads a sparse image from a byte stream. Call [`SparseReader::next_chunk`] until it returns
/// `None`; after a RAW chunk, read its data with [`SparseReader::read_raw`] or
/// [`SparseReader::raw_data`] (unread data is skipped by the next `next_chunk`).
///
/// Validation matches libsparse's reader (magic, major version, header sizes, each chunk's
/// `total_sz` against its type, total blocks) and adds: block size a non-zero multiple of 4, no
/// chunk past `total_blks` (checked before any of its data is read), unknown chunk types are
/// errors. CRC32 chunks are checked against the data before them unless disabled.
pub struct SparseReader<R> {
    inner: R,
    header: SparseHeader,
    /// File offset of the next byte `inner` will deliver.
    position: u64,
    next_index: u32,
    next_block: u64,
    /// Unread bytes of the current RAW chunk.
    raw_remaining: u64,
    crc: Option<RunningCrc>,
    done: bool,
}

impl<R: Read> SparseReader<R> {
    /// Reads and validates the file header; `inner` must be at the image's first byte.
    pub fn new(mut inner: R) -> Result<Self, SparseError> {
        let mut bytes = [0u8; FILE_HEADER_LEN];
        read_exact_or_truncated(&mut inner, &mut bytes, "sparse file header", 0)?;
        let header = SparseHeader::parse(&bytes)?;
        let mut reader = SparseReader {
            inner,
            header,
            position: FILE_HEADER_LEN as u64,
            next_index: 0,
            next_block: 0,
            raw_remaining: 0,
            crc: Some(RunningCrc::new()),
            done: false,
        };
        let extra = u64::from(header.file_hdr_sz) - FILE_HEADER_LEN as u64;
        reader.discard(extra, "sparse file header", false)?;
        Ok(reader)
    }

    /// Whether CRC32 chunks are verified (default: yes). Turning it off saves hashing the
    /// data when the caller does not need it (libsparse's own default is off).
    pub fn verify_crc(mut self, verify: bool) -> Self {
        if !verify {
            self.crc = None;
        } else if self.crc.is_none() && self.position == u64::from(self.header.file_hdr_sz) {
            self.crc = Some(RunningCrc::new());
        }
        self
    }

    pub fn header(&self) -> &SparseHeader {
        &self.header
    }

    /// Bytes of the expanded image.
    pub fn expanded_len(&self) -> u64 {
        self.header.expanded_len()
    }

    /// CRC32 of the expanded image up to the current position (DONT_CARE as zeros), when CRC
    /// verification is on: after the last chunk, the CRC of the whole expanded image.
    pub fn expanded_crc32(&self) -> Option<u32> {
        self.crc.as_ref().map(RunningCrc::value)
    }

    /// File offset of the next byte to be read.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Bytes of the current RAW chunk's data not read yet.
    pub fn raw_remaining(&self) -> u64 {
        self.raw_remaining
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next chunk, or `None` after the last one (once the block total is confirmed).
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, SparseError> {
        if self.raw_remaining > 0 {
            let left = self.raw_remaining;
            self.discard(left, "RAW chunk data", true)?;
            self.raw_remaining = 0;
        }
        if self.done {
            return Ok(None);
        }
        if self.next_index == self.header.total_chunks {
            self.done = true;
            if self.next_block != u64::from(self.header.total_blks) {
                return Err(SparseError::BlockCountMismatch {
                    declared: self.header.total_blks,
                    found: self.next_block,
                });
            }
            return Ok(None);
        }
        let index = self.next_index;
        let offset = self.position;
        let mut bytes = [0u8; CHUNK_HEADER_LEN];
        read_exact_or_truncated(&mut self.inner, &mut bytes, "chunk header", offset)?;
        self.position += CHUNK_HEADER_LEN as u64;
        let raw_header = ChunkHeader::parse(&bytes, offset)?;
        let extra = u64::from(self.header.chunk_hdr_sz) - CHUNK_HEADER_LEN as u64;
        self.discard(extra, "chunk header", false)?;
        let (chunk_type, data_len) = raw_header.classify(&self.header, index, offset)?;

        let blocks = if chunk_type == ChunkType::Crc32 {
            0
        } else {
            raw_header.chunk_sz
        };
        let end_block = self.next_block + u64::from(blocks);
        if end_block > u64::from(self.header.total_blks) {
            return Err(SparseError::ChunkPastEnd {
                index,
                offset,
                end_block,
                total_blocks: self.header.total_blks,
            });
        }
        let data_offset = self.position;
        let words = u64::from(blocks) * u64::from(self.header.blk_sz) / 4;
        let kind = match chunk_type {
            ChunkType::Raw => {
                self.raw_remaining = data_len;
                ChunkKind::Raw { blocks }
            }
            ChunkType::Fill => {
                let value = self.read_u32("FILL value", data_offset)?;
                if let Some(crc) = &mut self.crc {
                    crc.update_repeated(value, words);
                }
                ChunkKind::Fill { blocks, value }
            }
            ChunkType::DontCare => {
                if let Some(crc) = &mut self.crc {
                    crc.update_repeated(0, words);
                }
                ChunkKind::DontCare { blocks }
            }
            ChunkType::Crc32 => {
                let expected = self.read_u32("CRC32 value", data_offset)?;
                if let Some(crc) = &self.crc {
                    let computed = crc.value();
                    if computed != expected {
                        return Err(SparseError::CrcMismatch {
                            index,
                            offset,
                            expected,
                            computed,
                        });
                    }
                }
                ChunkKind::Crc32 { crc: expected }
            }
        };
        let chunk = Chunk {
            index,
            offset,
            data_offset,
            start_block: self.next_block as u32, // < end_block <= total_blks, fits u32
            kind,
        };
        self.next_index += 1;
        self.next_block = end_block;
        Ok(Some(chunk))
    }

    /// Reads data of the current RAW chunk; `Ok(0)` once it is all read.
    pub fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize, SparseError> {
        if self.raw_remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.raw_remaining).unwrap_or(usize::MAX));
        let dst = &mut buf[..want];
        let n = loop {
            match self.inner.read(dst) {
                Ok(0) => {
                    return Err(SparseError::Truncated {
                        what: "RAW chunk data",
                        offset: self.position,
                    })
                }
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SparseError::Io {
                        doing: "reading RAW chunk data",
                        source,
                    })
                }
            }
        };
        if let Some(crc) = &mut self.crc {
            crc.update(&dst[..n]);
        }
        self.position += n as u64;
        self.raw_remaining -= n as u64;
        Ok(n)
    }

    /// The current RAW chunk's remaining data as an `io::Read` (errors become `io::Error`s
    /// wrapping the [`SparseError`]).
    pub fn raw_data(&mut self) -> RawData<'_, R> {
        RawData { reader: self }
    }

    fn read_u32(&mut self, what: &'static str, offset: u64) -> Result<u32, SparseError> {
        let mut b = [0u8; 4];
        read_exact_or_truncated(&mut self.inner, &mut b, what, offset)?;
        self.position += 4;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads and drops `len` bytes (a plain `Read` cannot seek), hashing them if they are
    /// image data.
    fn discard(
        &mut self,
        len: u64,
        what: &'static str,
        image_data: bool,
    ) -> Result<(), SparseError> {
        let mut scratch = [0u8; 8192];
        let mut left = len;
        while left > 0 {
            let want = scratch
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match self.inner.read(&mut scratch[..want]) {
                Ok(0) => {
                    return Err(SparseError::Truncated {
                        what,
                        offset: self.position,
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(SparseError::Io {
                        doing: what,
                        source,
                    })
                }
            };
            if image_data {
                if let Some(crc) = &mut self.crc {
                    crc.update(&scratch[..n]);
                }
            }
            self.position += n as u64;
            left -= n as u64;
        }
        Ok(())
    }
}

/// `io::Read` over the rest of the current RAW chunk's data.
pub struct RawData<'a, R> {
    reader: &'a mut SparseReader<R>,
}

impl<R: Read> Read for RawData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_raw(buf).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::format::{CHUNK_TYPE_FILL, CHUNK_TYPE_RAW};
    use crate::sparse::testutil::{crc, expanded, image, noise, C};

    fn read_all(bytes: &[u8]) -> Result<(Vec<Chunk>, Vec<u8>), SparseError> {
        let mut r = SparseReader::new(bytes)?;
        let mut chunks = Vec::new();
        let mut raw = Vec::new();
        while let Some(c) = r.next_chunk()? {
            if let ChunkKind::Raw { .. } = c.kind {
                r.raw_data()
                    .read_to_end(&mut raw)
                    .map_err(|e| SparseError::Io {
                        doing: "test",
                        source: e,
                    })?;
            }
            chunks.push(c);
        }
        Ok((chunks, raw))
    }

    #[test]
    fn walks_every_chunk_type() {
        let data = noise(1, 8);
        let chunks = [
            C::Raw(data.clone()),
            C::Fill(0xaabbccdd, 3),
            C::Skip(2),
            C::Crc(0),
        ];
        let mut bytes = image(8, 6, &chunks);
        // Put the right CRC in the CRC32 chunk's last 4 bytes.
        let good = crc(&expanded(8, &chunks));
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&good.to_le_bytes());
        let (got, raw) = read_all(&bytes).unwrap();
        assert_eq!(raw, data);
        assert_eq!(
            got.iter()
                .map(|c| (c.index, c.offset, c.start_block, c.kind))
                .collect::<Vec<_>>(),
            vec![
                (0, 28, 0, ChunkKind::Raw { blocks: 1 }),
                (
                    1,
                    48,
                    1,
                    ChunkKind::Fill {
                        blocks: 3,
                        value: 0xaabbccdd
                    }
                ),
                (2, 64, 4, ChunkKind::DontCare { blocks: 2 }),
                (3, 76, 6, ChunkKind::Crc32 { crc: good }),
            ]
        );
        // Two blocks short of total_blks: the CRC chunk covers none.
        let bad = image(8, 6, &[C::Raw(data), C::Fill(1, 3), C::Crc(0)]);
        let bad = SparseReader::new(&bad[..]).unwrap().verify_crc(false);
        let mut bad = bad;
        let err = loop {
            match bad.next_chunk() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("accepted"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(
                err,
                SparseError::BlockCountMismatch {
                    declared: 6,
                    found: 4
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn wrong_crc_names_the_chunk() {
        let bytes = image(8, 2, &[C::Fill(5, 2), C::Crc(0x1234)]);
        match read_all(&bytes) {
            Err(SparseError::CrcMismatch {
                index: 1,
                offset: 44,
                expected: 0x1234,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // libsparse's default: CRC not checked.
        let mut r = SparseReader::new(&bytes[..]).unwrap().verify_crc(false);
        while r.next_chunk().unwrap().is_some() {}
    }

    #[test]
    fn skips_unread_raw_data_and_larger_headers() {
        // file_hdr_sz 32 and chunk_hdr_sz 16: the extra bytes are skipped.
        let mut bytes = SparseHeader {
            file_hdr_sz: 32,
            chunk_hdr_sz: 16,
            ..SparseHeader::new(4, 3, 2)
        }
        .encode()
        .to_vec();
        bytes.extend_from_slice(&[0xee; 4]);
        bytes.extend_from_slice(&ChunkHeader::new(CHUNK_TYPE_RAW, 2, 16 + 8).encode());
        bytes.extend_from_slice(&[0xee; 4]);
        bytes.extend_from_slice(b"abcdefgh");
        bytes.extend_from_slice(&ChunkHeader::new(CHUNK_TYPE_FILL, 1, 20).encode());
        bytes.extend_from_slice(&[0xee; 4]);
        bytes.extend_from_slice(&7u32.to_le_bytes());
        let mut r = SparseReader::new(&bytes[..]).unwrap();
        let raw = r.next_chunk().unwrap().unwrap();
        assert_eq!((raw.offset, raw.data_offset), (32, 48));
        let fill = r.next_chunk().unwrap().unwrap(); // RAW data never read: skipped
        assert_eq!(
            (fill.offset, fill.start_block, fill.kind),
            (
                56,
                2,
                ChunkKind::Fill {
                    blocks: 1,
                    value: 7
                }
            )
        );
        assert!(r.next_chunk().unwrap().is_none());
        assert!(r.next_chunk().unwrap().is_none());
    }

    #[test]
    fn malformed_images_are_errors_not_panics() {
        let good = image(4, 3, &[C::Raw(b"abcdefgh".to_vec()), C::Fill(9, 1)]);
        // Every truncation of a valid image is an error.
        for cut in 0..good.len() {
            assert!(read_all(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read_all(&good).is_ok());

        // A chunk that claims 4 G blocks of RAW data: rejected from the header, nothing read.
        let huge = image(
            4096,
            1,
            &[C::Bad {
                ty: CHUNK_TYPE_RAW,
                chunk_sz: u32::MAX,
                total_sz: 12,
                data: vec![],
            }],
        );
        assert!(matches!(
            read_all(&huge),
            Err(SparseError::ChunkSizeMismatch {
                index: 0,
                offset: 28,
                ..
            })
        ));
        // Valid sizes but past total_blks: rejected before the data is read.
        let past = image(4, 1, &[C::Raw(b"abcdefgh".to_vec())]);
        assert!(matches!(
            read_all(&past),
            Err(SparseError::ChunkPastEnd {
                index: 0,
                end_block: 2,
                ..
            })
        ));
        let past = image(4096, 10, &[C::Skip(9), C::Fill(0, u32::MAX)]);
        assert!(matches!(
            read_all(&past),
            Err(SparseError::ChunkPastEnd {
                index: 1,
                offset: 40,
                ..
            })
        ));
        // total_chunks far beyond the file: truncated, no allocation from the count.
        let mut many = image(4, 1, &[C::Fill(1, 1)]);
        many[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            read_all(&many),
            Err(SparseError::Truncated {
                what: "chunk header",
                offset: 44
            })
        ));
        let unknown = image(
            4,
            1,
            &[C::Bad {
                ty: 0x1234,
                chunk_sz: 1,
                total_sz: 12,
                data: vec![],
            }],
        );
        assert!(matches!(
            read_all(&unknown),
            Err(SparseError::UnknownChunkType {
                chunk_type: 0x1234,
                ..
            })
        ));
    }
}
