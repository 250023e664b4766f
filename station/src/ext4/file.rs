//! A file's blocks as runs in logical order (mapped, or zeros for holes and uninitialised
//! extents), and its bytes streamed to a writer: contiguous blocks are read together, up to
//! [`MAX_READ`] at a time, and nothing past the end of the file is read.

use std::io::Write;

use super::extent::ExtentWalker;
use super::indirect::BlockMapWalker;
use super::inode::{Inode, Layout};
use super::{Fault, ReadAt, Volume};

/// The largest single read of file data: big enough for speed, small enough for a phone link.
pub(super) const MAX_READ: u64 = 1 << 20;
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// `count` blocks from logical block `logical`: at `physical`, or zeros when `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    pub logical: u64,
    pub count: u64,
    pub physical: Option<u64>,
}

enum Mapper {
    Extents(ExtentWalker),
    BlockMap(BlockMapWalker),
}

/// Runs covering logical blocks `0..end` with no gap.
pub(super) struct Runs {
    mapper: Mapper,
    pos: u64,
    end: u64,
    pending: Option<Run>,
    exhausted: bool,
}

impl Runs {
    /// The runs of the first `end` blocks of a block-mapped or extent-mapped inode.
    pub fn new(inode: &Inode, block_size: u64, end: u64) -> Result<Self, Fault> {
        let mapper = match inode.layout {
            Layout::Extents => Mapper::Extents(ExtentWalker::new(inode)?),
            Layout::BlockMap => Mapper::BlockMap(BlockMapWalker::new(inode, block_size)),
            Layout::Inline => {
                return Err(Fault::Corrupt(format!(
                    "inode {} keeps its data inline, not in blocks",
                    inode.number
                )))
            }
        };
        Ok(Self {
            mapper,
            pos: 0,
            end,
            pending: None,
            exhausted: false,
        })
    }

    fn next_mapped<S: ReadAt>(&mut self, vol: &mut Volume<'_, S>) -> Result<Option<Run>, Fault> {
        match &mut self.mapper {
            Mapper::Extents(walker) => Ok(walker.next_extent(vol)?.map(|e| Run {
                logical: e.logical,
                count: e.len,
                physical: e.initialised.then_some(e.physical),
            })),
            Mapper::BlockMap(walker) => {
                // The walker maps block by block; gather a contiguous stretch (or a hole).
                if self.pos >= self.end {
                    return Ok(None);
                }
                let first = walker.map(vol, self.pos)?;
                let limit = (MAX_READ / vol.sb.block_size).max(1);
                let mut count = 1;
                while count < limit && self.pos + count < self.end {
                    let next = walker.map(vol, self.pos + count)?;
                    let contiguous = match (first, next) {
                        (None, None) => true,
                        (Some(a), Some(b)) => b == a + count,
                        _ => false,
                    };
                    if !contiguous {
                        break;
                    }
                    count += 1;
                }
                Ok(Some(Run {
                    logical: self.pos,
                    count,
                    physical: first,
                }))
            }
        }
    }

    pub fn next<S: ReadAt>(&mut self, vol: &mut Volume<'_, S>) -> Result<Option<Run>, Fault> {
        if self.pos >= self.end {
            return Ok(None);
        }
        if self.pending.is_none() && !self.exhausted {
            self.pending = self.next_mapped(vol)?;
            self.exhausted = self.pending.is_none();
        }
        let run = match self.pending {
            // Mapped runs come in increasing order, so any gap before one is a hole.
            Some(run) if run.logical > self.pos => Run {
                logical: self.pos,
                count: run.logical.min(self.end) - self.pos,
                physical: None,
            },
            Some(run) => {
                self.pending = None;
                let skip = self.pos.saturating_sub(run.logical);
                Run {
                    logical: self.pos,
                    count: run.count.saturating_sub(skip).min(self.end - self.pos),
                    physical: run.physical.map(|p| p + skip),
                }
            }
            None => Run {
                logical: self.pos,
                count: self.end - self.pos,
                physical: None,
            },
        };
        self.pos += run.count;
        Ok(Some(run))
    }
}

/// Writes the inode's `size` bytes to `out`; returns how many were written.
pub(super) fn stream<S: ReadAt>(
    vol: &mut Volume<'_, S>,
    inode: &Inode,
    out: &mut dyn Write,
) -> Result<u64, Fault> {
    let size = inode.size;
    if inode.layout == Layout::Inline {
        let (head, tail) = inode.inline_bytes();
        let available = (head.len() + tail.len()) as u64;
        if size > available {
            return Err(Fault::Corrupt(format!(
                "inode {}: {size} bytes but only {available} inline",
                inode.number
            )));
        }
        let head_len = head.len().min(size as usize);
        let tail_len = size as usize - head_len;
        for part in [head.get(..head_len), tail.get(..tail_len)] {
            out.write_all(part.unwrap_or(&[])).map_err(Fault::Output)?;
        }
        return Ok(size);
    }
    let block_size = vol.sb.block_size;
    let blocks = size.div_ceil(block_size);
    let mut runs = Runs::new(inode, block_size, blocks)?;
    let mut buffer = vec![0u8; size.min(MAX_READ) as usize];
    let mut written = 0u64;
    while let Some(run) = runs.next(vol)? {
        let mut done = 0u64;
        while done < run.count {
            let offset = (run.logical + done) * block_size;
            let chunk_blocks = (run.count - done).min((MAX_READ / block_size).max(1));
            let len = (chunk_blocks * block_size).min(size - offset);
            match run.physical {
                Some(physical) => {
                    let buf = buffer.get_mut(..len as usize).unwrap_or(&mut []);
                    vol.read_blocks(physical + done, buf)?;
                    out.write_all(buf).map_err(Fault::Output)?;
                }
                None => {
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(ZEROS.len() as u64) as usize;
                        out.write_all(ZEROS.get(..n).unwrap_or(&[]))
                            .map_err(Fault::Output)?;
                        left -= n as u64;
                    }
                }
            }
            written += len;
            done += chunk_blocks;
        }
    }
    Ok(written)
}
