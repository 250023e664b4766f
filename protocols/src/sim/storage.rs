//! A simulated phone's storage: one or more LUNs (UFS has several, eMMC one), each a disk of
//! 512- or 4096-byte sectors carrying a real GPT, with named partitions.
//!
//! Every partition is its own region (its own sparse memory map, or its own sparse file
//! `DIR/<name>.img`), and everything outside partitions — the GPT itself, gaps — is one more
//! region per LUN (`DIR/lun<N>.img`). A sector write by EDL that falls into a partition's range
//! lands in that partition's region, so what EDL writes fastboot reads back and vice versa, and a
//! test can compare a partition file with the image it flashed.

use std::path::{Path, PathBuf};

use crate::gpt::{self, Gpt, GptError, Guid};

mod backing;
mod slots;

use backing::Backing;
pub use backing::MEMORY_CHUNK;
pub use slots::{SlotInfo, SLOT_ATTR_ACTIVE, SLOT_ATTR_SUCCESSFUL, SLOT_ATTR_UNBOOTABLE};

/// Why a storage operation failed. Names the partition/LUN and the bounds.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no partition named {0:?} on this phone")]
    NoSuchPartition(String),
    #[error("no LUN {lun} (this phone has {count})")]
    NoSuchLun { lun: u32, count: usize },
    #[error("{what}: {len} bytes at offset {offset} run past its end ({size} bytes)")]
    OutOfRange {
        what: String,
        offset: u64,
        len: u64,
        size: u64,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("partition table: {0}")]
    Gpt(#[from] GptError),
    #[error("layout: {0}")]
    Layout(String),
    #[error("no slot {0:?} on this phone (it has no boot_{0} partition)")]
    NoSuchSlot(String),
}

/// One partition to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    pub name: String,
    pub size_bytes: u64,
    /// Defaults to the usual type for the name ([`gpt::types::for_name`]).
    pub type_guid: Option<Guid>,
}

/// One LUN to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunSpec {
    /// 4096 for UFS, 512 for eMMC.
    pub sector_size: u32,
    /// Disk size; `None` = just large enough for the partitions (plus 1 MiB slack).
    pub size_bytes: Option<u64>,
    pub partitions: Vec<PartitionSpec>,
}

/// Where region contents live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageMode {
    /// Sparse maps in memory: only written chunks take memory.
    Memory,
    /// Sparse files in this directory: `<partition>.img` per partition, `lun<N>.img` for the
    /// rest of each LUN (GPT, gaps). Existing files are reused (contents kept).
    Files(PathBuf),
    /// Sparse unlinked temporary files (in `$TMPDIR`), one per region: the data lives in the
    /// page cache and on disk, not in the process, and is gone when the phone is dropped. A
    /// station simulating dozens of phones flashed with GiBs each uses this.
    Temporary,
}

/// Which writes a "drops writes" fault swallows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DropWrites {
    #[default]
    None,
    /// Every write answers success and stores nothing (a dying flash chip, a lying bootloader).
    All,
    /// Only writes into these partitions are dropped.
    Partitions(Vec<String>),
}

impl DropWrites {
    /// Does this fault swallow writes to the region (partition or `lun<N>`) named `region`?
    pub fn covers(&self, region: &str) -> bool {
        match self {
            DropWrites::None => false,
            DropWrites::All => true,
            DropWrites::Partitions(names) => names.iter().any(|n| n == region),
        }
    }
}

fn fits(offset: u64, len: u64, size: u64) -> bool {
    matches!(offset.checked_add(len), Some(end) if end <= size)
}

/// Partitions are aligned like sgdisk and Qualcomm's ptool do.
const ALIGN: u64 = 1 << 20;

struct Region {
    name: String,
    /// Byte range on the LUN (end exclusive).
    start: u64,
    end: u64,
    backing: Backing,
}

/// One disk.
pub struct Lun {
    index: u32,
    sector_size: u32,
    sectors: u64,
    gpt: Gpt,
    /// Partition regions sorted by start.
    partitions: Vec<Region>,
    /// Everything outside partitions, addressed by LUN byte offset.
    rest: Region,
}

/// Where a named partition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub name: String,
    pub lun: u32,
    pub sector_size: u32,
    pub first_lba: u64,
    pub last_lba: u64,
    pub size_bytes: u64,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub attributes: u64,
    /// The backing file in file mode.
    pub path: Option<PathBuf>,
}

impl Lun {
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn sector_size(&self) -> u32 {
        self.sector_size
    }
    pub fn sectors(&self) -> u64 {
        self.sectors
    }
    pub fn size_bytes(&self) -> u64 {
        self.sectors * u64::from(self.sector_size)
    }
    /// The partition table as the phone currently holds it (slot attributes included).
    pub fn gpt(&self) -> &Gpt {
        &self.gpt
    }

