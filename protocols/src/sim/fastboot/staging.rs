//! The download buffer: what `download:` received, waiting for `flash:`/`boot`.
//!
//! A real bootloader keeps it in RAM. A station simulates many phones at once, each allowed a
//! download of hundreds of MiB, so a download larger than a threshold goes to an unlinked
//! temporary file instead (the page cache makes that about as fast). The next large download
//! writes over the same file: its pages are still in the page cache, and writing over them
//! costs about half of what filling fresh pages does (this runs for every phone of a line
//! benchmark); the bytes past the new download's length are never read.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use super::phone_memory::PhoneMemory;

pub(crate) enum Staging {
    Memory(PhoneMemory),
    Spilled { file: File, len: u64 },
}

/// Something to read a staged download from, from its first byte.
pub(crate) enum StagedReader<'a> {
    Memory(Cursor<&'a [u8]>),
    File(io::Take<&'a File>),
}

impl Read for StagedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StagedReader::Memory(c) => c.read(buf),
            StagedReader::File(f) => f.read(buf),
        }
    }
}

impl Staging {
    /// A buffer for `len` bytes: memory up to `spill_above`, a temporary file beyond (the
    /// `previous` download's file when it had one).
    pub(crate) fn with_len(
        len: u64,
        spill_above: u64,
        previous: Option<Staging>,
    ) -> io::Result<Staging> {
        if len <= spill_above {
            // `len` is bounded by max-download-size (checked before this is called).
            return Ok(Staging::Memory(PhoneMemory::with_capacity(len as usize)));
        }
        let file = match previous {
            Some(Staging::Spilled { mut file, .. }) => {
                file.seek(SeekFrom::Start(0))?;
                file
            }
            _ => tempfile::tempfile()?,
        };
        Ok(Staging::Spilled { file, len: 0 })
    }

    pub(crate) fn append(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Staging::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Staging::Spilled { file, len } => {
                file.write_all(data)?;
                *len += data.len() as u64;
                Ok(())
            }
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Staging::Memory(v) => v.len() as u64,
            Staging::Spilled { len, .. } => *len,
        }
    }

    /// The first bytes (for sniffing the sparse magic).
    pub(crate) fn head(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut r = self.reader()?;
        let mut filled = 0;
        while filled < buf.len() {
            let n = r.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(filled)
    }

    /// Fill `buf` from byte `offset` of what was staged (metadata parsed out of a download).
    pub(crate) fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let fits = offset
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= self.len());
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} bytes at {offset} run past the download's {} bytes",
                    buf.len(),
                    self.len()
                ),
            ));
        }
        match self {
            // Bounded by len() just above.
            Staging::Memory(v) => {
                let start = offset as usize;
                buf.copy_from_slice(&v[start..start + buf.len()]);
                Ok(())
            }
            Staging::Spilled { file, .. } => {
                let mut f = file;
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(buf)
            }
        }
    }

    pub(crate) fn reader(&self) -> io::Result<StagedReader<'_>> {
        match self {
            Staging::Memory(v) => Ok(StagedReader::Memory(Cursor::new(&v[..]))),
            Staging::Spilled { file, len } => {
                let mut f = file;
                f.seek(SeekFrom::Start(0))?;
                Ok(StagedReader::File(f.take(*len)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_in_memory_is_counted_while_it_lives() {
        // Other tests stage downloads at the same time: the count is at least this one's.
        let mut s = Staging::with_len(300_000, 1 << 20, None).unwrap();
        s.append(&[5u8; 300_000]).unwrap();
        assert!(crate::sim::fastboot::held_bytes() >= 300_000);
        let Staging::Memory(v) = &s else {
            panic!("a 300 kB download under the threshold stays in memory")
        };
        assert_eq!(v.len(), 300_000);
        drop(s);
    }

    #[test]
    fn both_kinds_read_back_what_was_appended() {
        for spill_above in [1 << 20, 0] {
            let mut s = Staging::with_len(300_000, spill_above, None).unwrap();
            assert_eq!(matches!(s, Staging::Spilled { .. }), spill_above == 0);
            let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            for piece in data.chunks(70_000) {
                s.append(piece).unwrap();
            }
            assert_eq!(s.len(), 300_000);
            let mut back = Vec::new();
            s.reader().unwrap().read_to_end(&mut back).unwrap();
            assert!(back == data);
            let mut head = [0u8; 4];
            assert_eq!(s.head(&mut head).unwrap(), 4);
            assert_eq!(head, [0, 1, 2, 3]);
            // Reading twice starts over.
            back.clear();
            s.reader().unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back.len(), 300_000);
            let mut piece = [0u8; 10];
            s.read_exact_at(299_990, &mut piece).unwrap();
            assert_eq!(piece[..], data[299_990..]);
            assert!(s.read_exact_at(299_991, &mut piece).is_err());
            assert!(s.read_exact_at(u64::MAX, &mut piece).is_err());
        }
    }

    #[test]
    fn a_shorter_download_over_a_spilled_one_reads_back_only_its_own_bytes() {
        let mut first = Staging::with_len(200_000, 0, None).unwrap();
        first.append(&[7u8; 200_000]).unwrap();
        let mut second = Staging::with_len(5_000, 0, Some(first)).unwrap();
        second.append(&[1u8; 3_000]).unwrap();
        second.append(&[2u8; 2_000]).unwrap();
        assert_eq!(second.len(), 5_000);
        let mut back = Vec::new();
        second.reader().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 5_000);
        assert!(back[..3_000].iter().all(|&b| b == 1) && back[3_000..].iter().all(|&b| b == 2));
        let mut past = [0u8; 1];
        assert!(second.read_exact_at(5_000, &mut past).is_err());
        // A download small enough for memory does not keep the file.
        let third = Staging::with_len(100, 1 << 20, Some(second)).unwrap();
        assert!(matches!(third, Staging::Memory(_)));
    }
}
