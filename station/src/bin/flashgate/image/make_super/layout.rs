//! The bytes of a `super.img` as runs: LP metadata, partition images' data (raw images, or the
//! RAW chunks of sparse ones), FILL runs, and nothing where no partition image lies; written
//! raw or as an Android sparse image, streamed from the input files.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use protocols::lp::{Metadata, PlanData, SuperImagePlan};
use protocols::sparse::{self, ChunkPlan, PlannedData, SparseWriter, CHUNK_HEADER_LEN};

/// A partition image to lay into the super image.
pub(super) struct InputImage {
    pub(super) partition: String,
    pub(super) path: PathBuf,
    file: File,
    /// Its content as chunks: a sparse file's own, or a raw file's blocks (repeated words as
    /// FILL).
    plan: ChunkPlan,
    pub(super) sparse: bool,
}

impl InputImage {
    pub(super) fn open(partition: &str, path: &Path) -> anyhow::Result<InputImage> {
        let describe = || format!("image for partition {partition} ({})", path.display());
        let mut file = File::open(path).with_context(describe)?;
        if !file.metadata().with_context(describe)?.is_file() {
            bail!("{}: not a regular file", describe());
        }
        let mut head = [0u8; 4];
        let got = file.read(&mut head).with_context(describe)?;
        let sparse = sparse::is_sparse(&head[..got]);
        let plan = ChunkPlan::open(&mut file).with_context(describe)?;
        Ok(InputImage {
            partition: partition.to_string(),
            path: path.to_path_buf(),
            file,
            plan,
            sparse,
        })
    }

    /// Bytes the partition receives (a sparse image's expanded size).
    pub(super) fn len(&self) -> u64 {
        self.plan.image_len()
    }
}

/// Where a run of the output image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunData {
    /// LP geometry and metadata (the plan's metadata pieces).
    Metadata,
    /// Bytes of input image `image`'s file from `offset`.
    File { image: usize, offset: u64 },
    /// A little-endian 32-bit word repeated.
    Fill(u32),
}

/// `len` bytes of the output image at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    offset: u64,
    len: u64,
    data: RunData,
}

impl Run {
    fn end(&self) -> u64 {
        self.offset + self.len
    }

    /// Appends `next` to this run when it continues it (adjacent, same source, contiguous).
    fn absorb(&mut self, next: &Run) -> bool {
        let continues = self.end() == next.offset
            && match (self.data, next.data) {
                (RunData::Metadata, RunData::Metadata) => true,
                (RunData::Fill(a), RunData::Fill(b)) => a == b,
                (
                    RunData::File { image: a, offset },
                    RunData::File {
                        image: b,
                        offset: o,
                    },
                ) => a == b && offset + self.len == o,
                _ => false,
            };
        if continues {
            self.len += next.len;
        }
        continues
    }
}

/// The whole output image as runs in offset order; bytes in no run are zeros (raw) or
/// DONT_CARE (sparse).
pub(super) struct Layout {
    pub(super) device_size: u64,
    /// The metadata pieces (geometry copies, metadata slots) by offset.
    metadata: Vec<(u64, Arc<[u8]>)>,
    runs: Vec<Run>,
}

impl Layout {
    pub(super) fn new(metadata: &Metadata, images: &[InputImage]) -> anyhow::Result<Layout> {
        let block = u64::from(metadata.geometry.logical_block_size);
        let lens: Vec<(&str, u64)> = images
            .iter()
            .map(|i| (i.partition.as_str(), i.len()))
            .collect();
        let plan = SuperImagePlan::new(metadata, &lens)?;
        let mut pieces = Vec::new();
        let mut runs = Vec::new();
        for piece in &plan.pieces {
            match &piece.data {
                PlanData::Bytes(bytes) => {
                    metadata_runs(piece.offset, bytes, block, &mut runs);
                    pieces.push((piece.offset, bytes.clone()));
                }
                PlanData::Image { image, offset } => image_runs(
                    &images[*image].plan,
                    *image,
                    *offset..*offset + piece.len,
                    piece.offset,
                    &mut runs,
                ),
            }
        }
        pieces.sort_by_key(|(offset, _)| *offset);
        runs.sort_by_key(|r| r.offset);
        let mut merged: Vec<Run> = Vec::with_capacity(runs.len());
        for run in runs.into_iter().filter(|r| r.len > 0) {
            if let Some(last) = merged.last_mut() {
                if last.end() > run.offset {
                    bail!(
                        "internal error: bytes {}..{} of the super image are laid out twice",
                        run.offset,
                        last.end()
                    );
                }
                if last.absorb(&run) {
                    continue;
                }
            }
            merged.push(run);
        }
        Ok(Layout {
            device_size: plan.device_size,
            metadata: pieces,
            runs: merged,
        })
    }

