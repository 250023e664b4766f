//! The host side of a download data phase as a `Write`, for data produced on the fly (sparse
//! pieces): it refuses bytes beyond the announced size, keeps the transport's own error for the
//! caller, and can read RAW data from the image straight into the buffer it sends from.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use crate::progress::{ProgressEvent, ProgressSink};
use crate::transport::{SendBuffer, Transport, TransportError};

/// Every data-phase write but the last is a whole multiple of this, as the AOSP client keeps its
/// USB writes whole multiples of 1 KiB: a bulk transfer that does not end on a max-packet
/// boundary ends in a short packet, which some bootloaders' download loops take for the end of
/// the data. 4 KiB is a multiple of every USB max packet size (64, 512, 1024).
pub(crate) const LINK_WRITE_ALIGN: usize = 4096;

pub(crate) struct LinkWriter<'a> {
    /// The buffer the link lends for this data phase; what goes out in the next link write is
    /// `buffer()[..filled]`.
    out: Box<dyn SendBuffer + 'a>,
    /// Bytes per link write: every write but the last is this much, a multiple of
    /// [`LINK_WRITE_ALIGN`] (unless the link lent less than that).
    len: usize,
    filled: usize,
    declared: u64,
    written: u64,
    timeout: Duration,
    progress: &'a dyn ProgressSink,
    failure: Option<TransportError>,
    stopped: bool,
}

/// What a data phase left behind: the bytes accepted, and the transport's error if the link
/// failed.
pub(crate) struct Finished {
    pub written: u64,
    pub failure: Option<TransportError>,
    /// The caller asked to stop; the data phase ended between two link writes.
    pub stopped: bool,
}

fn too_much(declared: u64) -> std::io::Error {
    std::io::Error::new(
        ErrorKind::InvalidData,
        format!("more than the {declared} bytes announced to the device"),
    )
}

impl<'a> LinkWriter<'a> {
    /// A writer for a data phase of `declared` bytes that sends `chunk` bytes, rounded down to
    /// whole [`LINK_WRITE_ALIGN`]s (one at least), per link write, from a buffer `link` lends.
    pub(crate) fn new<T: Transport + ?Sized>(
        link: &'a mut T,
        chunk: usize,
        declared: u64,
        timeout: Duration,
        progress: &'a dyn ProgressSink,
    ) -> Self {
        let mut out = link.send_buffer((chunk / LINK_WRITE_ALIGN).max(1) * LINK_WRITE_ALIGN);
        let lent = out.buffer().len();
        let len = match lent / LINK_WRITE_ALIGN {
            0 => lent,
            whole => whole * LINK_WRITE_ALIGN,
        };
        LinkWriter {
            out,
            len,
            filled: 0,
            declared,
            written: 0,
            timeout,
            progress,
            failure: None,
            stopped: false,
        }
    }

    /// What the data phase came to (what is still buffered is dropped: call
    /// [`Self::flush_buf`] first).
    pub(crate) fn finish(self) -> Finished {
        Finished {
            written: self.written,
            failure: self.failure,
            stopped: self.stopped,
        }
    }

    /// The part of the lent buffer still to fill before the next link write.
    fn room(&mut self) -> &mut [u8] {
        &mut self.out.buffer()[self.filled..self.len]
    }

    /// Send what is buffered.
    pub(crate) fn flush_buf(&mut self) -> std::io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        if self.progress.stop_requested() {
            self.stopped = true;
            return Err(std::io::Error::other("stopped at the caller's request"));
        }
        if let Err(e) = self.out.send(self.filled, self.timeout) {
            self.failure = Some(e);
            return Err(std::io::Error::other("link failed"));
        }
        self.progress.event(ProgressEvent::Bytes {
            bytes: self.filled as u64,
        });
        self.filled = 0;
        Ok(())
    }

    /// Move `len` bytes from `source` to the device, read straight into the buffer the link
    /// lent: the image's RAW data is copied once on the host (by the read), as the AOSP client
    /// manages by mapping the file. A source that ends early is `UnexpectedEof`.
    pub(crate) fn read_from(&mut self, source: &mut dyn Read, len: u64) -> std::io::Result<()> {
        if self.written + len > self.declared {
            return Err(too_much(self.declared));
        }
        let mut left = len;
        while left > 0 {
            let room = self.room();
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(room.len());
            let n = match source.read(&mut room[..want]) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("the source ended {left} bytes short"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.filled += n;
            self.written += n as u64;
            left -= n as u64;
            if self.filled == self.len {
                self.flush_buf()?;
            }
        }
        Ok(())
    }
}

