//! The extent tree, walked in logical order with an explicit stack (never recursion): at most
//! five levels, each child exactly one level below its parent, entries within what the node
//! holds, every extent inside the filesystem and after the one before it. Those rules are what
//! make a hostile tree finite: a node that points back at itself or at an ancestor fails the
//! depth rule, and a subtree visited twice fails the ordering rule.

use super::csum::crc32c;
use super::inode::Inode;
use super::{Fault, Le, ReadAt, Volume};

const MAGIC: u16 = 0xF30A;
const HEADER: usize = 12;
const ENTRY: usize = 12;
const MAX_DEPTH: u16 = 5;
/// Entries that fit in `i_block` after the header.
const ROOT_CAPACITY: usize = 4;
/// Logical block numbers are 32-bit.
const LOGICAL_END: u64 = 1 << 32;
/// `ee_len` above this marks an uninitialised (preallocated, reads as zeros) extent.
const INIT_MAX_LEN: u16 = 32768;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    pub logical: u64,
    pub len: u64,
    pub physical: u64,
    pub initialised: bool,
}

struct Level {
    node: Vec<u8>,
    entries: usize,
    depth: u16,
    next: usize,
    /// The logical range the parent's index entry gives this node.
    start: u64,
    end: u64,
}

pub(super) struct ExtentWalker {
    levels: Vec<Level>,
    /// Every extent must start at or after this (the end of the previous one).
    next_logical: u64,
    inode: u32,
    csum_seed: Option<u32>,
}

/// Validates a node header; returns (entries, eh_max, depth).
fn header(
    node: &[u8],
    capacity: usize,
    expected_depth: Option<u16>,
) -> Result<(usize, usize, u16), String> {
    let h = Le(node);
    if node.len() < HEADER || h.u16(0) != MAGIC {
        return Err("no extent header magic".into());
    }
    let entries = usize::from(h.u16(2));
    let max = usize::from(h.u16(4));
    let depth = h.u16(6);
    if max == 0 || max > capacity {
        return Err(format!("eh_max {max} (1 to {capacity} fit this node)"));
    }
    if entries > max {
        return Err(format!("eh_entries {entries} exceeds eh_max {max}"));
    }
    if depth > MAX_DEPTH {
        return Err(format!("depth {depth} exceeds {MAX_DEPTH}"));
    }
    if let Some(expected) = expected_depth {
        if depth != expected {
            return Err(format!(
                "depth {depth} where its parent index requires {expected}"
            ));
        }
    }
    if entries == 0 && (depth > 0 || expected_depth.is_some()) {
        return Err("an index or non-root node with no entries".into());
    }
    Ok((entries, max, depth))
}

impl ExtentWalker {
    pub fn new(inode: &Inode) -> Result<Self, Fault> {
        let (entries, _, depth) = header(&inode.i_block, ROOT_CAPACITY, None)
            .map_err(|e| Fault::Corrupt(format!("inode {} extent root: {e}", inode.number)))?;
        Ok(Self {
            levels: vec![Level {
                node: inode.i_block.to_vec(),
                entries,
                depth,
                next: 0,
                start: 0,
                end: LOGICAL_END,
            }],
            next_logical: 0,
            inode: inode.number,
            csum_seed: inode.csum_seed,
        })
    }

    fn corrupt(&self, detail: String) -> Fault {
        Fault::Corrupt(format!("inode {} extent tree: {detail}", self.inode))
    }

