//! Splitting a chunk plan into sparse images no larger than a device's download limit, the way
//! libsparse's `sparse_file_resparse` does for the AOSP fastboot client, so a device sees the
//! same pieces from us as from `fastboot flash`.
//!
//! Every piece is a complete sparse image declaring the WHOLE image's `total_blks`; the ranges
//! other pieces carry are DONT_CARE. A device expands each piece over the same partition in
//! turn and ends with the whole image.

use std::io::{Read, Seek, SeekFrom, Write};

use super::error::SparseError;
use super::format::{SparseHeader, CHUNK_HEADER_LEN, FILE_HEADER_LEN};
use super::plan::{ChunkPlan, PlannedChunk, PlannedData};
use super::writer::SparseWriter;

/// What libsparse reserves in each piece before filling it: the file header, a leading and a
/// trailing DONT_CARE chunk header, and a CRC32 value.
const PIECE_OVERHEAD: u64 = (FILE_HEADER_LEN + 2 * CHUNK_HEADER_LEN + 4) as u64;

/// Smallest limit that lets every piece carry at least one block.
pub fn min_piece_bytes(block_size: u32) -> u64 {
    PIECE_OVERHEAD + CHUNK_HEADER_LEN as u64 + u64::from(block_size)
}

/// How [`Piece`] moves one RAW chunk's data: (writer, source at the data, length).
type RawCopy<'a, W, S> =
    dyn FnMut(&mut SparseWriter<&mut W>, &mut S, u64) -> Result<(), SparseError> + 'a;

/// One chunk of a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceChunk {
    pub start_block: u32,
    pub blocks: u32,
    pub data: PieceData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceData {
    /// `len` bytes of the source from `source_offset`, zero-padded to `blocks` blocks.
    Raw {
        source_offset: u64,
        len: u64,
    },
    Fill {
        value: u32,
    },
    DontCare,
}

/// A complete sparse image that references its source file for RAW data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    block_size: u32,
    total_blocks: u32,
    chunks: Vec<PieceChunk>,
}

impl Piece {
    /// The image of `planned` (in block order, inside `total_blocks`) with DONT_CARE chunks for
    /// the blocks before, between and after them — as libsparse writes a sparse file.
    pub(crate) fn from_chunks(
        block_size: u32,
        total_blocks: u32,
        planned: &[PlannedChunk],
    ) -> Piece {
        let mut chunks = Vec::with_capacity(planned.len() * 2 + 1);
        let mut cursor = 0u32;
        for c in planned {
            if c.start_block > cursor {
                chunks.push(PieceChunk {
                    start_block: cursor,
                    blocks: c.start_block - cursor,
                    data: PieceData::DontCare,
                });
            }
            // A plan's chunks lie inside the image, whose block count is a u32.
            let blocks = c.blocks(block_size) as u32;
            let data = match c.data {
                PlannedData::Raw { source_offset } => PieceData::Raw {
                    source_offset,
                    len: c.len,
                },
                PlannedData::Fill { value } => PieceData::Fill { value },
            };
            chunks.push(PieceChunk {
                start_block: c.start_block,
                blocks,
                data,
            });
            cursor = c.start_block + blocks;
        }
        if cursor < total_blocks {
            chunks.push(PieceChunk {
                start_block: cursor,
                blocks: total_blocks - cursor,
                data: PieceData::DontCare,
            });
        }
        Piece {
            block_size,
            total_blocks,
            chunks,
        }
    }