    /// A raw image: the file set to the device's size (zeros cost nothing), then every run
    /// that is not zeros written at its offset. Returns the bytes written.
    pub(super) fn write_raw(
        &self,
        images: &mut [InputImage],
        file: &mut File,
    ) -> anyhow::Result<u64> {
        file.set_len(self.device_size)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut written = 0;
        for run in &self.runs {
            if run.data == RunData::Fill(0) {
                continue;
            }
            out.seek(SeekFrom::Start(run.offset))?;
            written += run.len;
            match run.data {
                RunData::Fill(value) => {
                    let pattern: Vec<u8> = value.to_le_bytes().repeat(1 << 14);
                    let mut left = run.len;
                    while left > 0 {
                        let n = left.min(pattern.len() as u64) as usize;
                        out.write_all(&pattern[..n])?;
                        left -= n as u64;
                    }
                }
                _ => {
                    io::copy(&mut self.reader(run, images)?, &mut out)?;
                }
            }
        }
        out.flush()?;
        Ok(written)
    }

    /// An Android sparse image of `block`-byte blocks. Returns its size.
    pub(super) fn write_sparse(
        &self,
        images: &mut [InputImage],
        file: &mut File,
        block: u64,
    ) -> anyhow::Result<u64> {
        let chunks = self.sparse_chunks(block)?;
        let total_blocks = u32::try_from(self.device_size / block).map_err(|_| {
            anyhow::anyhow!(
                "a sparse image counts its blocks in 32 bits: {} bytes of {block}-byte blocks \
                 are too many (use a larger --block-size or a raw image)",
                self.device_size
            )
        })?;
        let count = u32::try_from(chunks.len()).context("too many sparse chunks")?;
        let mut writer = SparseWriter::new(
            BufWriter::with_capacity(1 << 20, &mut *file),
            block as u32,
            total_blocks,
            count,
        )?;
        for chunk in &chunks {
            match chunk {
                SparseChunk::DontCare(blocks) => writer.write_dont_care(*blocks)?,
                SparseChunk::Data(run) => match run.data {
                    RunData::Fill(value) => writer.write_fill(value, (run.len / block) as u32)?,
                    _ => writer.write_raw_from(&mut self.reader(run, images)?, run.len)?,
                },
            }
        }
        let mut out = writer.finish()?;
        out.flush()?;
        drop(out);
        Ok(file.stream_position()?)
    }

    /// The chunks of the sparse image: the runs (RAW runs cut to what a chunk's 32-bit size
    /// holds) with DONT_CARE between them. Every run must start on a block; a run ending inside
    /// a block is padded with zeros to its end, which must not reach the next run.
    fn sparse_chunks(&self, block: u64) -> anyhow::Result<Vec<SparseChunk>> {
        let unaligned = |offset: u64| {
            anyhow::anyhow!(
                "byte {offset} of the super image does not start a {block}-byte block, so it \
                 cannot be written sparse: use an --alignment and --metadata-size that are \
                 multiples of --block-size, or write a raw image"
            )
        };
        let max_raw = (u64::from(u32::MAX) - CHUNK_HEADER_LEN as u64) / block * block;
        let mut chunks = Vec::new();
        let mut at = 0u64;
        for run in &self.runs {
            if run.offset % block != 0 || run.offset < at {
                return Err(unaligned(run.offset));
            }
            if run.offset > at {
                chunks.push(SparseChunk::DontCare(((run.offset - at) / block) as u32));
            }
            if let RunData::Fill(_) = run.data {
                if run.len % block != 0 {
                    return Err(unaligned(run.end()));
                }
                chunks.push(SparseChunk::Data(*run));
            } else {
                let mut piece = *run;
                while piece.len > max_raw {
                    let (first, rest) = split(&piece, max_raw);
                    chunks.push(SparseChunk::Data(first));
                    piece = rest;
                }
                chunks.push(SparseChunk::Data(piece));
            }
            at = run.end().div_ceil(block) * block;
        }
        if at > self.device_size {
            return Err(unaligned(self.device_size));
        }
        if at < self.device_size {
            chunks.push(SparseChunk::DontCare(
                ((self.device_size - at) / block) as u32,
            ));
        }
        Ok(chunks)
    }

