//! A chunk plan: what a sparse image of a source file will contain, as references into that
//! file (never its data), built from an existing sparse file or by scanning a raw one the way
//! the AOSP fastboot client does before it resparses an image too big to download at once.

use std::io::{self, Read, Seek, SeekFrom};

use super::error::SparseError;
use super::format::{is_sparse, CHUNK_HEADER_LEN, DEFAULT_BLOCK_SIZE};
use super::index::{ChunkTable, RegionData};

/// Where a planned chunk's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedData {
    /// `len` bytes of the source file from this offset.
    Raw { source_offset: u64 },
    /// The little-endian `value` repeated.
    Fill { value: u32 },
}

/// One data-carrying run of blocks. Blocks no chunk covers become DONT_CARE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedChunk {
    pub start_block: u32,
    /// Bytes covered: whole blocks, except a RAW chunk ending a raw image whose length is not
    /// a multiple of the block size (zero-padded when written, as libsparse does).
    pub len: u64,
    pub data: PlannedData,
}

impl PlannedChunk {
    pub fn blocks(&self, block_size: u32) -> u64 {
        self.len.div_ceil(u64::from(block_size))
    }

    /// Bytes this chunk takes in a sparse image (header included).
    pub fn encoded_len(&self, block_size: u32) -> u64 {
        CHUNK_HEADER_LEN as u64
            + match self.data {
                PlannedData::Raw { .. } => self.blocks(block_size) * u64::from(block_size),
                PlannedData::Fill { .. } => 4,
            }
    }

    /// Splits after `bytes` (a whole number of blocks, less than `len`).
    pub(crate) fn split_at(&self, bytes: u64, block_size: u32) -> (PlannedChunk, PlannedChunk) {
        let first = PlannedChunk {
            len: bytes,
            ..*self
        };
        let data = match self.data {
            PlannedData::Raw { source_offset } => PlannedData::Raw {
                source_offset: source_offset + bytes,
            },
            fill => fill,
        };
        let rest = PlannedChunk {
            start_block: self.start_block + (bytes / u64::from(block_size)) as u32,
            len: self.len - bytes,
            data,
        };
        (first, rest)
    }
}

/// The chunks of one image in block order, referencing a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    block_size: u32,
    image_len: u64,
    chunks: Vec<PlannedChunk>,
}

/// Largest run one chunk carries. libsparse keeps a run's length in 32 bits (and so do many
/// bootloaders' sparse handlers), so longer runs are cut into several chunks here, where
/// libsparse would overflow.
fn max_chunk_bytes(block_size: u32) -> u64 {
    let limit = u64::from(u32::MAX) - CHUNK_HEADER_LEN as u64;
    // At least one block, or a (FILL-only) image with giant blocks could never progress.
    (limit - limit % u64::from(block_size)).max(u64::from(block_size))
}

/// Largest image a plan accepts: 16 TiB, what 2^32 blocks of 4096 bytes address. It also
/// bounds the chunks [`max_chunk_bytes`] cuts add (a chunk carries at least 2 GiB, so at most
/// 8192 cuts), so a tiny hostile file declaring an exabyte FILL cannot make a huge plan.
pub const MAX_PLAN_IMAGE_LEN: u64 = 1 << 44;

impl ChunkPlan {
    /// An empty plan for an image of `image_len` bytes (all DONT_CARE until chunks are added).
    pub fn new(block_size: u32, image_len: u64) -> Result<Self, SparseError> {
        if block_size == 0 || block_size & 3 != 0 {
            return Err(SparseError::BadBlockSize { found: block_size });
        }
        if image_len > MAX_PLAN_IMAGE_LEN
            || image_len.div_ceil(u64::from(block_size)) > u64::from(u32::MAX)
        {
            return Err(SparseError::ImageTooLarge {
                len: image_len,
                block_size,
            });
        }
        Ok(ChunkPlan {
            block_size,
            image_len,
            chunks: Vec::new(),
        })
    }