    pub fn chunks(&self) -> &[PieceChunk] {
        &self.chunks
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// The header this piece is written with (`total_blks` of the whole image).
    pub fn header(&self) -> SparseHeader {
        SparseHeader::new(self.block_size, self.total_blocks, self.chunks.len() as u32)
    }

    /// Exact size of the piece as written (what `download:` announces).
    pub fn encoded_len(&self) -> u64 {
        let blk = u64::from(self.block_size);
        FILE_HEADER_LEN as u64
            + self
                .chunks
                .iter()
                .map(|c| {
                    CHUNK_HEADER_LEN as u64
                        + match c.data {
                            PieceData::Raw { .. } => u64::from(c.blocks) * blk,
                            PieceData::Fill { .. } => 4,
                            PieceData::DontCare => 0,
                        }
                })
                .sum::<u64>()
    }

    /// Bytes of the image this piece writes on the device (RAW and FILL blocks).
    pub fn data_bytes(&self) -> u64 {
        self.chunks
            .iter()
            .filter(|c| c.data != PieceData::DontCare)
            .map(|c| u64::from(c.blocks) * u64::from(self.block_size))
            .sum()
    }

    /// Streams the piece to `out`, reading RAW data from `source` (the file the plan was made
    /// from) through a bounded buffer. Returns the bytes written (= `encoded_len()`).
    pub fn write_to<S: Read + Seek + ?Sized, W: Write + ?Sized>(
        &self,
        source: &mut S,
        out: &mut W,
    ) -> Result<u64, SparseError> {
        self.write_chunks(source, out, &mut |w, source, len| {
            w.write_raw_from(source, len)
        })
    }

    /// Like [`Piece::write_to`], but the RAW data of each chunk is moved by `copy(out, source,
    /// len)` with `source` positioned at the data: for an output that reads straight into its
    /// own buffer (see [`SparseWriter::write_raw_by`]). `copy` must write exactly `len` bytes.
    pub fn write_via<S, W, F>(
        &self,
        source: &mut S,
        out: &mut W,
        mut copy: F,
    ) -> Result<u64, SparseError>
    where
        S: Read + Seek + ?Sized,
        W: Write + ?Sized,
        F: FnMut(&mut W, &mut S, u64) -> Result<(), SparseError>,
    {
        self.write_chunks(source, out, &mut |w, source, len| {
            w.write_raw_by(len, |out, len| copy(&mut **out, source, len))
        })
    }

    fn write_chunks<S: Read + Seek + ?Sized, W: Write + ?Sized>(
        &self,
        source: &mut S,
        out: &mut W,
        raw: &mut RawCopy<'_, W, S>,
    ) -> Result<u64, SparseError> {
        let mut w = SparseWriter::new(
            &mut *out,
            self.block_size,
            self.total_blocks,
            self.chunks.len() as u32,
        )?;
        for c in &self.chunks {
            match c.data {
                PieceData::Raw { source_offset, len } => {
                    source
                        .seek(SeekFrom::Start(source_offset))
                        .map_err(SparseError::io("seeking in the source image"))?;
                    raw(&mut w, &mut *source, len).map_err(|e| match e {
                        SparseError::SourceTruncated { doing, offset } => {
                            SparseError::SourceTruncated {
                                doing,
                                offset: source_offset + offset,
                            }
                        }
                        other => other,
                    })?;
                }
                PieceData::Fill { value } => w.write_fill(value, c.blocks)?,
                PieceData::DontCare => w.write_dont_care(c.blocks)?,
            }
        }
        let written = w.bytes_written();
        w.finish()?;
        Ok(written)
    }
}

/// Splits `plan` into pieces of at most `max_piece_bytes` each, choosing the same cut points
/// as libsparse's `move_chunks_up_to_len`: a piece takes chunks while they fit in the limit
/// less [`PIECE_OVERHEAD`]; the chunk that does not fit is cut (RAW data and FILL runs alike,
/// at a block boundary) when the piece is still empty or more than 1/8 of the budget is left,
/// otherwise it starts the next piece.
///
/// Where libsparse misbehaves we do not follow it: it can overrun the limit when the room
/// left is under one chunk header, emits zero-block chunks for limits under ~8 blocks, and
/// writes an invalid trailing DONT_CARE when the image length is not a multiple of the block
/// size. A plan that fits whole gives one piece equal to [`ChunkPlan::whole`].
pub fn split(plan: &ChunkPlan, max_piece_bytes: u64) -> Result<Vec<Piece>, SparseError> {
    let block_size = plan.block_size();
    let blk = u64::from(block_size);
    let min = min_piece_bytes(block_size);
    if max_piece_bytes < min {
        return Err(SparseError::PieceLimitTooSmall {
            max: max_piece_bytes,
            min,
        });
    }
    let budget = max_piece_bytes - PIECE_OVERHEAD;
    let total_blocks = plan.total_blocks();
    let mut source = plan.chunks().iter().copied();
    let mut carried: Option<PlannedChunk> = None;
    let mut pieces = Vec::new();
    loop {
        let mut taken: Vec<PlannedChunk> = Vec::new();
        let mut used = 0u64;
        let mut last_block = 0u64;
        let mut overflowed = false;
        while let Some(chunk) = carried.take().or_else(|| source.next()) {
            let gap = if u64::from(chunk.start_block) > last_block {
                CHUNK_HEADER_LEN as u64
            } else {
                0
            };
            let cost = gap + chunk.encoded_len(block_size);
            last_block = u64::from(chunk.start_block) + chunk.blocks(block_size);
            if used + cost <= budget {
                used += cost;
                taken.push(chunk);
                continue;
            }
            overflowed = true;
            used += CHUNK_HEADER_LEN as u64;
            // The 1/8 rule looks at the room before it is rounded down to whole blocks.
            match budget.checked_sub(used) {
                Some(left) if taken.is_empty() || left > budget / 8 => {
                    let room = left - left % blk;
                    if chunk.len <= room {
                        taken.push(chunk);
                    } else if room > 0 {
                        let (head, tail) = chunk.split_at(room, block_size);
                        taken.push(head);
                        carried = Some(tail);
                    } else {
                        carried = Some(chunk);
                    }
                }
                _ => carried = Some(chunk),
            }
            break;
        }
        pieces.push(Piece::from_chunks(block_size, total_blocks, &taken));
        // libsparse starts another piece after any overflow, even when the cut chunk turned
        // out to fit whole and nothing is left (that piece is all DONT_CARE). Matching it keeps
        // our pieces identical to the fastboot client's.
        if !overflowed {
            return Ok(pieces);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::noise;
    use crate::sparse::{expand, SparseReader};
    use std::io::Cursor;

    fn raw_plan(img: &[u8], blk: u32) -> ChunkPlan {
        ChunkPlan::scan_raw_stream(&mut &img[..], img.len() as u64, blk, &mut |_| {}).unwrap()
    }

    /// Expand each piece over one buffer, as a device does, and return the result.
    fn apply(pieces: &[Piece], source: &[u8], len: usize) -> Vec<u8> {
        let mut target = Cursor::new(vec![0xeeu8; len]);
        for p in pieces {
            let mut bytes = Vec::new();
            let n = p.write_to(&mut Cursor::new(source), &mut bytes).unwrap();
            assert_eq!(n, bytes.len() as u64);
            assert_eq!(p.encoded_len(), bytes.len() as u64);
            target.set_position(0);
            expand(&bytes[..], &mut target).unwrap();
        }
        target.into_inner()
    }

    #[test]
    fn write_via_lets_the_output_copy_raw_data_and_matches_write_to() {
        let img = [
            noise(3, 4096 * 6 + 100),
            vec![0; 4096 * 4],
            noise(4, 4096 * 3),
        ]
        .concat();
        let plan = raw_plan(&img, 4096);
        for piece in split(&plan, PIECE_OVERHEAD + 12 * 4 + 5 * 4096).unwrap() {
            let mut expected = Vec::new();
            piece
                .write_to(&mut Cursor::new(&img), &mut expected)
                .unwrap();
            let mut out = Vec::new();
            let mut copied = Vec::new();
            let n = piece
                .write_via(&mut Cursor::new(&img), &mut out, |out, source, len| {
                    copied.push(len);
                    std::io::copy(&mut source.take(len), out)
                        .map(drop)
                        .map_err(SparseError::io("test copy"))
                })
                .unwrap();
            assert_eq!((n, &out), (expected.len() as u64, &expected));
            let raw_lens: Vec<u64> = piece
                .chunks()
                .iter()
                .filter_map(|c| match c.data {
                    PieceData::Raw { len, .. } => Some(len),
                    _ => None,
                })
                .collect();
            assert_eq!(copied, raw_lens);
        }
    }

    #[test]
    fn a_plan_that_fits_is_one_piece() {
        let img = [noise(1, 4096 * 3), vec![0; 4096 * 5]].concat();
        let plan = raw_plan(&img, 4096);
        let pieces = split(&plan, 1 << 20).unwrap();
        assert_eq!(pieces, vec![plan.whole()]);
        assert_eq!(pieces[0].encoded_len(), 28 + 12 + 3 * 4096 + 16);
    }

    #[test]
    fn raw_data_is_cut_with_libsparse_accounting() {
        // 10 random blocks then 10 zero blocks, limit: 56 overhead + room for 4 blocks + headers.
        let img = [noise(2, 4096 * 10), vec![0; 4096 * 10]].concat();
        let plan = raw_plan(&img, 4096);
        let max = PIECE_OVERHEAD + 12 + 4 * 4096 + 100;
        let pieces = split(&plan, max).unwrap();
        let kinds: Vec<Vec<(u32, u32, &str)>> = pieces
            .iter()
            .map(|p| {
                p.chunks()
                    .iter()
                    .map(|c| {
                        let k = match c.data {
                            PieceData::Raw { .. } => "raw",
                            PieceData::Fill { .. } => "fill",
                            PieceData::DontCare => "skip",
                        };
                        (c.start_block, c.blocks, k)
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                vec![(0, 4, "raw"), (4, 16, "skip")],
                vec![(0, 4, "skip"), (4, 4, "raw"), (8, 12, "skip")],
                // 2 raw blocks left (12+8192) + the fill (16) fit in the budget.
                vec![(0, 8, "skip"), (8, 2, "raw"), (10, 10, "fill")],
            ]
        );
        for p in &pieces {
            assert!(p.encoded_len() <= max);
            assert_eq!(p.header().total_blks, 20);
        }
        assert_eq!(apply(&pieces, &img, img.len()), img);
    }

    #[test]
    fn every_piece_fits_and_together_they_rebuild_the_image() {
        // Many shapes of image and limit; a partial last block included.
        for seed in 0..40u64 {
            let blk = [16u32, 64, 4096][seed as usize % 3];
            let b = blk as usize;
            let mut img = Vec::new();
            let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
            for _ in 0..(5 + seed % 20) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let n = 1 + (x % 9) as usize;
                match x % 3 {
                    0 => img.extend(noise(x, n * b)),
                    1 => img.resize(img.len() + n * b, 0),
                    _ => img.extend([(x >> 32) as u8, 1, 2, 3].repeat(n * b / 4)),
                }
            }
            img.extend(noise(seed, (seed as usize * 7) % b));
            let plan = raw_plan(&img, blk);
            let total = plan.total_blocks() as usize * b;
            let whole = plan.encoded_len();
            for max in [
                min_piece_bytes(blk),
                min_piece_bytes(blk) + 3 * u64::from(blk) + 7,
                whole / 2 + 1,
                whole,
            ] {
                let max = max.max(min_piece_bytes(blk));
                let pieces = split(&plan, max).unwrap();
                for p in &pieces {
                    assert!(
                        p.encoded_len() <= max,
                        "seed {seed} max {max}: piece of {}",
                        p.encoded_len()
                    );
                    let mut bytes = Vec::new();
                    p.write_to(&mut Cursor::new(&img[..]), &mut bytes).unwrap();
                    let mut r = SparseReader::new(&bytes[..]).unwrap();
                    while r.next_chunk().unwrap().is_some() {}
                }
                let mut want = img.clone();
                want.resize(total, 0);
                assert!(apply(&pieces, &img, total) == want, "seed {seed} max {max}");
            }
        }
    }

    #[test]
    fn limits_below_one_block_are_refused() {
        let plan = raw_plan(&noise(1, 8192), 4096);
        assert!(matches!(
            split(&plan, 4096),
            Err(SparseError::PieceLimitTooSmall {
                max: 4096,
                min: 4164
            })
        ));
        // One block per piece; the second piece's block follows a gap, so it overflows the
        // budget by its DONT_CARE header, is taken whole anyway, and libsparse then emits a
        // third, all-DONT_CARE piece. We match it.
        let pieces = split(&plan, 4164).unwrap();
        assert_eq!(pieces.len(), 3);
        assert_eq!(
            pieces[2].chunks(),
            &[PieceChunk {
                start_block: 0,
                blocks: 2,
                data: PieceData::DontCare
            }][..]
        );
    }

    #[test]
    fn a_truncated_source_is_reported_with_its_offset() {
        let img = noise(1, 8192);
        let plan = raw_plan(&img, 4096);
        let err = plan
            .whole()
            .write_to(&mut Cursor::new(&img[..5000]), &mut Vec::new())
            .unwrap_err();
        assert!(
            matches!(err, SparseError::SourceTruncated { offset: 5000, .. }),
            "{err}"
        );
    }
}
