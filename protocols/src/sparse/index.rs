//! Random access to the expanded image of a sparse file without expanding it: one pass keeps
//! only the table of data-carrying chunks (O(chunks) memory), then reads are served from the
//! RAW chunks' file offsets, FILL patterns and zeros for DONT_CARE.
//!
//! The station opens ext4 `system` images with it (ext4-view needs random access), so a read
//! of an activation client touches only the blocks the filesystem needs.

use std::io::{BufReader, Read, Seek, SeekFrom};

use super::error::{read_exact_or_truncated, SparseError};
use super::format::{ChunkHeader, ChunkType, SparseHeader, CHUNK_HEADER_LEN, FILE_HEADER_LEN};

/// Read-ahead while scanning a chunk table: about 1,300 chunk headers.
const SCAN_BUF_LEN: usize = 16 * 1024;

/// A run of blocks that carries data. Blocks not covered by any region read as zeros
/// (DONT_CARE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start_block: u32,
    pub blocks: u32,
    pub data: RegionData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionData {
    /// Data stored in the sparse file from this offset on.
    Raw { file_offset: u64 },
    /// The little-endian `value` repeated.
    Fill { value: u32 },
}

impl Region {
    fn end_block(&self) -> u64 {
        u64::from(self.start_block) + u64::from(self.blocks)
    }
}

/// The chunk table of one sparse image, validated like [`super::SparseReader`] does (CRC32
/// chunks are not verified here: that needs every RAW byte; [`super::expand`] checks them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkTable {
    pub header: SparseHeader,
    /// Data regions in block order (zero-block and CRC32 chunks dropped, DONT_CARE implicit).
    pub regions: Vec<Region>,
    /// Chunks in the file, CRC32 and DONT_CARE included.
    pub chunks: u32,
}

impl ChunkTable {
    /// Scans `source` from offset 0, seeking over RAW data. Errors if the file is shorter
    /// than its chunks say.
    pub fn scan<R: Read + Seek>(source: &mut R) -> Result<Self, SparseError> {
        let file_len = source
            .seek(SeekFrom::End(0))
            .map_err(SparseError::io("finding the sparse file's length"))?;
        source
            .seek(SeekFrom::Start(0))
            .map_err(SparseError::io("seeking to the sparse header"))?;
        // Small: after each RAW chunk's data is seeked over, the next 12-byte chunk header
        // refills the whole buffer, and flashing scans the table before every download.
        let mut input = BufReader::with_capacity(SCAN_BUF_LEN, source);

        let mut bytes = [0u8; FILE_HEADER_LEN];
        read_exact_or_truncated(&mut input, &mut bytes, "sparse file header", 0)?;
        let header = SparseHeader::parse(&bytes)?;
        let position = u64::from(header.file_hdr_sz);
        skip(
            &mut input,
            position - FILE_HEADER_LEN as u64,
            file_len,
            FILE_HEADER_LEN as u64,
            "sparse file header",
        )?;
        let mut position = position;

        let chunk_extra = u64::from(header.chunk_hdr_sz) - CHUNK_HEADER_LEN as u64;
        // Each chunk takes at least a header in the file: bound the table by the file size
        // rather than trusting total_chunks.
        let plausible =
            (file_len / u64::from(header.chunk_hdr_sz)).min(u64::from(header.total_chunks));
        let mut regions = Vec::with_capacity(usize::try_from(plausible.min(1 << 16)).unwrap_or(0));
        let mut next_block = 0u64;
        for index in 0..header.total_chunks {
            let offset = position;
            let mut raw = [0u8; CHUNK_HEADER_LEN];
            read_exact_or_truncated(&mut input, &mut raw, "chunk header", offset)?;
            skip(
                &mut input,
                chunk_extra,
                file_len,
                offset + CHUNK_HEADER_LEN as u64,
                "chunk header",
            )?;
            let chunk = ChunkHeader::parse(&raw, offset)?;
            let (kind, data_len) = chunk.classify(&header, index, offset)?;
            let data_offset = offset + u64::from(header.chunk_hdr_sz);
            let blocks = if kind == ChunkType::Crc32 {
                0
            } else {
                chunk.chunk_sz
            };
            let end_block = next_block + u64::from(blocks);
            if end_block > u64::from(header.total_blks) {
                return Err(SparseError::ChunkPastEnd {
                    index,
                    offset,
                    end_block,
                    total_blocks: header.total_blks,
                });
            }
            let data = match kind {
                ChunkType::Raw => {
                    skip(
                        &mut input,
                        data_len,
                        file_len,
                        data_offset,
                        "RAW chunk data",
                    )?;
                    Some(RegionData::Raw {
                        file_offset: data_offset,
                    })
                }
                ChunkType::Fill => {
                    let mut v = [0u8; 4];
                    read_exact_or_truncated(&mut input, &mut v, "FILL value", data_offset)?;
                    Some(RegionData::Fill {
                        value: u32::from_le_bytes(v),
                    })
                }
                ChunkType::Crc32 => {
                    skip(&mut input, 4, file_len, data_offset, "CRC32 value")?;
                    None
                }
                ChunkType::DontCare => None,
            };
            if let (Some(data), true) = (data, blocks > 0) {
                // next_block < end_block <= total_blks: fits u32.
                regions.push(Region {
                    start_block: next_block as u32,
                    blocks,
                    data,
                });
            }
            position = data_offset + data_len;
            next_block = end_block;
        }
        if next_block != u64::from(header.total_blks) {
            return Err(SparseError::BlockCountMismatch {
                declared: header.total_blks,
                found: next_block,
            });
        }
        Ok(ChunkTable {
            header,
            regions,
            chunks: header.total_chunks,
        })
    }
}

