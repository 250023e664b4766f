//! The Android sparse image format (AOSP `libsparse`), as the fastboot client, the simulated
//! phone, Firehose and the station use it.
//!
//! # Public API (other modules build on these names)
//! - Codec ([`format`]): [`MAGIC`], [`CHUNK_TYPE_RAW`] / [`CHUNK_TYPE_FILL`] /
//!   [`CHUNK_TYPE_DONT_CARE`] / [`CHUNK_TYPE_CRC32`], [`SparseHeader::parse`] (full
//!   validation) / [`SparseHeader::encode`], [`ChunkHeader::parse`] / [`ChunkHeader::classify`]
//!   (size-vs-type check) / [`ChunkHeader::encode`], [`is_sparse`] (sniff the first bytes).
//! - Errors: [`SparseError`]; content errors name the chunk index and its file offset.
//! - Streaming read: [`SparseReader`] (`next_chunk()` → [`Chunk`] with [`ChunkKind`]; RAW data
//!   via `read_raw(&mut buf)` or `raw_data()` as `io::Read`), [`expand`] into any
//!   `Write + Seek` (DONT_CARE = seek, keeps what was there), [`expand_reader`] (check
//!   `reader.header()` / `expanded_len()` first, e.g. against a partition size),
//!   [`expand_to_file`] (also sets the file length). CRC32 chunks are verified.
//! - Random access: [`SparseIndex::build`]`(Read + Seek)` → `read_at(&mut self, offset: u64,
//!   buf: &mut [u8]) -> Result<(), SparseError>`, `expanded_len()`. DONT_CARE reads as zeros.
//!   [`ChunkTable::scan`] is the one-pass table underneath. For ext4-view, wrap it:
//!   `impl Ext4Read for W { fn read(&mut self, at, dst) { self.0.read_at(at, dst).map_err(|e|
//!   Box::new(e) as _) } }` (`SparseError` is `Send + Sync + 'static`).
//! - Plans (references into a source file, no data held): [`ChunkPlan::open`] (sparse or raw,
//!   by magic), [`ChunkPlan::from_sparse`], [`ChunkPlan::scan_raw`] /
//!   [`ChunkPlan::scan_raw_stream`] (repeated 32-bit word blocks → FILL, as the AOSP client's
//!   resparse does; optional byte observer for hashing), [`ChunkPlan::whole`].
//! - Splitting for `max-download-size`: [`split`]`(&plan, max_piece_bytes) -> Vec<Piece>`
//!   (libsparse `sparse_file_resparse` cut points; each piece declares the whole image),
//!   [`Piece::encoded_len`], [`Piece::write_to`]`(source: Read + Seek, out: Write)` streaming
//!   through a 1 MiB buffer. [`min_piece_bytes`].
//! - Whole-image check before flashing: [`verify`]`(Read, file_len)` → [`SparseSummary`]
//!   (every chunk walked, CRC32 chunks and a non-zero header `image_checksum` verified, the
//!   chunk count bounded by the file size).
//! - Writing arbitrary chunk sequences: [`SparseWriter`] (header totals enforced; optional
//!   CRC32 chunk).
//!
//! Every length in a file is checked before use and nothing is allocated from a declared
//! size; malformed input gives an error, never a panic.
//!
//! # Where we differ from libsparse (29.0.6), and why
//! - Stricter reading: unknown chunk types are errors (libsparse skips the header but not the
//!   data, then mis-parses), the block size must be a non-zero multiple of 4, a chunk past
//!   `total_blks` is refused before its data is read, and CRC32 chunks are checked by default.
//! - [`ChunkPlan::open`] reports a corrupt sparse file; `sparse_file_import_auto` would
//!   silently flash it as a raw image.
//! - Runs over 2^32 − 4096 bytes are cut into several chunks (libsparse's 32-bit lengths
//!   overflow). Plans are limited to 16 TiB ([`MAX_PLAN_IMAGE_LEN`]).
//! - Splitting a raw image whose length is not a multiple of the block size: every piece ends
//!   with a valid DONT_CARE over the rounded-up image (libsparse fails to write that chunk
//!   but counts it, so the AOSP client sends a piece with a missing chunk). Otherwise pieces
//!   are byte-identical to libsparse's for limits of 9 blocks and more (below, libsparse emits
//!   zero-block chunks; we do not).

mod checksum;
mod error;
mod expand;
pub mod format;
mod index;
mod plan;
mod reader;
mod split;
mod verify;
mod writer;

#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod testutil;

pub use error::SparseError;
pub use expand::{expand, expand_reader, expand_to_file, ExpandSummary};
pub use format::{
    is_sparse, ChunkHeader, ChunkType, SparseHeader, CHUNK_HEADER_LEN, CHUNK_TYPE_CRC32,
    CHUNK_TYPE_DONT_CARE, CHUNK_TYPE_FILL, CHUNK_TYPE_RAW, DEFAULT_BLOCK_SIZE, FILE_HEADER_LEN,
    MAGIC,
};
pub use index::{ChunkTable, Region, RegionData, SparseIndex};
pub use plan::{ChunkPlan, PlannedChunk, PlannedData, MAX_PLAN_IMAGE_LEN};
pub use reader::{Chunk, ChunkKind, RawData, SparseReader};
pub use split::{min_piece_bytes, split, Piece, PieceChunk, PieceData};
pub use verify::{verify, SparseSummary};
pub use writer::SparseWriter;