    /// The bytes of a metadata or file run.
    fn reader<'a>(
        &'a self,
        run: &Run,
        images: &'a mut [InputImage],
    ) -> io::Result<Box<dyn Read + 'a>> {
        match run.data {
            RunData::File { image, offset } => {
                let file = &mut images[image].file;
                file.seek(SeekFrom::Start(offset))?;
                Ok(Box::new(ExactReader {
                    inner: file.take(run.len),
                    left: run.len,
                }))
            }
            RunData::Metadata => Ok(Box::new(MetadataReader {
                pieces: &self.metadata,
                at: run.offset,
                end: run.end(),
            })),
            RunData::Fill(_) => Err(io::Error::other("a FILL run has no bytes to read")),
        }
    }
}

enum SparseChunk {
    Data(Run),
    DontCare(u32),
}

fn split(run: &Run, at: u64) -> (Run, Run) {
    let first = Run { len: at, ..*run };
    let data = match run.data {
        RunData::File { image, offset } => RunData::File {
            image,
            offset: offset + at,
        },
        other => other,
    };
    let rest = Run {
        offset: run.offset + at,
        len: run.len - at,
        data,
    };
    (first, rest)
}

/// A metadata piece cut at block boundaries: whole blocks that are one word repeated (the
/// zeros after a slot's tables) are FILL, the rest metadata bytes.
fn metadata_runs(offset: u64, bytes: &[u8], block: u64, runs: &mut Vec<Run>) {
    let mut at = 0usize;
    while at < bytes.len() {
        let absolute = offset + at as u64;
        let to_boundary = (block - absolute % block) as usize;
        let end = (at + to_boundary).min(bytes.len());
        let segment = &bytes[at..end];
        let data = match repeated_word(segment) {
            Some(value) if segment.len() as u64 == block => RunData::Fill(value),
            _ => RunData::Metadata,
        };
        runs.push(Run {
            offset: absolute,
            len: segment.len() as u64,
            data,
        });
        at = end;
    }
}

