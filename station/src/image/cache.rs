//! A read-ahead cache for sources where every request is a round trip (a phone's partition
//! read through fastboot `fetch:` or Firehose `<read>`). erofs asks for one 4 KiB block at a
//! time and ext4 for a superblock, a descriptor, an inode: small reads that lie close
//! together. The cache turns each miss into one aligned window read (64–256 KiB) and serves the
//! neighbours from memory; reads of a window or more go straight through.
//!
//! Bounded: at most `windows` windows of `window` bytes are held, least recently used dropped
//! first. A window never reaches past the limit it is given (the end of the filesystem or of
//! the logical partition), so read-ahead stays inside the partition; if a window read fails
//! (a filesystem that claims more than its partition holds), the exact read is made instead.

use std::io;

use crate::read_at::ReadAt;

/// Window size and count; [`CacheConfig::OFF`] passes every read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes per window, a power of two from 4 KiB to [`CacheConfig::MAX_WINDOW`].
    pub window: usize,
    /// Windows held at most (memory: `window × windows`), up to [`CacheConfig::MAX_WINDOWS`].
    pub windows: usize,
}

impl CacheConfig {
    pub const OFF: CacheConfig = CacheConfig {
        window: 0,
        windows: 0,
    };
    /// What verification over a phone link uses: 128 KiB windows, 4 MiB at most.
    pub const PHONE: CacheConfig = CacheConfig {
        window: 128 << 10,
        windows: 32,
    };
    pub const MIN_WINDOW: usize = 4 << 10;
    pub const MAX_WINDOW: usize = 1 << 20;
    pub const MAX_WINDOWS: usize = 256;

    /// The configuration actually used: a window rounded up to a power of two and clamped,
    /// the count clamped; either at 0 turns the cache off.
    pub fn normalised(self) -> CacheConfig {
        if self.window == 0 || self.windows == 0 {
            return CacheConfig::OFF;
        }
        CacheConfig {
            window: self
                .window
                .clamp(Self::MIN_WINDOW, Self::MAX_WINDOW)
                .next_power_of_two(),
            windows: self.windows.min(Self::MAX_WINDOWS),
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
    /// Reads made of the source (windows, pass-through reads, fallbacks).
    pub fetches: u64,
}

#[derive(Debug)]
struct Window {
    start: u64,
    data: Vec<u8>,
    last_used: u64,
}

impl Window {
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
    windows: Vec<Window>,
    clock: u64,
    stats: CacheStats,
}

impl<S: ReadAt> BlockCache<S> {
    pub fn new(inner: S, config: CacheConfig) -> Self {
        Self {
            inner,
            config: config.normalised(),
            limit: None,
            windows: Vec::new(),
            clock: 0,
            stats: CacheStats::default(),
        }
    }

    /// No window will reach past `end` from now on (the tighter of this and earlier limits).
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

    /// Reads the windows `first..=last` (indexes) in one request and keeps them.
    fn fill(&mut self, first: u64, last: u64, wanted: (u64, usize)) -> io::Result<bool> {
        let window = self.config.window as u64;
        let start = first * window;
        let mut end = (last + 1).saturating_mul(window);
        if let Some(limit) = self.limit {
            end = end.min(limit);
        }
        let mut data = vec![0u8; (end - start) as usize];
        if let Err(error) = self.fetch(start, &mut data) {
            // Only the read-ahead may have been refused; the exact read decides.
            if (start, data.len()) == wanted {
                return Err(error);
            }
            return Ok(false);
        }
        let mut at = start;
        for chunk in data.chunks(self.config.window) {
            self.insert(at, chunk.to_vec());
            at += chunk.len() as u64;
        }
        Ok(true)
    }

    fn insert(&mut self, start: u64, data: Vec<u8>) {
        self.windows.retain(|w| w.start != start);
        if self.windows.len() >= self.config.windows {
            if let Some(oldest) = self
                .windows
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| w.last_used)
                .map(|(i, _)| i)
            {
                self.windows.swap_remove(oldest);
            }
        }
        self.clock += 1;
        self.windows.push(Window {
            start,
            data,
            last_used: self.clock,
        });
    }

    fn cached(&self, index: u64) -> Option<usize> {
        let start = index * self.config.window as u64;
        self.windows.iter().position(|w| w.start == start)
    }

    /// Copies `buf` out of the cached windows, if they hold all of it.
    fn copy_out(&mut self, offset: u64, buf: &mut [u8]) -> bool {
        let window = self.config.window as u64;
        let end = offset + buf.len() as u64;
        let mut at = offset;
        while at < end {
            let Some(i) = self.cached(at / window) else {
                return false;
            };
            self.clock += 1;
            let w = &mut self.windows[i];
            w.last_used = self.clock;
            if w.end() <= at {
                return false;
            }
            let take = (w.end().min(end) - at) as usize;
            let from = (at - w.start) as usize;
            let dest = (at - offset) as usize;
            buf[dest..dest + take].copy_from_slice(&w.data[from..from + take]);
            at += take as u64;
        }
        true
    }
}

impl<S: ReadAt> ReadAt for BlockCache<S> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.stats.requests += 1;
        let window = self.config.window as u64;
        let len = buf.len() as u64;
        let end = offset.checked_add(len);
        let beyond_limit = match (end, self.limit) {
            (None, _) => true,
            (Some(end), Some(limit)) => end > limit,
            (Some(_), None) => false,
        };
        if self.config.windows == 0 || len >= window || len == 0 || beyond_limit {
            return self.fetch(offset, buf);
        }
        if self.copy_out(offset, buf) {
            self.stats.hits += 1;
            return Ok(());
        }
        let first = offset / window;
        let last = (offset + len - 1) / window;
        // A read spans at most two windows (it is shorter than one): read the missing ones
        // together when both are missing.
        let missing: Vec<u64> = (first..=last)
            .filter(|&i| self.cached(i).is_none())
            .collect();
        let filled = match (missing.first(), missing.last()) {
            (Some(&a), Some(&b)) => self.fill(a, b, (offset, buf.len()))?,
            _ => true,
        };
        if filled && self.copy_out(offset, buf) {
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
        window: 8192,
        windows: 4,
    };

