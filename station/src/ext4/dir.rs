//! Directories, read linearly whatever their shape: a linear directory, an htree (its index
//! blocks look like empty entries to a linear reader, which is how they were designed), or
//! entries inline in the inode. Every `rec_len` and `name_len` is checked against its block,
//! and the metadata_csum tail of each leaf block is verified.

use std::ops::ControlFlow;

use super::csum::crc32c;
use super::file::Runs;
use super::inode::{Inode, Layout};
use super::{Fault, Le, ReadAt, Volume};

/// Directory blocks are read in chunks that grow from one block to this, so a lookup that
/// finds its name early reads little and a long scan takes few requests.
const MAX_CHUNK: u64 = 64 * 1024;
/// The metadata_csum tail: a 12-byte fake entry (inode 0, rec_len 12, type 0xDE) + crc32c.
const TAIL_LEN: usize = 12;
const TAIL_FILE_TYPE: u8 = 0xDE;
const MAX_NAME: usize = 255;

/// One live directory entry.
pub(super) struct Entry<'a> {
    pub inode: u32,
    pub name: &'a [u8],
}

/// Calls `visit` for each live entry of `dir` (including `.` and `..`) until it breaks.
pub(super) fn scan<S: ReadAt>(
    vol: &mut Volume<'_, S>,
    dir: &Inode,
    visit: &mut dyn FnMut(Entry<'_>) -> ControlFlow<()>,
) -> Result<(), Fault> {
    let ctx = Ctx {
        inode: dir.number,
        filetype: vol.sb.filetype,
        inodes_count: vol.sb.inodes_count,
        block_size: vol.sb.block_size,
    };
    if dir.layout == Layout::Inline {
        let (head, tail) = dir.inline_bytes();
        // The parent's inode number comes first, then entries; `system.data` continues them.
        for region in [head.get(4..).unwrap_or(&[]), tail] {
            if parse_entries(&ctx, region, false, visit)?.is_break() {
                break;
            }
        }
        return Ok(());
    }
    let block_size = vol.sb.block_size;
    if !dir.size.is_multiple_of(block_size) {
        return Err(ctx.corrupt(format!(
            "size {} is not a whole number of {block_size}-byte blocks",
            dir.size
        )));
    }
    let max_chunk = (MAX_CHUNK / block_size).max(1);
    let mut buffer = vec![0u8; (max_chunk * block_size) as usize];
    let mut chunk = 1u64;
    let mut runs = Runs::new(dir, block_size, dir.size / block_size)?;
    while let Some(run) = runs.next(vol)? {
        let Some(physical) = run.physical else {
            return Err(ctx.corrupt(format!("a hole at block {}", run.logical)));
        };
        let mut done = 0u64;
        while done < run.count {
            let n = chunk.min(run.count - done);
            let bytes = buffer
                .get_mut(..(n * block_size) as usize)
                .unwrap_or(&mut []);
            vol.read_blocks(physical + done, bytes)?;
            for (k, block) in bytes.chunks_exact(block_size as usize).enumerate() {
                let index = run.logical + done + k as u64;
                let entries = check_block(&ctx, dir, index, block)?;
                if parse_entries(&ctx, entries, true, visit)?.is_break() {
                    return Ok(());
                }
            }
            done += n;
            chunk = (chunk * 2).min(max_chunk);
        }
    }
    Ok(())
}

/// The inode number of `name` in `dir`.
pub(super) fn lookup<S: ReadAt>(
    vol: &mut Volume<'_, S>,
    dir: &Inode,
    name: &[u8],
) -> Result<Option<u32>, Fault> {
    let mut found = None;
    scan(vol, dir, &mut |entry| {
        if entry.name == name {
            found = Some(entry.inode);
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(found)
}

struct Ctx {
    inode: u32,
    filetype: bool,
    inodes_count: u32,
    block_size: u64,
}

impl Ctx {
    fn corrupt(&self, detail: String) -> Fault {
        Fault::Corrupt(format!("directory inode {}: {detail}", self.inode))
    }
}

/// Verifies a block's checksum tail when metadata_csum is on; returns the part holding entries.
fn check_block<'b>(ctx: &Ctx, dir: &Inode, index: u64, block: &'b [u8]) -> Result<&'b [u8], Fault> {
    let Some(seed) = dir.csum_seed else {
        return Ok(block);
    };
    let first = Le(block);
    // htree index blocks carry their own tail and hold no entries a linear reader uses: the
    // root is block 0 of an indexed directory, an interior node is one empty entry spanning
    // the block.
    let is_index = (index == 0 && dir.is_htree())
        || (first.u32(0) == 0
            && block_rec_len(first.u16(4), ctx.block_size) as u64 == ctx.block_size);
    if is_index {
        return Ok(block);
    }
    let split = block.len() - TAIL_LEN;
    let (entries, tail) = block.split_at(split);
    let t = Le(tail);
    if t.u32(0) != 0
        || t.u16(4) != TAIL_LEN as u16
        || tail.get(6) != Some(&0)
        || tail.get(7) != Some(&TAIL_FILE_TYPE)
    {
        return Err(ctx.corrupt(format!("block {index} has no checksum tail")));
    }
    let stored = t.u32(8);
    let computed = crc32c(seed, &[entries]);
    if stored != computed {
        return Err(ctx.corrupt(format!(
            "block {index} checksum is {stored:#010x}, the contents give {computed:#010x}"
        )));
    }
    Ok(entries)
}

/// A directory block entry's `rec_len`. 64 KiB blocks do not fit a u16: there 0 and 65535 mean
/// the whole block, and the low two bits (always zero otherwise) carry bits 16-17.
fn block_rec_len(raw: u16, block_size: u64) -> usize {
    if block_size < 65536 {
        usize::from(raw)
    } else if raw == 0 || raw == 65535 {
        block_size as usize
    } else {
        usize::from(raw & 65532) | usize::from(raw & 3) << 16
    }
}

/// Walks the entries of one block (or inline region), checking each before using it.
fn parse_entries(
    ctx: &Ctx,
    region: &[u8],
    in_block: bool,
    visit: &mut dyn FnMut(Entry<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, Fault> {
    let r = Le(region);
    let mut at = 0usize;
    while at < region.len() {
        if at + 8 > region.len() {
            return Err(ctx.corrupt(format!(
                "an entry at byte {at} runs past its {}-byte block",
                region.len()
            )));
        }
        let inode = r.u32(at);
        let raw_len = r.u16(at + 4);
        let rec_len = if in_block {
            block_rec_len(raw_len, ctx.block_size)
        } else {
            usize::from(raw_len)
        };
        let name_len = if ctx.filetype {
            usize::from(region.get(at + 6).copied().unwrap_or(0))
        } else {
            usize::from(r.u16(at + 6))
        };
        if rec_len < 8
            || !rec_len.is_multiple_of(4)
            || rec_len < 8 + name_len
            || rec_len > region.len() - at
            || name_len > MAX_NAME
        {
            return Err(ctx.corrupt(format!(
                "entry at byte {at}: rec_len {rec_len} with name_len {name_len} in a {}-byte block",
                region.len()
            )));
        }
        if inode != 0 {
            if name_len == 0 || inode > ctx.inodes_count {
                return Err(ctx.corrupt(format!(
                    "entry at byte {at} names inode {inode} with a {name_len}-byte name"
                )));
            }
            let name = region.get(at + 8..at + 8 + name_len).unwrap_or(&[]);
            if visit(Entry { inode, name }).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        at += rec_len;
    }
    Ok(ControlFlow::Continue(()))
}

#[cfg(test)]
mod tests {
    use super::block_rec_len;

    #[test]
    fn rec_len_of_64k_blocks_carries_two_more_bits() {
        assert_eq!(block_rec_len(12, 4096), 12);
        assert_eq!(block_rec_len(0, 4096), 0);
        assert_eq!(block_rec_len(12, 65536), 12);
        assert_eq!(block_rec_len(0, 65536), 65536);
        assert_eq!(block_rec_len(65535, 65536), 65536);
        assert_eq!(block_rec_len(0x8001, 65536), 0x18000);
    }
}