fn repeated_word(bytes: &[u8]) -> Option<u32> {
    let word = bytes.get(..4)?;
    (bytes.len().is_multiple_of(4) && bytes[4..] == bytes[..bytes.len() - 4])
        .then(|| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
}

/// Bytes `range` of an image's content laid at `at` in the super image: its RAW chunks as
/// file bytes, its FILL chunks as FILL, and what the image leaves out (a sparse image's
/// DONT_CARE) as zeros — the partition gets exactly the image's bytes.
fn image_runs(
    plan: &ChunkPlan,
    image: usize,
    range: std::ops::Range<u64>,
    at: u64,
    runs: &mut Vec<Run>,
) {
    let block = u64::from(plan.block_size());
    let to_super = |image_offset: u64| at + (image_offset - range.start);
    let mut covered = range.start;
    for chunk in plan.chunks() {
        let start = u64::from(chunk.start_block) * block;
        let end = start + chunk.len;
        if end <= range.start {
            continue;
        }
        if start >= range.end {
            break;
        }
        let (from, to) = (start.max(range.start), end.min(range.end));
        if from > covered {
            runs.push(Run {
                offset: to_super(covered),
                len: from - covered,
                data: RunData::Fill(0),
            });
        }
        let data = match chunk.data {
            PlannedData::Raw { source_offset } => RunData::File {
                image,
                offset: source_offset + (from - start),
            },
            PlannedData::Fill { value } => RunData::Fill(value),
        };
        runs.push(Run {
            offset: to_super(from),
            len: to - from,
            data,
        });
        covered = to;
    }
    if covered < range.end {
        runs.push(Run {
            offset: to_super(covered),
            len: range.end - covered,
            data: RunData::Fill(0),
        });
    }
}

/// A reader that fails rather than end early: an input image shrunk while it is being read
/// is an error, not a super image with a short partition.
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("an input image ended {} bytes early", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The metadata area's bytes from the plan's pieces (zeros between them).
struct MetadataReader<'a> {
    pieces: &'a [(u64, Arc<[u8]>)],
    at: u64,
    end: u64,
}

impl Read for MetadataReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.at).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let out = &mut buf[..want];
        out.fill(0);
        for (offset, bytes) in self.pieces {
            let (start, end) = (*offset, offset + bytes.len() as u64);
            let (from, to) = (start.max(self.at), end.min(self.at + want as u64));
            if from < to {
                out[(from - self.at) as usize..(to - self.at) as usize]
                    .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
            }
        }
        self.at += want as u64;
        Ok(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pieces_become_fill_where_a_block_is_one_word() {
        let mut bytes = vec![0u8; 3 * 4096];
        bytes[5] = 1;
        bytes[2 * 4096..].fill(0xab);
        let mut runs = Vec::new();
        metadata_runs(4096, &bytes, 4096, &mut runs);
        let kinds: Vec<RunData> = runs.iter().map(|r| r.data).collect();
        assert_eq!(
            kinds,
            [
                RunData::Metadata,
                RunData::Fill(0),
                RunData::Fill(0xabab_abab)
            ]
        );
        // A piece that does not start on a block is cut at the boundary; parts are never FILL.
        let mut runs = Vec::new();
        metadata_runs(512, &[0u8; 4096], 4096, &mut runs);
        assert_eq!(
            runs,
            [
                Run {
                    offset: 512,
                    len: 3584,
                    data: RunData::Metadata
                },
                Run {
                    offset: 4096,
                    len: 512,
                    data: RunData::Metadata
                }
            ]
        );
    }

    #[test]
    fn an_image_range_maps_chunks_and_zero_fills_what_the_image_leaves_out() {
        // 4 blocks: RAW block 0, DONT_CARE block 1, FILL blocks 2-3.
        let mut sparse = SparseWriter::new(Vec::new(), 4096, 4, 3).unwrap();
        sparse.write_raw(&[7u8; 4096]).unwrap();
        sparse.write_dont_care(1).unwrap();
        sparse.write_fill(9, 2).unwrap();
        let bytes = sparse.finish().unwrap();
        let plan = ChunkPlan::open(&mut io::Cursor::new(bytes)).unwrap();
        let mut runs = Vec::new();
        // The image's second half of block 0 onwards, laid at 1 MiB.
        image_runs(&plan, 3, 2048..4 * 4096, 1 << 20, &mut runs);
        assert_eq!(
            runs,
            [
                Run {
                    offset: 1 << 20,
                    len: 2048,
                    data: RunData::File {
                        image: 3,
                        offset: 28 + 12 + 2048
                    }
                },
                Run {
                    offset: (1 << 20) + 2048,
                    len: 4096,
                    data: RunData::Fill(0)
                },
                Run {
                    offset: (1 << 20) + 2048 + 4096,
                    len: 8192,
                    data: RunData::Fill(9)
                },
            ]
        );
    }

    #[test]
    fn runs_merge_only_when_one_continues_the_other() {
        let run = |offset, len, data| Run { offset, len, data };
        let mut a = run(
            0,
            10,
            RunData::File {
                image: 0,
                offset: 100,
            },
        );
        assert!(a.absorb(&run(
            10,
            5,
            RunData::File {
                image: 0,
                offset: 110
            }
        )));
        assert_eq!(a.len, 15);
        assert!(!a.absorb(&run(
            15,
            5,
            RunData::File {
                image: 0,
                offset: 200
            }
        )));
        assert!(!a.absorb(&run(
            15,
            5,
            RunData::File {
                image: 1,
                offset: 115
            }
        )));
        assert!(!a.absorb(&run(
            16,
            5,
            RunData::File {
                image: 0,
                offset: 115
            }
        )));
        let mut f = run(0, 4096, RunData::Fill(0));
        assert!(!f.absorb(&run(4096, 4096, RunData::Fill(1))));
        assert!(f.absorb(&run(4096, 4096, RunData::Fill(0))));
    }
}