    /// The next extent in logical order, reading index and leaf blocks as needed.
    pub fn next_extent<S: ReadAt>(
        &mut self,
        vol: &mut Volume<'_, S>,
    ) -> Result<Option<Extent>, Fault> {
        loop {
            let Some(level) = self.levels.last_mut() else {
                return Ok(None);
            };
            if level.next >= level.entries {
                self.levels.pop();
                continue;
            }
            let i = level.next;
            level.next += 1;
            let node = Le(&level.node);
            let at = HEADER + i * ENTRY;
            let logical = u64::from(node.u32(at));
            let (depth, start, end) = (level.depth, level.start, level.end);
            if depth == 0 {
                let raw_len = node.u16(at + 4);
                let physical = u64::from(node.u16(at + 6)) << 32 | u64::from(node.u32(at + 8));
                let (len, initialised) = if raw_len > INIT_MAX_LEN {
                    (u64::from(raw_len - INIT_MAX_LEN), false)
                } else {
                    (u64::from(raw_len), true)
                };
                let extent = Extent {
                    logical,
                    len,
                    physical,
                    initialised,
                };
                self.check_extent(&extent, start, end, vol)?;
                self.next_logical = logical + len;
                return Ok(Some(extent));
            }
            let child = u64::from(node.u16(at + 8)) << 32 | u64::from(node.u32(at + 4));
            let child_end = if i + 1 < level.entries {
                u64::from(node.u32(at + ENTRY))
            } else {
                end
            };
            if logical < start
                || logical < self.next_logical
                || child_end <= logical
                || child_end > end
            {
                return Err(self.corrupt(format!(
                    "index entry for logical block {logical} is out of order (node covers {start}..{end}, next entry at {child_end})"
                )));
            }
            if child <= vol.sb.first_data_block || child >= vol.sb.blocks_count {
                return Err(self.corrupt(format!(
                    "index points to block {child}, outside the filesystem's {} blocks",
                    vol.sb.blocks_count
                )));
            }
            let block = self.read_node(vol, child, depth - 1)?;
            self.levels.push(Level {
                entries: block.1,
                node: block.0,
                depth: depth - 1,
                next: 0,
                start: logical,
                end: child_end,
            });
        }
    }

    fn read_node<S: ReadAt>(
        &self,
        vol: &mut Volume<'_, S>,
        block: u64,
        depth: u16,
    ) -> Result<(Vec<u8>, usize), Fault> {
        let size = usize::try_from(vol.sb.block_size).unwrap_or(usize::MAX);
        let mut node = vec![0u8; size];
        vol.read_blocks(block, &mut node)?;
        let capacity = (size - HEADER) / ENTRY;
        let (entries, max, _) = header(&node, capacity, Some(depth))
            .map_err(|e| self.corrupt(format!("node at block {block}: {e}")))?;
        if let Some(seed) = self.csum_seed {
            // The checksum follows the node's eh_max entries.
            let tail = HEADER + max * ENTRY;
            let stored = Le(&node).u32(tail);
            let computed = crc32c(seed, &[node.get(..tail).unwrap_or(&[])]);
            if tail + 4 > size || stored != computed {
                return Err(self.corrupt(format!(
                    "node at block {block}: checksum is {stored:#010x}, the contents give {computed:#010x}"
                )));
            }
        }
        Ok((node, entries))
    }

    fn check_extent<S>(
        &self,
        extent: &Extent,
        start: u64,
        end: u64,
        vol: &Volume<'_, S>,
    ) -> Result<(), Fault> {
        let Extent {
            logical,
            len,
            physical,
            ..
        } = *extent;
        if len == 0 {
            return Err(self.corrupt(format!("extent at logical block {logical} has length 0")));
        }
        if logical < self.next_logical || logical < start || logical + len > end {
            return Err(self.corrupt(format!(
                "extent {logical}..{} overlaps the previous one (ending at {}) or leaves its node's range {start}..{end}",
                logical + len,
                self.next_logical
            )));
        }
        if physical <= vol.sb.first_data_block || physical.saturating_add(len) > vol.sb.blocks_count
        {
            return Err(self.corrupt(format!(
                "extent maps to blocks {physical}..{}, outside the filesystem's {} blocks",
                physical.saturating_add(len),
                vol.sb.blocks_count
            )));
        }
        Ok(())
    }
}
