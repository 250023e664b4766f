//! A read-ahead cache for sources where every request is a round trip (a phone's partition
//! read through fastboot `fetch:` or Firehose `<read>`). erofs asks for one 4 KiB block at a
//! time and ext4 for a superblock, a descriptor, an inode: small reads, often of neighbours,
//! and long sequential runs through a compressed file's clusters.
//!
//! So the cache reads ahead as the kernel does: a miss fetches whole 4 KiB blocks; a miss that
//! continues the previous fetch doubles the read-ahead, up to the configured maximum, and a
//! miss elsewhere starts again from one block. Scattered metadata costs what it would
//! uncached; a sequential run costs a handful of large requests. Reads of the maximum or
//! more go straight through.
//!
//! Bounded: at most `entries` fetched runs are held (each at most the maximum read-ahead),
//! least recently used dropped first. A fetch never reaches past the limit it is given (the
//! end of the filesystem or of the logical partition), so read-ahead stays inside the
//! partition; if a read-ahead fails (a filesystem that claims more than its partition holds),
//! the exact read is made instead.

use std::io;

use crate::read_at::ReadAt;

/// The read-ahead granule: what a miss fetches at least, aligned.
pub const BLOCK: u64 = 4096;

/// Read-ahead and memory bounds; [`CacheConfig::OFF`] passes every read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Largest read-ahead in bytes, a power of two from [`CacheConfig::MIN_READ_AHEAD`] to
    /// [`CacheConfig::MAX_READ_AHEAD`]; reads this long or longer are not cached.
    pub max_read_ahead: usize,
    /// Fetched runs held at most (memory: at most `max_read_ahead × entries`), up to
    /// [`CacheConfig::MAX_ENTRIES`].
    pub entries: usize,
}

impl CacheConfig {
    pub const OFF: CacheConfig = CacheConfig {
        max_read_ahead: 0,
        entries: 0,
    };
    /// What verification over a phone link uses: up to 256 KiB ahead, 4 MiB held at most.
    pub const PHONE: CacheConfig = CacheConfig {
        max_read_ahead: 256 << 10,
        entries: 16,
    };
    pub const MIN_READ_AHEAD: usize = 2 * BLOCK as usize;
    pub const MAX_READ_AHEAD: usize = 1 << 20;
    pub const MAX_ENTRIES: usize = 256;

    /// The configuration actually used: the read-ahead rounded up to a power of two and
    /// clamped, the count clamped; either at 0 turns the cache off.
    pub fn normalised(self) -> CacheConfig {
        if self.max_read_ahead == 0 || self.entries == 0 {
            return CacheConfig::OFF;
        }
        CacheConfig {
            max_read_ahead: self
                .max_read_ahead
                .clamp(Self::MIN_READ_AHEAD, Self::MAX_READ_AHEAD)
                .next_power_of_two(),
            entries: self.entries.min(Self::MAX_ENTRIES),
        }
    }

    pub fn is_off(self) -> bool {
        self.normalised() == CacheConfig::OFF
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig::OFF
    }
}

/// What the cache did: requests it answered and what it asked of its source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads asked of the cache.
    pub requests: u64,
    /// Of those, answered from memory alone.
    pub hits: u64,
    /// Reads made of the source (read-aheads, pass-through reads, fallbacks).
    pub fetches: u64,
}

#[derive(Debug)]
struct Entry {
    start: u64,
    data: Vec<u8>,
    last_used: u64,
}

impl Entry {
    fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

/// A [`ReadAt`] with the read-ahead cache described in the module documentation.
#[derive(Debug)]
pub struct BlockCache<S> {
    inner: S,
    config: CacheConfig,
    limit: Option<u64>,
    entries: Vec<Entry>,
    clock: u64,
    /// The last read-ahead: where it ran and how long it was.
    last_fetch: Option<(u64, u64)>,
    stats: CacheStats,
}

impl<S: ReadAt> BlockCache<S> {
    pub fn new(inner: S, config: CacheConfig) -> Self {
        Self {
            inner,
            config: config.normalised(),
            limit: None,
            entries: Vec::new(),
            clock: 0,
            last_fetch: None,
            stats: CacheStats::default(),
        }
    }