    /// Visit the regions covering `[offset, offset + len)` in order, with the piece's offset
    /// within the region and its position within the request.
    fn for_each_piece(
        &mut self,
        offset: u64,
        len: u64,
        mut f: impl FnMut(&mut Region, u64, std::ops::Range<usize>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let end = offset + len;
        let mut pos = offset;
        while pos < end {
            let hit = self
                .partitions
                .iter()
                .position(|r| r.start <= pos && pos < r.end);
            let (region, piece_end) = match hit {
                Some(i) => {
                    let r = &mut self.partitions[i];
                    let e = r.end.min(end);
                    (r, e)
                }
                None => {
                    let next_start = self
                        .partitions
                        .iter()
                        .map(|r| r.start)
                        .filter(|&s| s > pos)
                        .min()
                        .unwrap_or(u64::MAX);
                    (&mut self.rest, next_start.min(end))
                }
            };
            let within = pos - region.start;
            let range = (pos - offset) as usize..(piece_end - offset) as usize;
            f(region, within, range)?;
            pos = piece_end;
        }
        Ok(())
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<(), StorageError> {
        if !fits(offset, len, self.size_bytes()) {
            return Err(StorageError::OutOfRange {
                what: format!("LUN {}", self.index),
                offset,
                len,
                size: self.size_bytes(),
            });
        }
        Ok(())
    }

    fn touches_table(&self, offset: u64, len: u64) -> bool {
        let ss = u64::from(self.sector_size);
        let first_usable = self.gpt.first_usable_lba * ss;
        let after_usable = (self.gpt.last_usable_lba + 1) * ss;
        offset < first_usable || offset + len > after_usable
    }
}

/// All LUNs of one phone, plus the write-dropping fault.
pub struct Storage {
    luns: Vec<Lun>,
    mode: StorageMode,
    drop_writes: DropWrites,
}

impl Storage {
    /// Create the LUNs and write a GPT on each (GUIDs derived from `seed`, e.g. the serial, so
    /// the same phone description always gets the same GUIDs). In file mode a LUN whose file
    /// already holds a GPT with the same partitions keeps its attributes (slot state survives a
    /// simulator restart).
    pub fn create(
        seed: &str,
        luns: &[LunSpec],
        mode: StorageMode,
    ) -> Result<Storage, StorageError> {
        if let StorageMode::Files(dir) = &mode {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Io {
                path: dir.clone(),
                source: e,
            })?;
        }
        let mut seen = std::collections::HashSet::new();
        for spec in luns {
            for p in &spec.partitions {
                if !seen.insert(p.name.as_str()) {
                    return Err(StorageError::Layout(format!(
                        "partition {:?} is defined twice (names are unique across LUNs)",
                        p.name
                    )));
                }
                if p.name.contains(['/', '\\']) || p.name.starts_with('.') {
                    return Err(StorageError::Layout(format!(
                        "partition name {:?} cannot be a file name",
                        p.name
                    )));
                }
            }
        }
        let mut built = Vec::with_capacity(luns.len());
        for (index, spec) in luns.iter().enumerate() {
            built.push(Self::create_lun(seed, index as u32, spec, &mode)?);
        }
        Ok(Storage {
            luns: built,
            mode,
            drop_writes: DropWrites::None,
        })
    }

    fn create_lun(
        seed: &str,
        index: u32,
        spec: &LunSpec,
        mode: &StorageMode,
    ) -> Result<Lun, StorageError> {
        let ss = u64::from(spec.sector_size);
        let needed: u64 = spec
            .partitions
            .iter()
            .map(|p| p.size_bytes.div_ceil(ALIGN) * ALIGN)
            .sum::<u64>()
            + 2 * ALIGN;
        let size = spec.size_bytes.unwrap_or(needed);
        let sectors = size / ss;
        let mut table = Gpt::new(
            spec.sector_size,
            sectors,
            Guid::derived(&format!("{seed}/lun{index}")),
        )?;
        for p in &spec.partitions {
            table.add_partition(
                &p.name,
                p.type_guid.unwrap_or_else(|| gpt::types::for_name(&p.name)),
                Guid::derived(&format!("{seed}/{}", p.name)),
                p.size_bytes,
                ALIGN,
            )?;
        }
        let region_backing = |name: &str, len: u64| match mode {
            StorageMode::Memory => Ok(Backing::memory()),
            StorageMode::Files(dir) => Backing::file(&dir.join(format!("{name}.img")), len),
            StorageMode::Temporary => Backing::temporary(name, len),
        };
        let mut partitions = Vec::new();
        for p in &table.partitions {
            let len = p.size_bytes(spec.sector_size);
            partitions.push(Region {
                name: p.name.clone(),
                start: p.start_byte(spec.sector_size),
                end: p.start_byte(spec.sector_size) + len,
                backing: region_backing(&p.name, len)?,
            });
        }
        partitions.sort_by_key(|r| r.start);
        let rest_name = format!("lun{index}");
        let rest = Region {
            backing: region_backing(&rest_name, sectors * ss)?,
            name: rest_name,
            start: 0,
            end: sectors * ss,
        };
        let mut lun = Lun {
            index,
            sector_size: spec.sector_size,
            sectors,
            gpt: table,
            partitions,
            rest,
        };
        let kept = Self::stored_gpt(&mut lun).filter(|old| same_layout(old, &lun.gpt));
        match kept {
            Some(old) => lun.gpt = old,
            None => {
                if !spec.partitions.is_empty() {
                    slots::initialise(&mut lun.gpt);
                }
                Self::write_table(&mut lun)?;
            }
        }
        Ok(lun)
    }

    /// The GPT currently stored on a LUN, if it parses.
    fn stored_gpt(lun: &mut Lun) -> Option<Gpt> {
        let (ss, sectors) = (lun.sector_size, lun.sectors);
        let rest = &mut lun.rest;
        Gpt::read(
            |off, buf| {
                rest.backing
                    .read(off, buf)
                    .map_err(|e| std::io::Error::other(e.to_string()))
            },
            ss,
            sectors,
        )
        .ok()
    }

    /// Write both GPT copies from `lun.gpt` (bypasses the drop-writes fault: it models the
    /// bootloader's own metadata updates, which the tests of dropped writes do not target).
    fn write_table(lun: &mut Lun) -> Result<(), StorageError> {
        let enc = lun.gpt.encode()?;
        lun.rest.backing.write(0, &enc.primary)?;
        lun.rest
            .backing
            .write(enc.backup_lba * u64::from(lun.sector_size), &enc.backup)?;
        Ok(())
    }

    pub fn luns(&self) -> &[Lun] {
        &self.luns
    }

    pub fn lun(&self, lun: u32) -> Result<&Lun, StorageError> {
        self.luns.get(lun as usize).ok_or(StorageError::NoSuchLun {
            lun,
            count: self.luns.len(),
        })
    }

    fn lun_mut(&mut self, lun: u32) -> Result<&mut Lun, StorageError> {
        let count = self.luns.len();
        self.luns
            .get_mut(lun as usize)
            .ok_or(StorageError::NoSuchLun { lun, count })
    }

    pub fn mode(&self) -> &StorageMode {
        &self.mode
    }

    pub fn set_drop_writes(&mut self, drop: DropWrites) {
        self.drop_writes = drop;
    }

    pub fn drop_writes(&self) -> &DropWrites {
        &self.drop_writes
    }

    fn dropped(&self, region: &str) -> bool {
        self.drop_writes.covers(region)
    }

    /// Every partition on every LUN, in LUN then table order.
    pub fn partitions(&self) -> Vec<PartitionInfo> {
        self.luns
            .iter()
            .flat_map(|l| l.gpt.partitions.iter().map(move |p| (l, p)))
            .map(|(l, p)| self.info(l, p))
            .collect()
    }

    fn info(&self, lun: &Lun, p: &gpt::Partition) -> PartitionInfo {
        PartitionInfo {
            name: p.name.clone(),
            lun: lun.index,
            sector_size: lun.sector_size,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            size_bytes: p.size_bytes(lun.sector_size),
            type_guid: p.type_guid,
            unique_guid: p.unique_guid,
            attributes: p.attributes,
            path: lun
                .partitions
                .iter()
                .find(|r| r.name == p.name)
                .and_then(|r| r.backing.path().map(Path::to_path_buf)),
        }
    }

    /// Find a partition by its GPT label.
    pub fn partition(&self, name: &str) -> Option<PartitionInfo> {
        self.luns
            .iter()
            .find_map(|l| l.gpt.find(name).map(|p| self.info(l, p)))
    }

    fn locate(&self, name: &str, offset: u64, len: u64) -> Result<(u32, u64), StorageError> {
        let info = self
            .partition(name)
            .ok_or_else(|| StorageError::NoSuchPartition(name.to_string()))?;
        if !fits(offset, len, info.size_bytes) {
            return Err(StorageError::OutOfRange {
                what: format!("partition {name}"),
                offset,
                len,
                size: info.size_bytes,
            });
        }
        Ok((
            info.lun,
            info.first_lba * u64::from(info.sector_size) + offset,
        ))
    }

    /// Read `buf.len()` bytes of partition `name` from `offset`.
    pub fn read_partition(
        &mut self,
        name: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), StorageError> {
        let (lun, at) = self.locate(name, offset, buf.len() as u64)?;
        self.read_lun(lun, at, buf)
    }

    /// Write `data` into partition `name` at `offset` (subject to the drop-writes fault).
    pub fn write_partition(
        &mut self,
        name: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let (lun, at) = self.locate(name, offset, data.len() as u64)?;
        self.write_lun(lun, at, data)
    }

    /// Zero `len` bytes of partition `name` from `offset` (what erase does on these phones:
    /// a UFS/eMMC discard reads back as zeros).
    pub fn discard_partition(
        &mut self,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<(), StorageError> {
        let (lun, at) = self.locate(name, offset, len)?;
        self.discard_lun(lun, at, len)
    }

    /// Read LUN bytes (EDL's view: sectors × sector size).
    pub fn read_lun(&mut self, lun: u32, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        let l = self.lun_mut(lun)?;
        l.check_range(offset, buf.len() as u64)?;
        l.for_each_piece(offset, buf.len() as u64, |region, within, range| {
            region.backing.read(within, &mut buf[range])
        })
    }

    /// Write LUN bytes. Writes into a partition's range land in that partition's region; a
    /// write over the GPT areas is stored and, when it leaves a valid table with the same
    /// partitions, its attributes (A/B slot state) become the phone's.
    pub fn write_lun(&mut self, lun: u32, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let drop = self.drop_writes.clone();
        let l = self.lun_mut(lun)?;
        l.check_range(offset, data.len() as u64)?;
        l.for_each_piece(offset, data.len() as u64, |region, within, range| {
            if drop.covers(&region.name) {
                return Ok(());
            }
            region.backing.write(within, &data[range])
        })?;
        if l.touches_table(offset, data.len() as u64) {
            Self::adopt_written_table(l);
        }
        Ok(())
    }

    /// Zero LUN bytes (EDL `erase`).
    pub fn discard_lun(&mut self, lun: u32, offset: u64, len: u64) -> Result<(), StorageError> {
        let drop = self.drop_writes.clone();
        let l = self.lun_mut(lun)?;
        l.check_range(offset, len)?;
        l.for_each_piece(offset, len, |region, within, range| {
            if drop.covers(&region.name) {
                return Ok(());
            }
            region
                .backing
                .discard(within, (range.end - range.start) as u64)
        })?;
        if l.touches_table(offset, len) {
            Self::adopt_written_table(l);
        }
        Ok(())
    }

    fn adopt_written_table(lun: &mut Lun) {
        match Self::stored_gpt(lun) {
            Some(new) if same_layout(&new, &lun.gpt) => lun.gpt = new,
            Some(_) => tracing::warn!(
                lun = lun.index,
                "a GPT with a different partition layout was written; the simulator keeps \
                 its partition map (regions cannot move) until it is rebuilt"
            ),
            // A table being rewritten piecewise is invalid in between; keep the last good one.
            None => {}
        }
    }

    /// Bytes of memory holding written data across all regions (0 in file mode).
    pub fn memory_in_use(&self) -> u64 {
        self.luns
            .iter()
            .flat_map(|l| l.partitions.iter().chain(std::iter::once(&l.rest)))
            .map(|r| r.backing.memory_in_use())
            .sum()
    }

    /// Is a write to this partition currently swallowed by the drop-writes fault?
    pub fn drops_writes_to(&self, partition: &str) -> bool {
        self.dropped(partition)
    }
}

/// Same partitions (names, ranges, types): only attributes may differ.
fn same_layout(a: &Gpt, b: &Gpt) -> bool {
    a.sector_size == b.sector_size
        && a.partitions.len() == b.partitions.len()
        && a.partitions.iter().zip(&b.partitions).all(|(x, y)| {
            x.name == y.name
                && x.first_lba == y.first_lba
                && x.last_lba == y.last_lba
                && x.type_guid == y.type_guid
        })
}

/// Where a `Seek` over a partition-sized writer of `size` bytes at `pos` lands for `to`: the
/// writers that stream images into a simulated phone's partitions share it.
pub(crate) fn seek_within(pos: u64, size: u64, to: std::io::SeekFrom) -> std::io::Result<u64> {
    let target = match to {
        std::io::SeekFrom::Start(n) => Some(n),
        std::io::SeekFrom::Current(d) => pos.checked_add_signed(d),
        std::io::SeekFrom::End(d) => size.checked_add_signed(d),
    };
    target.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek out of range"))
}

#[cfg(test)]
mod tests;