impl Write for LinkWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.written + data.len() as u64 > self.declared {
            return Err(too_much(self.declared));
        }
        let room = self.room();
        let n = data.len().min(room.len());
        room[..n].copy_from_slice(&data[..n]);
        self.filled += n;
        self.written += n as u64;
        if self.filled == self.len {
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

    /// What the writer is given: bytes to `write`, or bytes for it to `read_from` a source.
    enum Part {
        Write(Vec<u8>),
        Read(Vec<u8>),
    }

    /// Feed `parts` through a writer with a buffer of `buf_len`; the link's writes.
    fn run(parts: &[Part], buf_len: usize) -> Vec<Vec<u8>> {
        let mut link = Recorder::default();
        let bytes = |p: &Part| match p {
            Part::Write(b) | Part::Read(b) => b.clone(),
        };
        let all: Vec<u8> = parts.iter().flat_map(bytes).collect();
        let mut w = LinkWriter::new(&mut link, buf_len, all.len() as u64, T, &NoProgress);
        for p in parts {
            match p {
                Part::Write(b) => w.write_all(b).unwrap(),
                Part::Read(b) => w.read_from(&mut &b[..], b.len() as u64).unwrap(),
            }
        }
        w.flush_buf().unwrap();
        let finished = w.finish();
        assert_eq!(finished.written, all.len() as u64);
        assert!(finished.failure.is_none());
        assert_eq!(link.writes.concat(), all, "bytes reach the link in order");
        link.writes
    }

    #[test]
    fn small_writes_gather_into_buffer_sized_link_writes() {
        // A FILL-only piece: a file header, then 16-byte chunks.
        let mut parts = vec![Part::Write(pattern(28, 1))];
        parts.extend((0..10_000).map(|i| Part::Write(pattern(16, i as u8))));
        let lens: Vec<usize> = run(&parts, 64 * 1024).iter().map(Vec::len).collect();
        assert_eq!(lens, vec![65536, 65536, 28 + 160_000 - 2 * 65536]);
    }

    #[test]
    fn raw_data_read_from_the_source_fills_the_buffer_around_the_headers() {
        // A sparse header and a RAW chunk header, 300,000 bytes of RAW data read from the
        // source, another chunk header, a FILL value: link writes of the whole buffer.
        let parts = [
            Part::Write(pattern(28, 1)),
            Part::Write(pattern(12, 2)),
            Part::Read(pattern(300_000, 7)),
            Part::Write(pattern(12, 3)),
            Part::Write(pattern(4, 4)),
        ];
        let lens: Vec<usize> = run(&parts, 128 * 1024).iter().map(Vec::len).collect();
        assert_eq!(
            lens,
            vec![131_072, 131_072, 40 + 300_000 + 16 - 2 * 131_072]
        );
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
            let len = (seed % 40) as usize + 1;
            parts.push(if seed.is_multiple_of(4) {
                Part::Read(pattern(60_000 + (seed % 200_000) as usize, seed as u8))
            } else {
                Part::Write(pattern(len, seed as u8))
            });
        }
        for buf_len in [0, 100, 4096, 64 * 1024, 100_000, 1 << 20] {
            let writes = run(&parts, buf_len);
            let limit = (buf_len / LINK_WRITE_ALIGN).max(1) * LINK_WRITE_ALIGN;
            let (last, rest) = writes.split_last().unwrap();
            assert!(!last.is_empty() && last.len() <= limit);
            for w in rest {
                assert_eq!(w.len(), limit, "buffer of {buf_len}");
            }
        }
    }

    #[test]
    fn more_than_announced_or_a_short_source_is_refused_and_link_errors_are_kept() {
        let mut link = Recorder::default();
        let mut w = LinkWriter::new(&mut link, 4096, 10, T, &NoProgress);
        w.write_all(b"0123456789").unwrap();
        assert_eq!(
            w.write_all(b"x").unwrap_err().kind(),
            ErrorKind::InvalidData
        );
        assert_eq!(
            w.read_from(&mut &b"x"[..], 1).unwrap_err().kind(),
            ErrorKind::InvalidData
        );

        let mut link = Recorder::default();
        let mut w = LinkWriter::new(&mut link, 4096, 100, T, &NoProgress);
        let err = w.read_from(&mut &[7u8; 30][..], 50).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);

        let mut link = Recorder {
            fail_after: Some(1),
            ..Recorder::default()
        };
        let mut w = LinkWriter::new(&mut link, 4096, 1 << 20, T, &NoProgress);
        assert!(w.read_from(&mut &pattern(200_000, 9)[..], 200_000).is_err());
        let finished = w.finish();
        assert!(matches!(
            finished.failure,
            Some(TransportError::Disconnected)
        ));
        assert_eq!(link.writes.len(), 1);
    }
}
