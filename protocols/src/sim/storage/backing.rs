//! Where one region's bytes live: sparse memory (only written chunks are allocated) or a sparse
//! file on disk (only written blocks take disk space; zero blocks become holes), named or an
//! unlinked temporary one.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::StorageError;

/// Allocation unit of the memory store. Large enough that a 1 GiB flash is 16 Ki map entries,
/// small enough that scattered metadata writes stay cheap.
pub const MEMORY_CHUNK: usize = 64 * 1024;
/// Granularity at which zero data becomes a hole in a file-backed region.
const HOLE_BLOCK: u64 = 4096;

/// Bytes of one region, addressed from 0 to `len`.
pub(crate) enum Backing {
    Memory(SparseMemory),
    File {
        file: File,
        /// Where the file is, or, for an unlinked temporary file, a name for error messages.
        path: PathBuf,
        named: bool,
    },
}

#[derive(Default)]
pub(crate) struct SparseMemory {
    chunks: BTreeMap<u64, Box<[u8]>>,
}

impl SparseMemory {
    fn read(&self, offset: u64, buf: &mut [u8]) {
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let index = pos / MEMORY_CHUNK as u64;
            let within = (pos % MEMORY_CHUNK as u64) as usize;
            let n = (MEMORY_CHUNK - within).min(buf.len() - done);
            match self.chunks.get(&index) {
                Some(chunk) => buf[done..done + n].copy_from_slice(&chunk[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let index = pos / MEMORY_CHUNK as u64;
            let within = (pos % MEMORY_CHUNK as u64) as usize;
            let n = (MEMORY_CHUNK - within).min(data.len() - done);
            let piece = &data[done..done + n];
            let zero = is_zero(piece);
            if zero && n == MEMORY_CHUNK {
                // A whole chunk of zeros reads back the same without memory.
                self.chunks.remove(&index);
            } else if let Some(chunk) = self.chunks.get_mut(&index) {
                chunk[within..within + n].copy_from_slice(piece);
            } else if !zero {
                let mut chunk = vec![0u8; MEMORY_CHUNK].into_boxed_slice();
                chunk[within..within + n].copy_from_slice(piece);
                self.chunks.insert(index, chunk);
            }
            done += n;
        }
    }

    fn discard(&mut self, offset: u64, len: u64) {
        let end = offset + len;
        let first_whole = offset.div_ceil(MEMORY_CHUNK as u64);
        let last_whole = end / MEMORY_CHUNK as u64;
        let partial = |s: &mut Self, from: u64, to: u64| {
            if to > from {
                let zeros = vec![0u8; (to - from) as usize];
                s.write(from, &zeros);
            }
        };
        if first_whole >= last_whole {
            partial(self, offset, end);
            return;
        }
        partial(self, offset, first_whole * MEMORY_CHUNK as u64);
        let doomed: Vec<u64> = self
            .chunks
            .range(first_whole..last_whole)
            .map(|(k, _)| *k)
            .collect();
        for k in doomed {
            self.chunks.remove(&k);
        }
        partial(self, last_whole * MEMORY_CHUNK as u64, end);
    }

    fn allocated(&self) -> u64 {
        self.chunks.len() as u64 * MEMORY_CHUNK as u64
    }
}

pub(crate) fn is_zero(data: &[u8]) -> bool {
    // This runs over every byte written to the simulator: OR-fold blocks (vectorises) and stop
    // at the first block with data.
    // A block of data almost always shows a non-zero byte at its start, so look there first:
    // the full fold then runs only over blocks that are (nearly) zero.
    data.chunks(4096).all(|block| {
        let (head, rest) = block.split_at(block.len().min(16));
        head.iter().all(|&b| b == 0) && rest.iter().fold(0u8, |acc, &b| acc | b) == 0
    })
}

impl Backing {
    pub(crate) fn memory() -> Self {
        Backing::Memory(SparseMemory::default())
    }

    /// Open (or create) a sparse file of exactly `len` bytes. Existing contents are kept, so a
    /// simulator restarted on the same directory still holds what was flashed.
    pub(crate) fn file(path: &Path, len: u64) -> Result<Self, StorageError> {
        let io = |e| StorageError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if file.metadata().map_err(io)?.len() != len {
            file.set_len(len).map_err(io)?;
        }
        Ok(Backing::File {
            file,
            path: path.to_path_buf(),
            named: true,
        })
    }

    /// A sparse unlinked file of `len` bytes in the system's temporary directory: it holds the
    /// region's data outside the process's memory and disappears when the region is dropped.
    pub(crate) fn temporary(name: &str, len: u64) -> Result<Self, StorageError> {
        let path = std::env::temp_dir().join(format!("(unlinked) {name}.img"));
        let io = |e| StorageError::Io {
            path: path.clone(),
            source: e,
        };
        let file = tempfile::tempfile().map_err(io)?;
        file.set_len(len).map_err(io)?;
        Ok(Backing::File {
            file,
            path,
            named: false,
        })
    }

    pub(crate) fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        match self {
            Backing::Memory(m) => {
                m.read(offset, buf);
                Ok(())
            }
            Backing::File { file, path, .. } => {
                let io = |e| StorageError::Io {
                    path: path.clone(),
                    source: e,
                };
                file.seek(SeekFrom::Start(offset)).map_err(io)?;
                file.read_exact(buf).map_err(io)
            }
        }
    }

    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        match self {
            Backing::Memory(m) => {
                m.write(offset, data);
                Ok(())
            }
            Backing::File { file, path, .. } => write_file(file, path, offset, data),
        }
    }

