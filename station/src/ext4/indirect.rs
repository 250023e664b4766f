//! The legacy (ext2/ext3) block map: twelve direct pointers, then single, double and triple
//! indirect blocks. Walked in logical order with one cached table per level, so each indirect
//! block is read once per walk; a zero pointer anywhere is a hole.

use super::inode::Inode;
use super::{Fault, Le, ReadAt, Volume};

const DIRECT: u64 = 12;

pub(super) struct BlockMapWalker {
    pointers: [u32; 15],
    inode: u32,
    /// Pointers per indirect block.
    per_block: u64,
    /// The table last read at each indirection level, with its block number.
    tables: [Option<(u64, Vec<u8>)>; 3],
}

impl BlockMapWalker {
    pub fn new(inode: &Inode, block_size: u64) -> Self {
        let raw = Le(&inode.i_block);
        let mut pointers = [0u32; 15];
        for (i, p) in pointers.iter_mut().enumerate() {
            *p = raw.u32(i * 4);
        }
        Self {
            pointers,
            inode: inode.number,
            per_block: block_size / 4,
            tables: [None, None, None],
        }
    }

    fn corrupt(&self, detail: String) -> Fault {
        Fault::Corrupt(format!("inode {} block map: {detail}", self.inode))
    }

    fn check<S>(&self, vol: &Volume<'_, S>, block: u64, what: &str) -> Result<u64, Fault> {
        if block <= vol.sb.first_data_block || block >= vol.sb.blocks_count {
            return Err(self.corrupt(format!(
                "{what} points to block {block}, outside the filesystem's {} blocks",
                vol.sb.blocks_count
            )));
        }
        Ok(block)
    }

    /// The physical block of logical block `n`, or `None` for a hole.
    pub fn map<S: ReadAt>(
        &mut self,
        vol: &mut Volume<'_, S>,
        n: u64,
    ) -> Result<Option<u64>, Fault> {
        let p = self.per_block;
        let (top, levels, index) = if n < DIRECT {
            let ptr = u64::from(self.pointers.get(n as usize).copied().unwrap_or(0));
            return match ptr {
                0 => Ok(None),
                b => self.check(vol, b, "a direct pointer").map(Some),
            };
        } else if n - DIRECT < p {
            (12, 1u32, n - DIRECT)
        } else if n - DIRECT - p < p * p {
            (13, 2, n - DIRECT - p)
        } else if n - DIRECT - p - p * p < p * p * p {
            (14, 3, n - DIRECT - p - p * p)
        } else {
            return Err(self.corrupt(format!(
                "logical block {n} is beyond what a block map addresses"
            )));
        };
        let mut block = u64::from(self.pointers.get(top).copied().unwrap_or(0));
        for level in 0..levels {
            if block == 0 {
                return Ok(None);
            }
            self.check(vol, block, "an indirect pointer")?;
            let slot = &mut self.tables[level as usize];
            if slot.as_ref().map(|(b, _)| *b) != Some(block) {
                let size = usize::try_from(vol.sb.block_size).unwrap_or(usize::MAX);
                let mut table = vec![0u8; size];
                vol.read_blocks(block, &mut table)?;
                *slot = Some((block, table));
            }
            let shift = levels - 1 - level;
            let entry = (index / p.pow(shift)) % p;
            let table = slot.as_ref().map(|(_, t)| t.as_slice()).unwrap_or(&[]);
            block = u64::from(Le(table).u32(entry as usize * 4));
        }
        match block {
            0 => Ok(None),
            b => self.check(vol, b, "a data pointer").map(Some),
        }
    }
}