fn skip<R: Read + Seek>(
    input: &mut BufReader<R>,
    len: u64,
    file_len: u64,
    offset: u64,
    what: &'static str,
) -> Result<(), SparseError> {
    if len == 0 {
        return Ok(());
    }
    if offset.saturating_add(len) > file_len {
        return Err(SparseError::Truncated { what, offset });
    }
    let step = i64::try_from(len).map_err(|_| SparseError::Truncated { what, offset })?;
    input
        .seek_relative(step)
        .map_err(SparseError::io("seeking over chunk data"))
}

/// Random-access reader over the expanded image of a sparse file.
///
/// ```no_run
/// # fn main() -> Result<(), flashgate_protocols::sparse::SparseError> {
/// use flashgate_protocols::sparse::SparseIndex;
/// let file = std::fs::File::open("system.img").unwrap();
/// let mut image = SparseIndex::build(file)?;
/// let mut superblock = [0u8; 1024];
/// image.read_at(1024, &mut superblock)?;
/// # Ok(()) }
/// ```
pub struct SparseIndex<R> {
    source: R,
    table: ChunkTable,
}

impl<R: Read + Seek> SparseIndex<R> {
    /// One pass over `source` (from offset 0) to build the chunk table.
    pub fn build(mut source: R) -> Result<Self, SparseError> {
        let table = ChunkTable::scan(&mut source)?;
        Ok(SparseIndex { source, table })
    }

    /// Bytes of the expanded image.
    pub fn expanded_len(&self) -> u64 {
        self.table.header.expanded_len()
    }

    pub fn header(&self) -> &SparseHeader {
        &self.table.header
    }

    pub fn table(&self) -> &ChunkTable {
        &self.table
    }

    pub fn into_inner(self) -> R {
        self.source
    }

