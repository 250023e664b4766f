//! Random-access byte sources: an image file on the host (raw or Android sparse) today, a
//! phone's partition read through fastboot `fetch` or Firehose `<read>` in the orchestrator.

use std::fs::File;
use std::io;

use protocols::sparse::SparseIndex;

/// Fills buffers from absolute offsets. `&mut self` because device-backed sources drive a
/// protocol client.
pub trait ReadAt {
    /// Fills all of `buf` from `offset`; a range past the end is an error.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl<T: ReadAt + ?Sized> ReadAt for &mut T {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
}

impl ReadAt for File {
    #[cfg(unix)]
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    #[cfg(not(unix))]
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        self.seek(SeekFrom::Start(offset))?;
        self.read_exact(buf)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let source = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.get(range))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} bytes at offset {offset} lie past the end ({} bytes)",
                        buf.len(),
                        self.len()
                    ),
                )
            })?;
        buf.copy_from_slice(source);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_mut_slice().read_exact_at(offset, buf)
    }
}

impl<R: io::Read + io::Seek> ReadAt for SparseIndex<R> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        SparseIndex::read_at(self, offset, buf).map_err(|e| {
            let kind = match &e {
                protocols::sparse::SparseError::OutOfRange { .. } => io::ErrorKind::UnexpectedEof,
                _ => io::ErrorKind::InvalidData,
            };
            io::Error::new(kind, e)
        })
    }
}

/// Counts what passes through, so verification can report how much it read from a phone.
#[derive(Debug)]
pub struct CountingReader<S> {
    inner: S,
    bytes: u64,
    reads: u64,
}

impl<S> CountingReader<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            bytes: 0,
            reads: 0,
        }
    }

    /// Bytes successfully read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Read requests that succeeded.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: ReadAt> ReadAt for CountingReader<S> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact_at(offset, buf)?;
        self.bytes = self.bytes.saturating_add(buf.len() as u64);
        self.reads = self.reads.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_read_in_range_and_refuse_past_the_end() {
        let mut data = (0u8..100).collect::<Vec<u8>>();
        let mut buf = [0u8; 4];
        data.read_exact_at(10, &mut buf).unwrap();
        assert_eq!(buf, [10, 11, 12, 13]);
        let error = data.read_exact_at(98, &mut buf).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        assert!(data.read_exact_at(u64::MAX, &mut buf).is_err());
    }

    #[test]
    fn counting_counts_successful_reads_only() {
        let mut counting = CountingReader::new(vec![7u8; 10]);
        let mut buf = [0u8; 4];
        counting.read_exact_at(0, &mut buf).unwrap();
        counting.read_exact_at(6, &mut buf).unwrap();
        assert!(counting.read_exact_at(8, &mut buf).is_err());
        assert_eq!(counting.bytes_read(), 8);
        assert_eq!(counting.reads(), 2);
    }

    #[test]
    fn files_read_at_offsets() {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, b"hello, world").unwrap();
        let mut buf = [0u8; 5];
        ReadAt::read_exact_at(&mut file, 7, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        assert!(ReadAt::read_exact_at(&mut file, 10, &mut buf).is_err());
    }
}
