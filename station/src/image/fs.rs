//! The filesystem layer: which filesystem a partition holds (by its superblock's magic), and
//! the ext4 and erofs readers behind one set of operations and one error.

use std::fmt;
use std::io::{self, Write};

use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;
use crate::read_at::ReadAt;
use crate::{erofs, ext4};

use super::error::{FindError, Place};

/// The filesystems the finder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ext4,
    Erofs,
}

impl FsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Erofs => "erofs",
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes from the start of a partition that tell ext4 (superblock at 1024..2048) and erofs
/// (superblock at 1024..1152) apart and give their sizes.
pub const PROBE_LEN: usize = 2048;

/// What the first bytes of a partition say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Filesystem {
        kind: FsKind,
        /// Bytes the superblock declares, if it gives a usable figure.
        declared_size: Option<u64>,
    },
    /// Neither magic.
    Other,
}

impl Probe {
    /// Reads the probe from `head` (the first [`PROBE_LEN`] bytes, or all there are).
    pub fn of(head: &[u8]) -> Probe {
        let superblock = head.get(ext4::SUPERBLOCK_OFFSET as usize..).unwrap_or(&[]);
        if ext4::is_ext4(superblock) {
            Probe::Filesystem {
                kind: FsKind::Ext4,
                declared_size: ext4::declared_size(superblock),
            }
        } else if erofs::is_erofs(head) {
            Probe::Filesystem {
                kind: FsKind::Erofs,
                declared_size: erofs::declared_size(head),
            }
        } else {
            Probe::Other
        }
    }

    /// Reads the first bytes of `source` (`len` bytes long, when known) and probes them.
    pub fn read<S: ReadAt + ?Sized>(source: &mut S, len: Option<u64>) -> io::Result<Probe> {
        let take = len.map_or(PROBE_LEN, |len| len.min(PROBE_LEN as u64) as usize);
        let mut head = vec![0u8; take];
        source.read_exact_at(0, &mut head)?;
        Ok(Probe::of(&head))
    }
}

/// One entry of a directory listing, from either filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name as stored: bytes, not necessarily UTF-8.
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// The inode's size (a file's length, a directory's blocks, a link target's length).
    pub size: u64,
}

impl DirEntry {
    pub fn name_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Unknown,
}

impl EntryKind {
    /// The `ls -l` letter.
    pub fn letter(self) -> char {
        match self {
            EntryKind::File => '-',
            EntryKind::Directory => 'd',
            EntryKind::Symlink => 'l',
            EntryKind::CharDevice => 'c',
            EntryKind::BlockDevice => 'b',
            EntryKind::Fifo => 'p',
            EntryKind::Socket => 's',
            EntryKind::Unknown => '?',
        }
    }

    fn of_ext4(kind: ext4::Ext4FileType) -> Self {
        use ext4::Ext4FileType as T;
        match kind {
            T::Regular => Self::File,
            T::Directory => Self::Directory,
            T::Symlink => Self::Symlink,
            T::CharDevice => Self::CharDevice,
            T::BlockDevice => Self::BlockDevice,
            T::Fifo => Self::Fifo,
            T::Socket => Self::Socket,
            T::Unknown(_) => Self::Unknown,
        }
    }

    fn of_erofs(kind: erofs::ErofsFileType) -> Self {
        use erofs::ErofsFileType as T;
        match kind {
            T::Regular => Self::File,
            T::Directory => Self::Directory,
            T::Symlink => Self::Symlink,
            T::CharDevice => Self::CharDevice,
            T::BlockDevice => Self::BlockDevice,
            T::Fifo => Self::Fifo,
            T::Socket => Self::Socket,
            T::Unknown => Self::Unknown,
        }
    }
}

/// Paths are absolute inside the filesystem; both readers refuse the rest the same way.
pub fn check_path(path: &str) -> Result<(), FindError> {
    if !path.starts_with('/') {
        return Err(FindError::InvalidPath {
            path: path.chars().take(200).collect(),
            reason: "it must start with / (a path inside the filesystem)".into(),
        });
    }
    Ok(())
}

/// Streams the regular file at `path` into `out` through SHA-256: its digest and size.
pub fn read_file<S: ReadAt + Send, W: Write>(
    kind: FsKind,
    source: S,
    path: &str,
    max_size: u64,
    out: W,
    place: &Place,
) -> (S, Result<(Sha256Digest, u64), FindError>) {
    match kind {
        FsKind::Ext4 => {
            let mut tee = HashingWriter {
                hasher: Sha256::new(),
                out,
            };
            let (source, result) = ext4::read_file(source, path, &mut tee, max_size);
            let result = result
                .map(|read| (Sha256Digest::from_hasher(tee.hasher), read.size))
                .map_err(|e| FindError::from_ext4(e, place, path));
            (source, result)
        }
        FsKind::Erofs => {
            let (source, result) = erofs::read_file(source, path, max_size, out);
            let result = result
                .map(|digest| (digest.sha256, digest.size))
                .map_err(|e| FindError::from_erofs(e, place, path));
            (source, result)
        }
    }
}

/// The entries of the directory at `path`, without `.` and `..`, in on-disk order.
pub fn list_dir<S: ReadAt + Send>(
    kind: FsKind,
    source: S,
    path: &str,
    place: &Place,
) -> (S, Result<Vec<DirEntry>, FindError>) {
    match kind {
        FsKind::Ext4 => {
            let (source, result) = ext4::list_dir(source, path);
            let result = result
                .map(|entries| {
                    entries
                        .into_iter()
                        .map(|e| DirEntry {
                            name: e.name,
                            kind: EntryKind::of_ext4(e.file_type),
                            size: e.size,
                        })
                        .collect()
                })
                .map_err(|e| FindError::from_ext4(e, place, path));
            (source, result)
        }
        FsKind::Erofs => {
            let (source, result) = erofs::list_dir(source, path);
            let result = result
                .map(|entries| {
                    entries
                        .into_iter()
                        .map(|e| DirEntry {
                            name: e.name,
                            kind: EntryKind::of_erofs(e.file_type),
                            size: e.size,
                        })
                        .collect()
                })
                .map_err(|e| FindError::from_erofs(e, place, path));
            (source, result)
        }
    }
}

/// Hashes what passes on to the caller's writer.
struct HashingWriter<W> {
    hasher: Sha256,
    out: W,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or(buf));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