    /// Fills `buf` with the expanded image's bytes from `offset`. The whole range must lie
    /// inside the image.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), SparseError> {
        let image_len = self.expanded_len();
        let len = buf.len() as u64;
        if !matches!(offset.checked_add(len), Some(end) if end <= image_len) {
            return Err(SparseError::OutOfRange {
                offset,
                len,
                image_len,
            });
        }
        let blk = u64::from(self.table.header.blk_sz);
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let left = buf.len() - done;
            let block = pos / blk;
            let i = self
                .table
                .regions
                .partition_point(|r| r.end_block() <= block);
            let dst_len;
            match self.table.regions.get(i) {
                Some(r) if u64::from(r.start_block) <= block => {
                    let start = u64::from(r.start_block) * blk;
                    let in_region = pos - start;
                    let avail = r.end_block() * blk - pos;
                    dst_len = left.min(usize::try_from(avail).unwrap_or(usize::MAX));
                    let dst = &mut buf[done..done + dst_len];
                    match r.data {
                        RegionData::Raw { file_offset } => {
                            let at = file_offset + in_region;
                            self.source
                                .seek(SeekFrom::Start(at))
                                .map_err(SparseError::io("seeking in the sparse file"))?;
                            read_exact_or_truncated(&mut self.source, dst, "RAW chunk data", at)?;
                        }
                        RegionData::Fill { value } => {
                            let pattern = value.to_le_bytes();
                            let phase = (in_region % 4) as usize;
                            for (k, b) in dst.iter_mut().enumerate() {
                                *b = pattern[(phase + k) % 4];
                            }
                        }
                    }
                }
                next => {
                    let hole_end = next.map_or(image_len, |r| u64::from(r.start_block) * blk);
                    dst_len = left.min(usize::try_from(hole_end - pos).unwrap_or(usize::MAX));
                    buf[done..done + dst_len].fill(0);
                }
            }
            done += dst_len;
        }
        Ok(())
    }
}

/// The station boxes our errors into ext4-view's `Box<dyn Error + Send + Sync>` and moves an
/// index into a blocking task: keep both possible.
const _: () = {
    const fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<SparseError>();
    send_sync::<SparseIndex<std::fs::File>>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::{expanded, image, noise, C};
    use std::io::Cursor;

    #[test]
    fn every_read_matches_the_expanded_bytes() {
        let chunks = [
            C::Skip(2),
            C::Raw(noise(7, 3 * 64)),
            C::Fill(0xa1b2c3d4, 2),
            C::Crc(0),
            C::Raw(noise(8, 64)),
            C::Skip(1),
            C::Fill(0, 1),
        ];
        let bytes = image(64, 10, &chunks);
        let want = expanded(64, &chunks);
        let mut index = SparseIndex::build(Cursor::new(bytes)).unwrap();
        assert_eq!(index.expanded_len(), want.len() as u64);
        assert_eq!(index.table().regions.len(), 4);
        assert_eq!(index.table().chunks, 7);
        for start in (0..want.len()).step_by(13) {
            for len in [0, 1, 3, 64, 65, 200, want.len() - start] {
                let len = len.min(want.len() - start);
                let mut buf = vec![0x55; len];
                index.read_at(start as u64, &mut buf).unwrap();
                assert_eq!(buf, want[start..start + len], "at {start} len {len}");
            }
        }
        let mut buf = [0u8; 2];
        assert!(matches!(
            index.read_at(want.len() as u64 - 1, &mut buf),
            Err(SparseError::OutOfRange { .. })
        ));
        assert!(index.read_at(u64::MAX, &mut buf).is_err());
    }

    #[test]
    fn a_longer_file_header_that_ends_the_file_is_accepted() {
        // Found by the `sparse` fuzz target: the skipped header bytes were bounds-checked from
        // their end instead of their start, so the index refused what the stream reader took.
        let mut header = SparseHeader::new(64, 0, 0);
        header.file_hdr_sz = 59;
        let mut bytes = header.encode().to_vec();
        bytes.resize(59, 0xee);
        let index = SparseIndex::build(Cursor::new(&bytes)).unwrap();
        assert_eq!(index.expanded_len(), 0);
        bytes.pop();
        assert!(matches!(
            SparseIndex::build(Cursor::new(&bytes)),
            Err(SparseError::Truncated {
                what: "sparse file header",
                offset: 28
            })
        ));
    }

    #[test]
    fn a_file_shorter_than_its_chunks_is_refused() {
        let mut bytes = image(4096, 2, &[C::Raw(noise(1, 8192))]);
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            SparseIndex::build(Cursor::new(bytes)),
            Err(SparseError::Truncated {
                what: "RAW chunk data",
                offset: 40
            })
        ));
        let bytes = image(4096, 3, &[C::Fill(1, 2)]);
        assert!(matches!(
            SparseIndex::build(Cursor::new(bytes)),
            Err(SparseError::BlockCountMismatch {
                declared: 3,
                found: 2
            })
        ));
    }
}