    #[test]
    fn neighbouring_small_reads_cost_one_window() {
        let mut c = cache(100_000, SMALL);
        let reference = data(100_000);
        for offset in (0..8192u64).step_by(512) {
            assert_eq!(
                read(&mut c, offset, 512),
                &reference[offset as usize..][..512]
            );
        }
        let source = c.into_inner();
        assert_eq!(source.reads(), 1);
        assert_eq!(source.bytes_read(), 8192);
    }

    #[test]
    fn a_read_across_two_missing_windows_is_one_request() {
        let mut c = cache(100_000, SMALL);
        assert_eq!(read(&mut c, 8000, 400), &data(100_000)[8000..8400]);
        assert_eq!(c.stats().fetches, 1);
        let source = c.into_inner();
        assert_eq!((source.reads(), source.bytes_read()), (1, 16384));
    }

    #[test]
    fn large_reads_pass_through_and_are_not_kept() {
        let mut c = cache(100_000, SMALL);
        assert_eq!(read(&mut c, 100, 8192), &data(100_000)[100..8292]);
        assert_eq!(read(&mut c, 100, 100), &data(100_000)[100..200]);
        assert_eq!(c.stats().fetches, 2);
    }

    #[test]
    fn memory_is_bounded_least_recently_used_dropped_first() {
        let mut c = cache(100_000, SMALL);
        for w in 0..4u64 {
            read(&mut c, w * 8192, 16);
        }
        read(&mut c, 0, 16); // window 0 is now the most recent
        read(&mut c, 4 * 8192, 16); // evicts window 1
        assert_eq!(c.windows.len(), 4);
        let fetches = c.stats().fetches;
        read(&mut c, 0, 16);
        assert_eq!(c.stats().fetches, fetches, "window 0 kept");
        read(&mut c, 8192, 16);
        assert_eq!(c.stats().fetches, fetches + 1, "window 1 dropped");
    }

    #[test]
    fn windows_stop_at_the_limit_and_fall_back_past_the_source() {
        let mut c = cache(10_000, SMALL);
        c.limit_to(9000);
        assert_eq!(read(&mut c, 8500, 100), &data(10_000)[8500..8600]);
        let source = c.into_inner();
        assert_eq!(source.bytes_read(), 9000 - 8192, "clipped to the limit");

        // No limit and a source shorter than the window: the window fails, the exact read
        // is made.
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
            window: 4096,
            windows: 0
        }
        .is_off());
        let c = CacheConfig {
            window: 100_000,
            windows: 10_000,
        }
        .normalised();
        assert_eq!(c.window, 128 << 10);
        assert_eq!(c.windows, CacheConfig::MAX_WINDOWS);
        assert_eq!(
            CacheConfig {
                window: 64 << 20,
                windows: 1
            }
            .normalised()
            .window,
            CacheConfig::MAX_WINDOW
        );
    }

    #[test]
    fn off_passes_everything_through() {
        let mut c = cache(10_000, CacheConfig::OFF);
        read(&mut c, 0, 10);
        read(&mut c, 0, 10);
        assert_eq!(c.into_inner().reads(), 2);
    }
}