    /// No read-ahead will reach past `end` from now on (the tighter of this and earlier
    /// limits).
    pub fn limit_to(&mut self, end: u64) {
        self.limit = Some(self.limit.map_or(end, |limit| limit.min(end)));
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    fn fetch(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.stats.fetches += 1;
        self.inner.read_exact_at(offset, buf)
    }

    /// How far to read for a miss at `start` (block-aligned): double the last read-ahead if
    /// this continues it, else one granule.
    fn read_ahead_for(&self, start: u64) -> u64 {
        let max = self.config.max_read_ahead as u64;
        match self.last_fetch {
            Some((at, len)) if start >= at && start <= at + len => (len * 2).min(max),
            _ => CacheConfig::MIN_READ_AHEAD as u64,
        }
    }

    /// Fetches the run around `offset..end` and keeps it; `false` if only the exact read may
    /// be tried.
    fn fill(&mut self, offset: u64, end: u64) -> io::Result<bool> {
        let start = offset - offset % BLOCK;
        let mut run_end = end
            .div_ceil(BLOCK)
            .saturating_mul(BLOCK)
            .max(start.saturating_add(self.read_ahead_for(start)));
        if let Some(limit) = self.limit {
            run_end = run_end.min(limit);
        }
        let mut data = vec![0u8; (run_end - start) as usize];
        if let Err(error) = self.fetch(start, &mut data) {
            if (start, run_end) == (offset, end) {
                return Err(error);
            }
            return Ok(false);
        }
        self.last_fetch = Some((start, run_end - start));
        self.insert(start, data);
        Ok(true)
    }

    fn insert(&mut self, start: u64, data: Vec<u8>) {
        if self.entries.len() >= self.config.entries {
            if let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            {
                self.entries.swap_remove(oldest);
            }
        }
        self.clock += 1;
        self.entries.push(Entry {
            start,
            data,
            last_used: self.clock,
        });
    }

    /// Copies `buf` out of the held runs, if they hold all of it.
    fn copy_out(&mut self, offset: u64, buf: &mut [u8]) -> bool {
        let end = offset + buf.len() as u64;
        let mut at = offset;
        while at < end {
            let Some(entry) = self
                .entries
                .iter_mut()
                .filter(|e| e.start <= at && at < e.end())
                .max_by_key(|e| e.end())
            else {
                return false;
            };
            self.clock += 1;
            entry.last_used = self.clock;
            let take = (entry.end().min(end) - at) as usize;
            let from = (at - entry.start) as usize;
            let dest = (at - offset) as usize;
            buf[dest..dest + take].copy_from_slice(&entry.data[from..from + take]);
            at += take as u64;
        }
        true
    }
}

impl<S: ReadAt> ReadAt for BlockCache<S> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.stats.requests += 1;
        let len = buf.len() as u64;
        let Some(end) = offset.checked_add(len) else {
            return self.fetch(offset, buf);
        };
        let beyond_limit = self.limit.is_some_and(|limit| end > limit);
        if self.config.entries == 0
            || len >= self.config.max_read_ahead as u64
            || len == 0
            || beyond_limit
        {
            return self.fetch(offset, buf);
        }
        if self.copy_out(offset, buf) {
            self.stats.hits += 1;
            return Ok(());
        }
        if self.fill(offset, end)? && self.copy_out(offset, buf) {
            return Ok(());
        }
        self.fetch(offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_at::CountingReader;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn cache(len: usize, config: CacheConfig) -> BlockCache<CountingReader<Vec<u8>>> {
        BlockCache::new(CountingReader::new(data(len)), config)
    }

    fn read(c: &mut impl ReadAt, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        c.read_exact_at(offset, &mut buf).unwrap();
        buf
    }

    const SMALL: CacheConfig = CacheConfig {
        max_read_ahead: 64 << 10,
        entries: 4,
    };

    #[test]
    fn a_scattered_small_read_costs_its_blocks_and_serves_its_neighbours() {
        let mut c = cache(1 << 20, SMALL);
        let reference = data(1 << 20);
        assert_eq!(read(&mut c, 500_000, 256), &reference[500_000..500_256]);
        assert_eq!(read(&mut c, 500_256, 256), &reference[500_256..500_512]);
        assert_eq!(c.stats().hits, 1);
        let source = c.into_inner();
        assert_eq!(source.reads(), 1);
        assert_eq!(source.bytes_read(), 8192, "two blocks, not a window");
    }

    #[test]
    fn sequential_reads_double_the_read_ahead_up_to_the_maximum() {
        let mut c = cache(2 << 20, SMALL);
        let reference = data(2 << 20);
        for offset in (0..(1u64 << 20)).step_by(4096) {
            assert_eq!(
                read(&mut c, offset, 4096),
                &reference[offset as usize..][..4096]
            );
        }
        // 8 + 16 + 32 KiB, then 64 KiB runs from 56 KiB on: 3 + 16 requests for 256 blocks,
        // and no more than the last run read ahead.
        assert_eq!(c.stats().fetches, 19);
        assert_eq!(c.into_inner().bytes_read(), (56 + 16 * 64) << 10);
    }

    #[test]
    fn large_reads_pass_through_and_are_not_kept() {
        let mut c = cache(1 << 20, SMALL);
        assert_eq!(
            read(&mut c, 100, 64 << 10),
            &data(1 << 20)[100..100 + (64 << 10)]
        );
        assert_eq!(read(&mut c, 100, 100), &data(1 << 20)[100..200]);
        assert_eq!(c.stats().fetches, 2);
    }

    #[test]
    fn memory_is_bounded_least_recently_used_dropped_first() {
        let mut c = cache(1 << 20, SMALL);
        for run in 0..4u64 {
            read(&mut c, run * 100_000, 16);
        }
        read(&mut c, 0, 16); // run 0 is now the most recent
        read(&mut c, 400_000, 16); // evicts run 1
        assert_eq!(c.entries.len(), 4);
        let fetches = c.stats().fetches;
        read(&mut c, 0, 16);
        assert_eq!(c.stats().fetches, fetches, "run 0 kept");
        read(&mut c, 100_000, 16);
        assert_eq!(c.stats().fetches, fetches + 1, "run 1 dropped");
    }

    #[test]
    fn read_ahead_stops_at_the_limit_and_falls_back_past_the_source() {
        let mut c = cache(10_000, SMALL);
        c.limit_to(9000);
        assert_eq!(read(&mut c, 8500, 100), &data(10_000)[8500..8600]);
        let source = c.into_inner();
        assert_eq!(source.bytes_read(), 9000 - 8192, "clipped to the limit");

        // No limit and a source shorter than the read-ahead: it fails, the exact read is made.
        let mut c = cache(9000, SMALL);
        assert_eq!(read(&mut c, 8500, 100), &data(9000)[8500..8600]);
        assert_eq!(c.stats().fetches, 2);
        // Past the end is still an error.
        assert!(c.read_exact_at(8990, &mut [0u8; 20]).is_err());
    }

    #[test]
    fn configurations_are_normalised_and_bounded() {
        assert!(CacheConfig::OFF.is_off());
        assert!(CacheConfig {
            max_read_ahead: 4096,
            entries: 0
        }
        .is_off());
        let c = CacheConfig {
            max_read_ahead: 100_000,
            entries: 10_000,
        }
        .normalised();
        assert_eq!(c.max_read_ahead, 128 << 10);
        assert_eq!(c.entries, CacheConfig::MAX_ENTRIES);
        let c = CacheConfig {
            max_read_ahead: 64 << 20,
            entries: 1,
        };
        assert_eq!(c.normalised().max_read_ahead, CacheConfig::MAX_READ_AHEAD);
    }

    #[test]
    fn off_passes_everything_through() {
        let mut c = cache(10_000, CacheConfig::OFF);
        read(&mut c, 0, 10);
        read(&mut c, 0, 10);
        assert_eq!(c.into_inner().reads(), 2);
    }
}
