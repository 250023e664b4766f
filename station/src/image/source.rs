//! The bottom layer for files on the host: an image file as random-access bytes, raw or
//! Android sparse (expanded through its chunk index, never written out). A phone's partition
//! is the other kind of source: `job::verify::FetchSource`, any [`ReadAt`].

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use protocols::sparse::{is_sparse, SparseIndex};

use super::FindError;
use crate::read_at::ReadAt;
use crate::regular_file::open_regular;

/// How an image file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Raw,
    Sparse,
}

impl Storage {
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Raw => "raw",
            Storage::Sparse => "sparse",
        }
    }
}

/// An image file's expanded bytes.
pub struct ImageFileSource {
    path: PathBuf,
    len: u64,
    reader: Reader,
}

enum Reader {
    Raw(File),
    Sparse(SparseIndex<File>),
}

impl ImageFileSource {
    /// Opens `path` if it is a regular file; an Android sparse image (told by its magic) is
    /// indexed so its expansion can be read at any offset.
    pub fn open(path: &Path) -> Result<Self, FindError> {
        let fail = |detail: String| FindError::Open {
            path: path.to_path_buf(),
            detail,
        };
        let mut file = open_regular(path).map_err(|e| fail(e.to_string()))?;
        let mut magic = [0u8; 4];
        let sparse = read_magic(&mut file, &mut magic).map_err(|e| fail(e.to_string()))?
            && is_sparse(&magic);
        let (len, reader) = if sparse {
            let index = SparseIndex::build(file)
                .map_err(|e| fail(format!("not a valid Android sparse image: {e}")))?;
            (index.expanded_len(), Reader::Sparse(index))
        } else {
            let len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
            (len, Reader::Raw(file))
        };
        Ok(Self {
            path: path.to_path_buf(),
            len,
            reader,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the image as a partition receives them (a sparse image expanded).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn storage(&self) -> Storage {
        match self.reader {
            Reader::Raw(_) => Storage::Raw,
            Reader::Sparse(_) => Storage::Sparse,
        }
    }
}

/// The first four bytes, if the file has them; the file is left at its start.
fn read_magic(file: &mut File, magic: &mut [u8; 4]) -> io::Result<bool> {
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..])? {
            0 => break,
            n => got += n,
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(got == magic.len())
}

impl ReadAt for ImageFileSource {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match &mut self.reader {
            Reader::Raw(file) => file.read_exact_at(offset, buf),
            Reader::Sparse(index) => index.read_exact_at(offset, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_sparse_files_read_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 253) as u8).collect();
        let raw = dir.path().join("raw.img");
        std::fs::write(&raw, &data).unwrap();
        let sparse = dir.path().join("sparse.img");
        let out = File::create(&sparse).unwrap();
        let mut writer = protocols::sparse::SparseWriter::new(out, 4096, 3, 2).unwrap();
        writer.write_raw(&data[..8192]).unwrap();
        writer.write_raw(&data[8192..]).unwrap();
        writer.finish().unwrap();

        for (path, storage) in [(&raw, Storage::Raw), (&sparse, Storage::Sparse)] {
            let mut source = ImageFileSource::open(path).unwrap();
            assert_eq!(source.storage(), storage);
            assert_eq!(source.len(), data.len() as u64);
            let mut buf = [0u8; 100];
            source.read_exact_at(5000, &mut buf).unwrap();
            assert_eq!(&buf[..], &data[5000..5100]);
        }
    }

    #[test]
    fn missing_and_non_regular_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ImageFileSource::open(&dir.path().join("nope.img"))
            .err()
            .unwrap();
        assert!(
            missing.to_string().contains("nope.img: no such file"),
            "{missing}"
        );
        let directory = ImageFileSource::open(dir.path()).err().unwrap();
        assert!(directory.to_string().contains("a directory"), "{directory}");
        let empty = dir.path().join("empty.img");
        std::fs::write(&empty, b"").unwrap();
        let source = ImageFileSource::open(&empty).unwrap();
        assert!(source.is_empty());
    }
}