    /// Make `len` bytes at `offset` read as zeros, releasing their space.
    pub(crate) fn discard(&mut self, offset: u64, len: u64) -> Result<(), StorageError> {
        match self {
            Backing::Memory(m) => {
                m.discard(offset, len);
                Ok(())
            }
            Backing::File { file, path, .. } => zero_file_range(file, path, offset, len),
        }
    }

    /// Bytes of memory holding data (0 for file-backed regions).
    pub(crate) fn memory_in_use(&self) -> u64 {
        match self {
            Backing::Memory(m) => m.allocated(),
            Backing::File { .. } => 0,
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Backing::Memory(_) => None,
            Backing::File {
                path, named: true, ..
            } => Some(path),
            Backing::File { named: false, .. } => None,
        }
    }
}

fn write_file(file: &mut File, path: &Path, offset: u64, data: &[u8]) -> Result<(), StorageError> {
    let io = |e| StorageError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    // Aligned all-zero blocks become holes so a mostly-empty 4 GiB partition stays small on
    // disk; everything else is written as is.
    let mut pos = 0usize;
    while pos < data.len() {
        let abs = offset + pos as u64;
        let to_boundary = (HOLE_BLOCK - abs % HOLE_BLOCK) as usize;
        let n = if abs.is_multiple_of(HOLE_BLOCK) {
            // Find a run of whole zero blocks.
            let mut run = 0usize;
            while pos + run + HOLE_BLOCK as usize <= data.len()
                && is_zero(&data[pos + run..pos + run + HOLE_BLOCK as usize])
            {
                run += HOLE_BLOCK as usize;
            }
            if run > 0 {
                zero_file_range(file, path, abs, run as u64)?;
                pos += run;
                continue;
            }
            // Then a run of data blocks up to the next zero block (or the end).
            let mut run = 0usize;
            while pos + run < data.len() {
                let end = (pos + run + HOLE_BLOCK as usize).min(data.len());
                if end - (pos + run) == HOLE_BLOCK as usize && is_zero(&data[pos + run..end]) {
                    break;
                }
                run = end - pos;
            }
            run
        } else {
            to_boundary.min(data.len() - pos)
        };
        file.seek(SeekFrom::Start(abs)).map_err(io)?;
        file.write_all(&data[pos..pos + n]).map_err(io)?;
        pos += n;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn punch_hole(file: &File, offset: u64, len: u64) -> bool {
    use std::os::unix::io::AsRawFd;
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return false;
    };
    // SAFETY: fallocate on a valid open descriptor with plain integer arguments.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            len,
        )
    };
    rc == 0
}

