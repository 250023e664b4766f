//! Find, hash, stream and list files inside an erofs filesystem (the read-only filesystem modern
//! Android writes `system`, `product`, `vendor`… as, usually lz4/lz4hc-compressed) read
//! through any [`ReadAt`] source, reading only the blocks needed: pre-flight runs it over
//! image files, verification over the ranges a phone reads back.
//!
//! The on-disk format is read by the `erofs-rs` crate through its asynchronous API, whose
//! image trait is a positioned `read_exact_at`: the only crate we found that reads erofs over a
//! random-access source without loading or mmap-ing the image. Checked against Debian's
//! erofs-utils 1.5 (plain, lz4, lz4hc at several levels and cluster sizes, legacy and compact
//! indexes, big pclusters, tail packing, inline data, compact and extended inodes, chunk-based
//! files with block maps and chunk indexes) and against mutated images; it also reads what 1.5
//! cannot make (fragments, dedupe, 48-bit layouts), and bounds every pcluster (1 MiB encoded,
//! 12 MiB decoded). Its synchronous API needs the whole image as one slice, so we drive the
//! asynchronous one with a single poll: our sources block, so every future is ready at once.
//!
//! Around it this module adds what a factory line needs from a hostile image or a failing
//! phone: the superblock's checksum and block size checked as the kernel does before erofs-rs
//! sees the image, no read past the filesystem's end (on a phone or in a `super` image that
//! would be another partition), a read budget (bytes and requests) for the path lookup and
//! then in proportion to the file's size, bounded paths and listings, and errors that tell a
//! device fault from a corrupt image.
//!
//! Symbolic links are not followed, in the path or at its end: where an absolute link points is
//! decided by the phone's mount namespace, not by the image, so a link is reported as what it
//! is. Only LZ4 is enabled: an image compressed with LZMA, DEFLATE or Zstandard is refused as
//! unsupported, as is data on extra devices.

mod source;
mod superblock;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod test_images;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use erofs_rs::r#async::EroFS;
use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;
use crate::read_at::ReadAt;
use source::{complete, lock, Budget, Counts, ErofsSource, Metered, SourceFailure};

pub use superblock::{declared_size, is_erofs, PROBE_LEN, SIZE_PROBE_LEN};

/// What finding a path may read: generous for any real directory tree (a lookup in Android's
/// `system` reads a few KiB), small enough that a hostile image cannot make a phone send
/// gigabytes.
const LOOKUP_BUDGET: Budget = Budget {
    bytes: 16 << 20,
    reads: 16 << 10,
};
/// What listing one directory may read: its blocks and one inode per entry.
const LISTING_BUDGET: Budget = Budget {
    bytes: 32 << 20,
    reads: 256 << 10,
};
/// Entries one listing returns at most; Android's largest directories hold a few thousand.
pub const MAX_DIR_ENTRIES: usize = 100_000;
/// Linux's PATH_MAX and NAME_MAX: no longer path or name can exist in an image.
const MAX_PATH_LEN: usize = 4096;
const MAX_NAME_LEN: usize = 255;

/// The digest of a file found inside erofs, and what it cost to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErofsFileDigest {
    pub sha256: Sha256Digest,
    /// The file's length.
    pub size: u64,
    /// Bytes read from the source: superblock, inodes, directory blocks, cluster indexes and
    /// the file's (compressed) data.
    pub bytes_read: u64,
    /// Read requests made to the source.
    pub reads: u64,
}

/// What an inode is, from its mode (a directory entry's own type byte is only a hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErofsFileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Unknown,
}

