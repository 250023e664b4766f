//! The host side of a download data phase as a `Write`, for data produced on the fly (sparse
//! pieces): it refuses bytes beyond the announced size, keeps the transport's own error for the
//! caller, and sends what it is given with as few copies as the link allows.

use std::io::{ErrorKind, Write};
use std::time::Duration;

use crate::progress::{ProgressEvent, ProgressSink};
use crate::transport::{Transport, TransportError};

/// Writes at least this long skip the buffer (see [`LinkWriter::write_direct`]).
const DIRECT_WRITE_MIN: usize = 64 * 1024;

/// Every data-phase write but the last is a whole multiple of this, as the AOSP client keeps its
/// USB writes whole multiples of 1 KiB: a bulk transfer that does not end on a max-packet
/// boundary ends in a short packet, which some bootloaders' download loops take for the end of
/// the data. 4 KiB is a multiple of every USB max packet size (64, 512, 1024).
pub(crate) const LINK_WRITE_ALIGN: usize = 4096;

pub(crate) struct LinkWriter<'a, T: Transport> {
    link: &'a mut T,
    /// Small writes (sparse headers, FILL values) gather here, up to `limit` bytes.
    buf: Vec<u8>,
    /// Most bytes sent in one link write: the buffer's capacity rounded down to a whole
    /// multiple of [`LINK_WRITE_ALIGN`].
    limit: usize,
    declared: u64,
    written: u64,
    timeout: Duration,
    progress: &'a dyn ProgressSink,
    failure: Option<TransportError>,
}

/// What a data phase left behind: the buffer (for reuse), the bytes accepted, and the
/// transport's error if the link failed.
pub(crate) struct Finished {
    pub buf: Vec<u8>,
    pub written: u64,
    pub failure: Option<TransportError>,
}

impl<'a, T: Transport> LinkWriter<'a, T> {
    /// A writer for a data phase of `declared` bytes. `buf` is emptied; its capacity, rounded
    /// down to whole [`LINK_WRITE_ALIGN`]s (one at least), bounds every write to the link.
    pub(crate) fn new(
        link: &'a mut T,
        mut buf: Vec<u8>,
        declared: u64,
        timeout: Duration,
        progress: &'a dyn ProgressSink,
    ) -> Self {
        buf.clear();
        let limit = (buf.capacity() / LINK_WRITE_ALIGN).max(1) * LINK_WRITE_ALIGN;
        buf.reserve(limit);
        LinkWriter {
            link,
            buf,
            limit,
            declared,
            written: 0,
            timeout,
            progress,
            failure: None,
        }
    }

    /// Hand back the parts (what is still buffered is dropped: call [`Self::flush_buf`] first).
    pub(crate) fn finish(self) -> Finished {
        Finished {
            buf: self.buf,
            written: self.written,
            failure: self.failure,
        }
    }

    /// Send what is buffered.
    pub(crate) fn flush_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let sent = self.send(&buf);
        self.buf = buf;
        self.buf.clear();
        sent
    }

    fn send(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.link.write(data, self.timeout) {
            self.failure = Some(e);
            return Err(std::io::Error::other("link failed"));
        }
        self.progress.event(ProgressEvent::Bytes {
            bytes: data.len() as u64,
        });
        Ok(())
    }

    /// Large writes (the RAW data of a sparse piece) go to the link from the caller's memory:
    /// the buffer is topped up to an aligned length and sent, then the aligned bulk of `data`
    /// follows without being copied (one copy of the image fewer per download, as the AOSP
    /// client's sparse callback does); the unaligned tail is left for the next call. Returns the
    /// bytes consumed, or `None` when `data` is to be buffered instead.
    fn write_direct(&mut self, data: &[u8]) -> std::io::Result<Option<usize>> {
        let top_up = (LINK_WRITE_ALIGN - self.buf.len() % LINK_WRITE_ALIGN) % LINK_WRITE_ALIGN;
        if data.len() < DIRECT_WRITE_MIN {
            return Ok(None);
        }
        if !self.buf.is_empty() {
            self.buf.extend_from_slice(&data[..top_up]);
            self.written += top_up as u64;
            self.flush_buf()?;
        }
        let rest = &data[top_up..];
        let direct = (rest.len() - rest.len() % LINK_WRITE_ALIGN).min(self.limit);
        self.send(&rest[..direct])?;
        self.written += direct as u64;
        Ok(Some(top_up + direct))
    }
}