    /// Sparse source if it starts with the sparse magic (its errors are reported, never
    /// retried as raw), raw source otherwise. Like the fastboot client's
    /// `sparse_file_import_auto`, minus its silent fallback to raw on a corrupt sparse file.
    pub fn open<R: Read + Seek>(source: &mut R) -> Result<Self, SparseError> {
        let mut head = [0u8; 4];
        source
            .seek(SeekFrom::Start(0))
            .map_err(SparseError::io("seeking to the image start"))?;
        let mut got = 0;
        while got < head.len() {
            match source.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SparseError::Io {
                        doing: "reading the image's first bytes",
                        source,
                    })
                }
            }
        }
        if is_sparse(&head[..got]) {
            Self::from_sparse(source)
        } else {
            Self::scan_raw(source)
        }
    }

    /// The plan of an existing sparse file: RAW chunks point at their data in the file,
    /// DONT_CARE become gaps, CRC32 chunks are dropped, adjacent FILL chunks of one value
    /// merge (what libsparse's import does).
    pub fn from_sparse<R: Read + Seek>(source: &mut R) -> Result<Self, SparseError> {
        let table = ChunkTable::scan(source)?;
        Self::from_table(&table)
    }

    pub fn from_table(table: &ChunkTable) -> Result<Self, SparseError> {
        let block_size = table.header.blk_sz;
        let mut plan = ChunkPlan::new(block_size, table.header.expanded_len())?;
        for region in &table.regions {
            let data = match region.data {
                RegionData::Raw { file_offset } => PlannedData::Raw {
                    source_offset: file_offset,
                },
                RegionData::Fill { value } => PlannedData::Fill { value },
            };
            plan.push(
                region.start_block,
                u64::from(region.blocks) * u64::from(block_size),
                data,
            );
        }
        Ok(plan)
    }

    /// Scans a raw image file (whole, from offset 0) in 4096-byte blocks.
    pub fn scan_raw<R: Read + Seek>(source: &mut R) -> Result<Self, SparseError> {
        let len = source
            .seek(SeekFrom::End(0))
            .map_err(SparseError::io("finding the image's length"))?;
        source
            .seek(SeekFrom::Start(0))
            .map_err(SparseError::io("seeking to the image start"))?;
        Self::scan_raw_stream(source, len, DEFAULT_BLOCK_SIZE, &mut |_| {})
    }

    /// Scans `len` bytes of a raw image from `source` (offsets in the plan count from where
    /// `source` is now) as libsparse's `sparse_file_read_normal` does: a whole block that is
    /// one 32-bit word repeated becomes FILL (zeros included: AOSP's client sends no
    /// DONT_CARE for a raw image), any other block RAW; a partial last block is always RAW.
    /// Adjacent blocks of the same kind merge. `observe` sees every byte once, in order (hash
    /// the image while it is scanned).
    pub fn scan_raw_stream<R: Read + ?Sized>(
        source: &mut R,
        len: u64,
        block_size: u32,
        observe: &mut dyn FnMut(&[u8]),
    ) -> Result<Self, SparseError> {
        let mut plan = ChunkPlan::new(block_size, len)?;
        let blk = block_size as usize;
        // Whole blocks per read; one block if blocks are larger than the buffer bound.
        let buf_len = (super::expand::COPY_BUF_LEN / blk).max(1) * blk;
        let buf_len = buf_len
            .min(usize::try_from(len).unwrap_or(usize::MAX))
            .max(1);
        let mut buf = vec![0u8; buf_len];
        let mut offset = 0u64;
        while offset < len {
            let want = buf
                .len()
                .min(usize::try_from(len - offset).unwrap_or(usize::MAX));
            fill_exact(source, &mut buf[..want], offset)?;
            observe(&buf[..want]);
            for (i, block) in buf[..want].chunks(blk).enumerate() {
                let at = offset + (i * blk) as u64;
                let block_no = (at / u64::from(block_size)) as u32; // < total blocks, checked in new()
                let data = match repeated_word(block, blk) {
                    Some(value) => PlannedData::Fill { value },
                    None => PlannedData::Raw { source_offset: at },
                };
                plan.push(block_no, block.len() as u64, data);
            }
            offset += want as u64;
        }
        Ok(plan)
    }

    /// Appends a run, merging it into the previous chunk when libsparse would (same kind,
    /// adjacent blocks, contiguous source bytes, same fill value), up to the chunk size limit.
    pub(crate) fn push(&mut self, start_block: u32, mut len: u64, mut data: PlannedData) {
        let blk = u64::from(self.block_size);
        let cap = max_chunk_bytes(self.block_size);
        let mut start = start_block;
        if let Some(last) = self.chunks.last_mut() {
            let adjacent = last.len % blk == 0
                && u64::from(last.start_block) + last.len / blk == u64::from(start);
            let same = match (last.data, data) {
                (PlannedData::Fill { value: a }, PlannedData::Fill { value: b }) => a == b,
                (PlannedData::Raw { source_offset: a }, PlannedData::Raw { source_offset: b }) => {
                    a + last.len == b
                }
                _ => false,
            };
            if adjacent && same && last.len < cap {
                let take = len.min(cap - last.len);
                last.len += take;
                len -= take;
                start += (take / blk) as u32;
                if let PlannedData::Raw { source_offset } = &mut data {
                    *source_offset += take;
                }
            }
        }
        while len > 0 {
            let take = len.min(cap);
            self.chunks.push(PlannedChunk {
                start_block: start,
                len: take,
                data,
            });
            len -= take;
            start += (take / blk) as u32;
            if let PlannedData::Raw { source_offset } = &mut data {
                *source_offset += take;
            }
        }
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Bytes of the image (a raw image's own length; may end inside a block).
    pub fn image_len(&self) -> u64 {
        self.image_len
    }

    /// Blocks the sparse image declares (`total_blks`): the image length rounded up.
    pub fn total_blocks(&self) -> u32 {
        // Checked against u32 in new() / guaranteed by a parsed header.
        self.image_len.div_ceil(u64::from(self.block_size)) as u32
    }

    pub fn chunks(&self) -> &[PlannedChunk] {
        &self.chunks
    }

    /// Size of the whole plan written as one sparse image.
    pub fn encoded_len(&self) -> u64 {
        self.whole().encoded_len()
    }

    /// The whole plan as one sparse image (no size limit).
    pub fn whole(&self) -> super::split::Piece {
        super::split::Piece::from_chunks(self.block_size, self.total_blocks(), &self.chunks)
    }
}

/// `Some(word)` if the block is one little-endian 32-bit word repeated (a whole block only).
fn repeated_word(block: &[u8], block_size: usize) -> Option<u32> {
    if block.len() != block_size || block.len() < 4 {
        return None;
    }
    // Equal to itself shifted by one word <=> every word equals the first (memcmp-fast).
    if block[4..] == block[..block.len() - 4] {
        Some(u32::from_le_bytes([block[0], block[1], block[2], block[3]]))
    } else {
        None
    }
}

fn fill_exact<R: Read + ?Sized>(
    source: &mut R,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), SparseError> {
    let mut got = 0;
    while got < buf.len() {
        match source.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(SparseError::SourceTruncated {
                    doing: "scanning the raw image",
                    offset: offset + got as u64,
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(SparseError::Io {
                    doing: "reading the raw image",
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::{image, noise, C};
    use std::io::Cursor;

    fn fill(start_block: u32, len: u64, value: u32) -> PlannedChunk {
        PlannedChunk {
            start_block,
            len,
            data: PlannedData::Fill { value },
        }
    }
    fn raw(start_block: u32, len: u64, source_offset: u64) -> PlannedChunk {
        PlannedChunk {
            start_block,
            len,
            data: PlannedData::Raw { source_offset },
        }
    }

    #[test]
    fn scans_raw_blocks_like_libsparse() {
        let mut img = vec![0u8; 2 * 16]; // 2 zero blocks
        img.extend(noise(1, 16)); // raw
        img.extend([9, 0, 0, 0].repeat(4)); // fill 9
        img.extend([9, 0, 0, 0].repeat(4)); // fill 9 again: merges
        let mut almost = [1u8, 2, 3, 4].repeat(4);
        almost[15] = 0;
        img.extend(&almost); // raw
        img.extend(noise(2, 16)); // raw, contiguous: merges
        img.extend([0u8; 8]); // partial last block: raw even though it repeats
        let plan =
            ChunkPlan::scan_raw_stream(&mut &img[..], img.len() as u64, 16, &mut |_| {}).unwrap();
        assert_eq!(plan.total_blocks(), 8);
        assert_eq!(plan.image_len(), 120);
        // The partial block is contiguous with the RAW run before it: they merge.
        assert_eq!(
            plan.chunks(),
            &[
                fill(0, 32, 0),
                raw(2, 16, 32),
                fill(3, 32, 9),
                raw(5, 40, 80)
            ][..]
        );
        // Sizes: a fill is 16 bytes, raw is header + padded blocks.
        assert_eq!(plan.encoded_len(), 28 + 16 + (12 + 16) + 16 + (12 + 48));
    }

    #[test]
    fn observer_sees_every_byte_and_short_sources_are_errors() {
        let img = noise(3, 5000);
        let mut seen = Vec::new();
        ChunkPlan::scan_raw_stream(&mut &img[..], 5000, 4096, &mut |b| {
            seen.extend_from_slice(b)
        })
        .unwrap();
        assert_eq!(seen, img);
        assert!(matches!(
            ChunkPlan::scan_raw_stream(&mut &img[..], 6000, 4096, &mut |_| {}),
            Err(SparseError::SourceTruncated { offset: 5000, .. })
        ));
        assert!(matches!(
            ChunkPlan::new(4096, 1 << 45),
            Err(SparseError::ImageTooLarge { .. })
        ));
        assert!(ChunkPlan::new(6, 10).is_err());
    }

    #[test]
    fn plan_of_a_sparse_file_points_at_its_raw_data() {
        let bytes = image(
            16,
            10,
            &[
                C::Skip(1),
                C::Raw(noise(1, 32)),
                C::Fill(3, 1),
                C::Fill(3, 2),
                C::Crc(0),
                C::Fill(4, 1),
                C::Skip(3),
            ],
        );
        let plan = ChunkPlan::open(&mut Cursor::new(bytes)).unwrap();
        assert_eq!(plan.total_blocks(), 10);
        // Header 28, DONT_CARE 12, RAW header 12 -> data at 52.
        assert_eq!(
            plan.chunks(),
            &[raw(1, 32, 52), fill(3, 48, 3), fill(6, 16, 4)][..]
        );
    }

    #[test]
    fn long_runs_are_cut_at_the_32_bit_limit() {
        let mut plan = ChunkPlan::new(4096, 3 << 32).unwrap();
        plan.push(0, 3 << 32, PlannedData::Fill { value: 0 });
        let cap = 0xFFFF_F000u64;
        assert_eq!(plan.chunks().len(), 4);
        assert_eq!(plan.chunks()[0], fill(0, cap, 0));
        assert_eq!(plan.chunks()[1], fill((cap / 4096) as u32, cap, 0));
        assert_eq!(plan.chunks().iter().map(|c| c.len).sum::<u64>(), 3 << 32);
    }
}