impl ErofsFileType {
    fn from_mode(mode: u32) -> Self {
        match mode & 0o170000 {
            0o100000 => Self::Regular,
            0o040000 => Self::Directory,
            0o120000 => Self::Symlink,
            0o020000 => Self::CharDevice,
            0o060000 => Self::BlockDevice,
            0o010000 => Self::Fifo,
            0o140000 => Self::Socket,
            _ => Self::Unknown,
        }
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErofsDirEntry {
    /// The name as stored: bytes, not necessarily UTF-8.
    pub name: Vec<u8>,
    pub file_type: ErofsFileType,
    /// The inode's size: the file's length, a directory's entry blocks, a link's target length.
    pub size: u64,
}

impl ErofsDirEntry {
    /// The name for people to read (invalid UTF-8 replaced).
    pub fn name_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ErofsFileError {
    /// The source itself failed (disconnect, timeout, short image): not the filesystem's fault.
    #[error("reading the filesystem: {0}")]
    Source(#[source] io::Error),
    #[error("not an erofs filesystem: {0}")]
    NotErofs(String),
    #[error("{path} is not in the filesystem")]
    NotFound { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is not a directory, or lies under something that is not one")]
    NotADirectory { path: String },
    #[error("{path} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("reading {path}: {detail}")]
    Corrupt { path: String, detail: String },
    /// The image needs something this reader does not implement: refused, never misread.
    #[error("the filesystem uses {feature}, which flashgate cannot read")]
    Unsupported { feature: String },
    /// The writer that [`read_file`] streams into failed.
    #[error("writing out {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Streams `path` inside the erofs filesystem on `source` through SHA-256. Files larger than
/// `max_size` are refused before any of their data is read. The source is handed back whatever
/// the outcome, so a device client can be used again.
pub fn hash_file_in_erofs<S: ReadAt + Send>(
    source: S,
    path: &str,
    max_size: u64,
) -> (S, Result<ErofsFileDigest, ErofsFileError>) {
    read_file(source, path, max_size, io::sink())
}

/// Streams `path` into `out`, hashing it on the way (for `cat`-like commands): as
/// [`hash_file_in_erofs`], and a failing writer is [`ErofsFileError::Output`].
pub fn read_file<S: ReadAt + Send, W: Write>(
    source: S,
    path: &str,
    max_size: u64,
    mut out: W,
) -> (S, Result<ErofsFileDigest, ErofsFileError>) {
    let metered = Mutex::new(Metered::new(source, LOOKUP_BUDGET));
    let result = stream_file(&metered, path, max_size, &mut out);
    let (source, counts, result) = settle(metered, path, result);
    let result = result.map(|(sha256, size)| ErofsFileDigest {
        sha256,
        size,
        bytes_read: counts.bytes,
        reads: counts.reads,
    });
    (source, result)
}

/// The entries of the directory at `path` in on-disk (name) order, without `.` and `..`.
pub fn list_dir<S: ReadAt + Send>(
    source: S,
    path: &str,
) -> (S, Result<Vec<ErofsDirEntry>, ErofsFileError>) {
    let metered = Mutex::new(Metered::new(source, LISTING_BUDGET));
    let result = list_with(&metered, path);
    let (source, _, result) = settle(metered, path, result);
    (source, result)
}

/// Where [`exercise_untrusted_image`] looks for the client (its seeds hold one there).
pub const FUZZ_CLIENT_PATH: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";

/// A fuzz target's body: any bytes as an image, then what pre-flight and an engineer would
/// do with it (hash a client path, list the root, stream a small file). It must return, in
/// bounded time and memory, whatever the bytes are.
pub fn exercise_untrusted_image(image: &[u8]) {
    let source = image.to_vec();
    let (source, _) = hash_file_in_erofs(source, FUZZ_CLIENT_PATH, 64 << 20);
    let (source, _) = list_dir(source, "/");
    let _ = read_file(source, "/system/build.prop", 1 << 20, io::sink());
}

fn stream_file<S: ReadAt + Send>(
    metered: &Mutex<Metered<S>>,
    path: &str,
    max_size: u64,
    out: &mut impl Write,
) -> Result<(Sha256Digest, u64), ErofsFileError> {
    check_path(path)?;
    let fs = open_filesystem(metered, path)?;
    let mut file = complete(fs.open(path)).map_err(|e| classify(e, path))?;
    let size = file.size();
    if size > max_size {
        return Err(ErofsFileError::TooLarge {
            path: path.to_string(),
            size,
            limit: max_size,
        });
    }
    lock(metered).raise_budget(data_budget(size));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = complete(file.read(&mut buffer)).map_err(|e| classify(e, path))?;
        let Some(chunk) = buffer.get(..n).filter(|chunk| !chunk.is_empty()) else {
            break;
        };
        total = total.saturating_add(n as u64);
        if total > size {
            break;
        }
        hasher.update(chunk);
        out.write_all(chunk)
            .map_err(|source| ErofsFileError::Output {
                path: path.to_string(),
                source,
            })?;
    }
    if total != size {
        return Err(ErofsFileError::Corrupt {
            path: path.to_string(),
            detail: format!("its data gave {total} bytes, the inode says {size}"),
        });
    }
    Ok((Sha256Digest::from_hasher(hasher), size))
}

/// Reading a file's data costs at most about its size (compressed data is smaller, a block
/// map or chunk index adds a few bytes a block); twice that plus room for pclusters shared
/// with other files is far beyond any real image and still bounded.
fn data_budget(size: u64) -> Budget {
    Budget {
        bytes: size.saturating_mul(2).saturating_add(16 << 20),
        reads: (size / 1024).saturating_add(16 << 10),
    }
}

fn list_with<S: ReadAt + Send>(
    metered: &Mutex<Metered<S>>,
    path: &str,
) -> Result<Vec<ErofsDirEntry>, ErofsFileError> {
    check_path(path)?;
    let fs = open_filesystem(metered, path)?;
    let mut walk = complete(fs.read_dir(path)).map_err(|e| classify(e, path))?;
    let mut entries = Vec::new();
    loop {
        let next = complete(async { Ok(walk.next_entry().await) });
        let Some(entry) = next.map_err(|e| classify(e, path))? else {
            break;
        };
        let entry = entry.map_err(|e| classify(e, path))?;
        if entries.len() == MAX_DIR_ENTRIES {
            return Err(ErofsFileError::Corrupt {
                path: path.to_string(),
                detail: format!("the directory holds more than {MAX_DIR_ENTRIES} entries"),
            });
        }
        entries.push(ErofsDirEntry {
            name: entry.dir_entry.file_name().to_vec(),
            file_type: ErofsFileType::from_mode(entry.inode.file_type().as_raw_mode()),
            size: entry.inode.data_size(),
        });
    }
    Ok(entries)
}

/// Paths longer than Linux allows cannot be in any image: refused before a single read.
fn check_path(path: &str) -> Result<(), ErofsFileError> {
    if path.len() > MAX_PATH_LEN
        || path.contains('\0')
        || path.split('/').any(|name| name.len() > MAX_NAME_LEN)
    {
        return Err(ErofsFileError::NotFound {
            path: path.to_string(),
        });
    }
    Ok(())
}

fn open_filesystem<'a, S: ReadAt + Send>(
    metered: &'a Mutex<Metered<S>>,
    path: &str,
) -> Result<EroFS<ErofsSource<'a, S>>, ErofsFileError> {
    superblock::check(&mut lock(metered), path)?;
    let fs = complete(EroFS::new(ErofsSource(metered))).map_err(|e| classify(e, path))?;
    let superblock = fs.super_block();
    let end = superblock
        .block_count()
        .checked_mul(1 << superblock.blk_size_bits)
        .filter(|&end| end > superblock::SUPERBLOCK_OFFSET)
        .ok_or_else(|| ErofsFileError::Corrupt {
            path: path.to_string(),
            detail: format!(
                "the superblock gives the filesystem {} blocks",
                superblock.block_count()
            ),
        })?;
    lock(metered).set_end(end);
    Ok(fs)
}

/// The outcome of one operation, with the source handed back. A failure the source recorded
/// (a device error, the budget) is the cause, whatever erofs-rs made of it.
fn settle<S: ReadAt, T>(
    metered: Mutex<Metered<S>>,
    path: &str,
    result: Result<T, ErofsFileError>,
) -> (S, Counts, Result<T, ErofsFileError>) {
    let (source, counts, failure) = metered
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .finish();
    let result = match failure {
        None => result,
        Some(SourceFailure::Io(e)) => Err(ErofsFileError::Source(e)),
        Some(SourceFailure::OutsideFilesystem { offset, len, end }) => {
            Err(ErofsFileError::Corrupt {
                path: path.to_string(),
                detail: format!(
                    "the image's metadata points at {len} bytes at offset {offset}, past the \
                     filesystem's end at {end} bytes"
                ),
            })
        }
        Some(SourceFailure::OverBudget(budget)) => Err(ErofsFileError::Corrupt {
            path: path.to_string(),
            detail: format!(
                "the image's metadata asked for more than {} bytes in {} reads from the \
                 source, far beyond what this lookup needs",
                budget.bytes, budget.reads
            ),
        }),
    };
    (source, counts, result)
}

/// Maps erofs-rs's verdict on the image to ours. Its I/O errors stand in for the failure the
/// source recorded, which [`settle`] puts back.
fn classify(error: erofs_rs::Error, path: &str) -> ErofsFileError {
    use erofs_rs::Error as E;
    let path = path.to_string();
    match error {
        E::PathNotFound(_) => ErofsFileError::NotFound { path },
        E::NotAFile(_) => ErofsFileError::NotAFile { path },
        E::NotADirectory(_) => ErofsFileError::NotADirectory { path },
        E::NotSupported(feature) => ErofsFileError::Unsupported { feature },
        E::Io(e) => ErofsFileError::Source(e),
        other => ErofsFileError::Corrupt {
            path,
            detail: format!("the image is corrupt: {other}"),
        },
    }
}