impl<T: Transport> Write for LinkWriter<'_, T> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.written + data.len() as u64 > self.declared {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!(
                    "more than the {} bytes announced to the device",
                    self.declared
                ),
            ));
        }
        if let Some(n) = self.write_direct(data)? {
            return Ok(n);
        }
        let room = self.limit - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        if self.buf.len() >= self.limit {
            self.flush_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    const T: Duration = Duration::from_secs(1);

    /// A link that keeps every write as it came, or fails after `fail_after` writes.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        fail_after: Option<usize>,
    }

    impl Transport for Recorder {
        fn write(&mut self, data: &[u8], _timeout: Duration) -> Result<(), TransportError> {
            if self.fail_after == Some(self.writes.len()) {
                return Err(TransportError::Disconnected);
            }
            self.writes.push(data.to_vec());
            Ok(())
        }
        fn read_packet(&mut self, _: &mut [u8], t: Duration) -> Result<usize, TransportError> {
            Err(TransportError::Timeout(t))
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// Feed `parts` through a writer with a buffer of `capacity`; the link's writes.
    fn run(parts: &[Vec<u8>], capacity: usize) -> Vec<Vec<u8>> {
        let mut link = Recorder::default();
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut w = LinkWriter::new(
            &mut link,
            Vec::with_capacity(capacity),
            total as u64,
            T,
            &NoProgress,
        );
        for p in parts {
            w.write_all(p).unwrap();
        }
        w.flush_buf().unwrap();
        let finished = w.finish();
        assert_eq!(finished.written, total as u64);
        assert!(finished.failure.is_none());
        let writes = link.writes;
        assert_eq!(
            writes.concat(),
            parts.concat(),
            "bytes reach the link in order"
        );
        writes
    }

    #[test]
    fn small_writes_gather_into_buffer_sized_link_writes() {
        // A FILL-only piece: a file header, then 16-byte chunks.
        let mut parts = vec![pattern(28, 1)];
        parts.extend((0..10_000).map(|i| pattern(16, i as u8)));
        let lens: Vec<usize> = run(&parts, 64 * 1024).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![65536, 65536, 28 + 160_000 - 2 * 65536]);
    }

    #[test]
    fn large_writes_go_straight_through_in_aligned_pieces() {
        // A sparse header, a RAW chunk header, then RAW data: the headers are topped up to
        // 4 KiB with the data's first bytes, the data's aligned bulk follows in writes of at
        // most the buffer's capacity, and what is left waits in the buffer.
        let data = pattern(300_000, 7);
        let parts = vec![
            pattern(28, 1),
            pattern(12, 2),
            data,
            pattern(12, 3),
            pattern(5, 4),
        ];
        let lens: Vec<usize> = run(&parts, 128 * 1024).iter().map(Vec::len).collect();
        // 40 header bytes + 4056 data bytes, two direct writes of 128 KiB, then the data's last
        // 33,800 bytes (under the direct-write minimum) buffered with the 17 bytes after them.
        assert_eq!(lens, vec![4096, 131_072, 131_072, 33_817]);
    }

    #[test]
    fn every_link_write_but_the_last_is_aligned() {
        let mut seed = 0x9e37_79b9u32;
        let mut parts = Vec::new();
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            // Mostly small headers, sometimes RAW data of odd lengths.
            let len = if seed % 4 == 0 {
                60_000 + (seed % 200_000) as usize
            } else {
                (seed % 40) as usize + 1
            };
            parts.push(pattern(len, seed as u8));
        }
        for capacity in [100, 4096, 64 * 1024, 100_000, 1 << 20] {
            let writes = run(&parts, capacity);
            let (last, rest) = writes.split_last().unwrap();
            assert!(!last.is_empty());
            let limit = (capacity / LINK_WRITE_ALIGN).max(1) * LINK_WRITE_ALIGN;
            for w in rest {
                assert_eq!(w.len() % LINK_WRITE_ALIGN, 0, "capacity {capacity}");
                assert!(w.len() <= limit, "{} at capacity {capacity}", w.len());
            }
        }
    }

    #[test]
    fn more_than_announced_is_refused_and_link_errors_are_kept() {
        let mut link = Recorder::default();
        let mut w = LinkWriter::new(&mut link, Vec::with_capacity(4096), 10, T, &NoProgress);
        w.write_all(b"0123456789").unwrap();
        let err = w.write_all(b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);

        let mut link = Recorder {
            fail_after: Some(1),
            ..Recorder::default()
        };
        let mut w = LinkWriter::new(&mut link, Vec::with_capacity(4096), 1 << 20, T, &NoProgress);
        assert!(w.write_all(&pattern(200_000, 9)).is_err());
        let finished = w.finish();
        assert!(matches!(
            finished.failure,
            Some(TransportError::Disconnected)
        ));
        assert_eq!(link.writes.len(), 1);
    }
}