#[cfg(not(target_os = "linux"))]
fn punch_hole(_file: &File, _offset: u64, _len: u64) -> bool {
    false
}

fn zero_file_range(
    file: &mut File,
    path: &Path,
    offset: u64,
    len: u64,
) -> Result<(), StorageError> {
    if len == 0 || punch_hole(file, offset, len) {
        return Ok(());
    }
    // File systems without hole punching get real zeros.
    let io = |e| StorageError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let zeros = vec![0u8; MEMORY_CHUNK];
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n]).map_err(io)?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(mut b: Backing) {
        let mut buf = vec![0xAAu8; 200_000];
        b.read(0, &mut buf).unwrap();
        assert!(buf.iter().all(|&x| x == 0), "fresh region reads zeros");
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8 + 1).collect();
        b.write(12_345, &data).unwrap();
        let mut back = vec![0u8; data.len()];
        b.read(12_345, &mut back).unwrap();
        assert!(back == data);
        // Zeros over data, partly unaligned: read back as zeros, neighbours intact.
        b.write(20_000, &vec![0u8; 70_000]).unwrap();
        let mut back = vec![0u8; data.len()];
        b.read(12_345, &mut back).unwrap();
        let mut expect = data.clone();
        expect[20_000 - 12_345..90_000 - 12_345].fill(0);
        assert!(back == expect);
        b.discard(13_000, 100_000).unwrap();
        b.read(12_345, &mut back).unwrap();
        expect[13_000 - 12_345..113_000 - 12_345].fill(0);
        assert!(back == expect);
    }

    #[test]
    fn memory_round_trip_and_sparseness() {
        round_trip(Backing::memory());
        let mut m = Backing::memory();
        m.write(5 << 30, &[0u8; 1 << 20]).unwrap();
        assert_eq!(m.memory_in_use(), 0, "zeros allocate nothing");
        m.write(5 << 30, &[1u8; 10]).unwrap();
        assert_eq!(m.memory_in_use(), MEMORY_CHUNK as u64);
        m.discard(0, 6 << 30).unwrap();
        assert_eq!(m.memory_in_use(), 0);
    }

    #[test]
    fn file_round_trip_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.img");
        round_trip(Backing::file(&path, 1 << 20).unwrap());
        let mut f = Backing::file(&path, 64 << 20).unwrap();
        f.write(0, &vec![0u8; 32 << 20]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 << 20);
        // Reopening keeps the contents.
        f.write(4096, b"kept").unwrap();
        drop(f);
        let mut f = Backing::file(&path, 64 << 20).unwrap();
        let mut buf = [0u8; 4];
        f.read(4096, &mut buf).unwrap();
        assert_eq!(&buf, b"kept");
    }

    #[test]
    fn temporary_round_trip_without_memory_or_name() {
        round_trip(Backing::temporary("p", 1 << 20).unwrap());
        let mut t = Backing::temporary("system_a", 4 << 30).unwrap();
        t.write(3 << 30, &[7u8; 1 << 20]).unwrap();
        assert_eq!(t.memory_in_use(), 0);
        assert_eq!(t.path(), None, "an unlinked file has no path to show");
        let mut back = [0u8; 4];
        t.read((3 << 30) + 100, &mut back).unwrap();
        assert_eq!(back, [7; 4]);
    }

    #[test]
    fn is_zero_checks_every_byte() {
        for len in [0, 1, 7, 8, 9, 4096, 4097] {
            let mut v = vec![0u8; len];
            assert!(is_zero(&v));
            for i in 0..len {
                v[i] = 1;
                assert!(!is_zero(&v), "len {len} byte {i}");
                v[i] = 0;
            }
        }
    }
}
