//! A read-only ext4 reader with its bounds built in, over any [`ReadAt`] source. Pre-flight runs
//! it over image files; verification runs it over a phone's partition (fastboot `fetch`,
//! Firehose `<read>`), reading only the blocks ext4 needs: superblock, one group descriptor and
//! one inode per path component, directory blocks, extent or indirect blocks, file data.
//!
//! Bounded against hostile images, which is why it is ours and not a crate's:
//! - every read is charged to a budget: [`METADATA_BUDGET_BYTES`] and
//!   [`METADATA_BUDGET_READS`] for metadata, plus the file's own size once its inode has been
//!   checked against the caller's limit — nothing can make it read gigabytes from a phone;
//! - no recursion on image data; a metadata buffer is at most 64 KiB (a block, or a run of
//!   directory blocks), a data read at most 1 MiB (contiguous blocks coalesced), and the
//!   extent walk holds at most one block per tree level;
//! - paths are bounded ([`MAX_PATH_COMPONENTS`], 255-byte names) and symlinks never followed;
//! - every offset, length and index from the image is checked before use; arithmetic on image
//!   values is range-checked first, so image data never panics.
//!
//! Supported: 1–64 KiB blocks, 32/64-byte group descriptors (64bit), flex_bg, meta_bg,
//! sparse_super(2), extents (uninitialised extents and holes read as zeros), legacy
//! direct/indirect block maps, linear and htree directories (read linearly), inline data
//! (in `i_block` and the in-inode `system.data` continuation), filetype, huge_file,
//! large_file, largedir, dir_nlink, extra_isize, bigalloc, shared_blocks and any other
//! read-only compatible feature (by definition harmless to a reader), and metadata_csum
//! (superblock, group descriptor, inode, extent block and directory block checksums verified)
//! or gdt_csum. Refused as [`Ext4FileError::Unsupported`]: needs_recovery (a journal to replay —
//! a flashed, never-mounted image never has one), journal_dev, compression, dirdata, casefold,
//! unknown incompatible features, encrypted files, inline data kept in an EA inode.
//!
//! Why not the `ext4-view` crate (0.9.3), which this replaces — two defects worth offering
//! upstream:
//! - `iters/extents.rs` reads a child extent node without checking that its depth is the
//!   parent's depth − 1, so an index that points to itself (or to an ancestor) is followed
//!   forever, allocating each time (23.8 GB in 13 s); its block cache serves the repeated reads,
//!   so a budget imposed through the reader cannot stop it. Fix: reject a child whose `eh_depth`
//!   is not the parent's − 1, and one whose `eh_entries` exceeds `eh_max` or whose `eh_max`
//!   exceeds what fits the block.
//! - `superblock.rs` divides by `s_blocks_per_group` before checking it (panic on 0). Fix:
//!   reject `s_blocks_per_group == 0` and `s_inodes_per_group == 0` (and values past one
//!   bitmap block) before any division.

mod csum;
mod dir;
mod extent;
mod file;
mod group;
mod indirect;
mod inode;
mod superblock;

#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::ops::ControlFlow;

use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;
use crate::read_at::{CountingReader, ReadAt};

use group::GroupDesc;
use inode::Inode;
pub use superblock::{declared_size, is_ext4, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};

/// Metadata bytes one call may read: a path's directories, inodes and extent blocks are a few
/// kilobytes in a real image; a directory of a hundred thousand entries is a few megabytes.
pub const METADATA_BUDGET_BYTES: u64 = 64 << 20;
/// Metadata read requests one call may make (each is a round trip to a phone).
pub const METADATA_BUDGET_READS: u64 = 16 << 10;
/// Path components a lookup follows.
pub const MAX_PATH_COMPONENTS: usize = 64;
/// Longest path accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Entries [`list_dir`] returns at most.
pub const MAX_LISTED_ENTRIES: usize = 65536;

/// The digest of a file found inside ext4, and what it cost to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext4FileDigest {
    pub sha256: Sha256Digest,
    /// The file's length.
    pub size: u64,
    /// Bytes read from the source, metadata and data.
    pub bytes_read: u64,
    /// Read requests made to the source.
    pub reads: u64,
}

/// What [`read_file`] wrote, and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext4FileRead {
    pub size: u64,
    pub bytes_read: u64,
    pub reads: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext4FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    /// A mode whose type bits name none of the above.
    Unknown(u16),
}

impl Ext4FileType {
    fn from_mode(mode: u16) -> Self {
        match mode & 0xF000 {
            0x8000 => Self::Regular,
            0x4000 => Self::Directory,
            0xA000 => Self::Symlink,
            0x2000 => Self::CharDevice,
            0x6000 => Self::BlockDevice,
            0x1000 => Self::Fifo,
            0xC000 => Self::Socket,
            other => Self::Unknown(other >> 12),
        }
    }
}

/// One entry of [`list_dir`] (`.` and `..` are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ext4DirEntry {
    /// The name's bytes as stored (ext4 names need not be UTF-8).
    pub name: Vec<u8>,
    pub inode: u32,
    pub file_type: Ext4FileType,
    pub size: u64,
}

impl Ext4DirEntry {
    pub fn name_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Ext4FileError {
    /// The source itself failed (disconnect, timeout, short image): not the filesystem's fault.
    #[error("reading the filesystem: {0}")]
    Source(#[source] io::Error),
    #[error("not a readable ext4 filesystem: {0}")]
    NotExt4(String),
    #[error("the filesystem uses {feature}, which this reader does not implement")]
    Unsupported { feature: String },
    #[error("`{path}` is not a usable path inside ext4: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("{path} is not in the filesystem")]
    NotFound { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    #[error("{path} is a symbolic link; links inside an image are not followed")]
    Symlink { path: String },
    #[error("{path} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path} has more than {limit} entries")]
    TooManyEntries { path: String, limit: usize },
    #[error("reading {path} needed more than {bytes} bytes or {reads} reads of the filesystem; the image is corrupt or hostile")]
    ReadBudget {
        path: String,
        bytes: u64,
        reads: u64,
    },
    #[error("reading {path}: {detail}")]
    Corrupt { path: String, detail: String },
    /// Writing the file's bytes out failed (read_file's writer).
    #[error("writing out {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// What went wrong below the path level; [`Fault::at`] names the path.
#[derive(Debug)]
enum Fault {
    Source(io::Error),
    NotExt4(String),
    Unsupported(String),
    Corrupt(String),
    Budget { bytes: u64, reads: u64 },
    Output(io::Error),
}

impl Fault {
    fn at(self, path: &str) -> Ext4FileError {
        let path = path.to_string();
        match self {
            Fault::Source(e) => Ext4FileError::Source(e),
            Fault::NotExt4(detail) => Ext4FileError::NotExt4(detail),
            Fault::Unsupported(feature) => Ext4FileError::Unsupported { feature },
            Fault::Corrupt(detail) => Ext4FileError::Corrupt { path, detail },
            Fault::Budget { bytes, reads } => Ext4FileError::ReadBudget { path, bytes, reads },
            Fault::Output(source) => Ext4FileError::Output { path, source },
        }
    }
}

/// Little-endian fields of an on-disk structure; a field past the end reads as 0, so callers
/// check lengths once and never index out of range.
#[derive(Clone, Copy)]
struct Le<'a>(&'a [u8]);

impl Le<'_> {
    fn u16(self, at: usize) -> u16 {
        at.checked_add(2)
            .and_then(|end| self.0.get(at..end))
            .and_then(|b| b.try_into().ok())
            .map_or(0, u16::from_le_bytes)
    }

    fn u32(self, at: usize) -> u32 {
        at.checked_add(4)
            .and_then(|end| self.0.get(at..end))
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }
}

/// The source with the read budget charged on every request.
struct Source<S> {
    inner: CountingReader<S>,
    bytes_left: u64,
    reads_left: u64,
    bytes_limit: u64,
    reads_limit: u64,
}

impl<S: ReadAt> Source<S> {
    fn new(inner: S) -> Self {
        Self {
            inner: CountingReader::new(inner),
            bytes_left: METADATA_BUDGET_BYTES,
            reads_left: METADATA_BUDGET_READS,
            bytes_limit: METADATA_BUDGET_BYTES,
            reads_limit: METADATA_BUDGET_READS,
        }
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let len = buf.len() as u64;
        if len > self.bytes_left || self.reads_left == 0 {
            return Err(Fault::Budget {
                bytes: self.bytes_limit,
                reads: self.reads_limit,
            });
        }
        self.bytes_left -= len;
        self.reads_left -= 1;
        self.inner.read_exact_at(offset, buf).map_err(Fault::Source)
    }

    fn allow(&mut self, bytes: u64, reads: u64) {
        self.bytes_left = self.bytes_left.saturating_add(bytes);
        self.bytes_limit = self.bytes_limit.saturating_add(bytes);
        self.reads_left = self.reads_left.saturating_add(reads);
        self.reads_limit = self.reads_limit.saturating_add(reads);
    }
}

/// An opened filesystem: the checked superblock and the budgeted source.
struct Volume<'s, S> {
    source: &'s mut Source<S>,
    sb: superblock::Superblock,
    /// The last group descriptor read: a path's inodes are usually in one group.
    group: Option<(u32, GroupDesc)>,
}

impl<'s, S: ReadAt> Volume<'s, S> {
    fn open(source: &'s mut Source<S>) -> Result<Self, Fault> {
        let mut bytes = [0u8; SUPERBLOCK_SIZE];
        source.read(SUPERBLOCK_OFFSET, &mut bytes)?;
        let sb = superblock::Superblock::parse(&bytes)?;
        Ok(Self {
            source,
            sb,
            group: None,
        })
    }

    /// Reads `buf.len()` bytes from the start of `block`, refusing anything past the end of the
    /// filesystem.
    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let blocks = (buf.len() as u64).div_ceil(self.sb.block_size);
        if block
            .checked_add(blocks)
            .is_none_or(|end| end > self.sb.blocks_count)
        {
            return Err(Fault::Corrupt(format!(
                "a read of {blocks} blocks at block {block} passes the filesystem's {} blocks",
                self.sb.blocks_count
            )));
        }
        self.source.read(block * self.sb.block_size, buf)
    }

    fn inode(&mut self, number: u32) -> Result<Inode, Fault> {
        let group = self.sb.inode_group(number)?;
        let desc = match self.group {
            Some((cached, desc)) if cached == group => desc,
            _ => {
                let offset = self.sb.descriptor_offset(group)?;
                let mut bytes = vec![0u8; self.sb.desc_size as usize];
                self.source.read(offset, &mut bytes)?;
                let desc = self.sb.parse_descriptor(group, &bytes)?;
                self.group = Some((group, desc));
                desc
            }
        };
        let mut bytes = vec![0u8; self.sb.inode_size as usize];
        self.source
            .read(self.sb.inode_offset(number, &desc), &mut bytes)?;
        Inode::parse(&self.sb, number, &bytes)
    }
}

/// Runs `f` on the opened filesystem and hands the source back with what was read.
fn with_volume<S: ReadAt, T>(
    source: S,
    path: &str,
    f: impl FnOnce(&mut Volume<'_, S>) -> Result<T, Ext4FileError>,
) -> (S, u64, u64, Result<T, Ext4FileError>) {
    let mut source = Source::new(source);
    let result = match Volume::open(&mut source) {
        Ok(mut volume) => f(&mut volume),
        Err(fault) => Err(fault.at(path)),
    };
    let (bytes, reads) = (source.inner.bytes_read(), source.inner.reads());
    (source.inner.into_inner(), bytes, reads, result)
}

fn components(path: &str) -> Result<Vec<&str>, Ext4FileError> {
    let invalid = |reason: &str| Ext4FileError::InvalidPath {
        path: path.chars().take(200).collect(),
        reason: reason.to_string(),
    };
    if !path.starts_with('/') {
        return Err(invalid("it must start with /"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(invalid(&format!("longer than {MAX_PATH_BYTES} bytes")));
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.len() > MAX_PATH_COMPONENTS {
        return Err(invalid(&format!(
            "more than {MAX_PATH_COMPONENTS} components"
        )));
    }
    for part in &parts {
        if *part == "." || *part == ".." {
            return Err(invalid("`.` and `..` are not resolved"));
        }
        if part.len() > 255 || part.contains('\0') {
            return Err(invalid("a component is over 255 bytes or holds a NUL"));
        }
    }
    Ok(parts)
}

/// The inode at `path`, following no symlink.
fn resolve<S: ReadAt>(vol: &mut Volume<'_, S>, path: &str) -> Result<Inode, Ext4FileError> {
    let parts = components(path)?;
    let at = |fault: Fault| fault.at(path);
    let mut inode = vol.inode(inode::ROOT).map_err(at)?;
    if inode.file_type() != Ext4FileType::Directory {
        return Err(Fault::Corrupt("the root inode is not a directory".into()).at(path));
    }
    let mut walked = String::new();
    for name in parts {
        match inode.file_type() {
            Ext4FileType::Directory => {}
            Ext4FileType::Symlink => return Err(Ext4FileError::Symlink { path: walked }),
            _ => return Err(Ext4FileError::NotADirectory { path: walked }),
        }
        walked.push('/');
        walked.push_str(name);
        let child = dir::lookup(vol, &inode, name.as_bytes())
            .map_err(at)?
            .ok_or_else(|| Ext4FileError::NotFound {
                path: path.to_string(),
            })?;
        inode = vol.inode(child).map_err(at)?;
    }
    if inode.file_type() == Ext4FileType::Symlink {
        return Err(Ext4FileError::Symlink { path: walked });
    }
    Ok(inode)
}

/// Streams the regular file at `path` into `out`. Files larger than `max_size` are refused
/// before any data block is read. The source is handed back whatever the outcome, so a device
/// client can be used again.
pub fn read_file<S: ReadAt, W: Write + ?Sized>(
    source: S,
    path: &str,
    out: &mut W,
    max_size: u64,
) -> (S, Result<Ext4FileRead, Ext4FileError>) {
    let (source, bytes_read, reads, result) = with_volume(source, path, |vol| {
        let inode = resolve(vol, path)?;
        if inode.file_type() != Ext4FileType::Regular {
            return Err(Ext4FileError::NotAFile {
                path: path.to_string(),
            });
        }
        if inode.size > max_size {
            return Err(Ext4FileError::TooLarge {
                path: path.to_string(),
                size: inode.size,
                limit: max_size,
            });
        }
        // The file's own blocks, at worst one request each.
        let blocks = inode.size.div_ceil(vol.sb.block_size);
        vol.source.allow(blocks * vol.sb.block_size, blocks);
        let mut out = out;
        let written = file::stream(vol, &inode, &mut out).map_err(|f| f.at(path))?;
        Ok(written)
    });
    let result = result.map(|size| Ext4FileRead {
        size,
        bytes_read,
        reads,
    });
    (source, result)
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams `path` inside the ext4 filesystem on `source` through SHA-256 (see [`read_file`]).
pub fn hash_file_in_ext4<S: ReadAt>(
    source: S,
    path: &str,
    max_size: u64,
) -> (S, Result<Ext4FileDigest, Ext4FileError>) {
    let mut hasher = HashWriter(Sha256::new());
    let (source, result) = read_file(source, path, &mut hasher, max_size);
    let result = result.map(|read| Ext4FileDigest {
        sha256: Sha256Digest::from_hasher(hasher.0),
        size: read.size,
        bytes_read: read.bytes_read,
        reads: read.reads,
    });
    (source, result)
}

/// The entries of the directory at `path`, without `.` and `..`, in on-disk order.
pub fn list_dir<S: ReadAt>(source: S, path: &str) -> (S, Result<Vec<Ext4DirEntry>, Ext4FileError>) {
    let (source, _, _, result) = with_volume(source, path, |vol| {
        let dir = resolve(vol, path)?;
        if dir.file_type() != Ext4FileType::Directory {
            return Err(Ext4FileError::NotADirectory {
                path: path.to_string(),
            });
        }
        let mut names = Vec::new();
        let mut too_many = false;
        dir::scan(vol, &dir, &mut |entry| {
            if entry.name == b"." || entry.name == b".." {
                return ControlFlow::Continue(());
            }
            if names.len() == MAX_LISTED_ENTRIES {
                too_many = true;
                return ControlFlow::Break(());
            }
            names.push((entry.name.to_vec(), entry.inode));
            ControlFlow::Continue(())
        })
        .map_err(|f| f.at(path))?;
        if too_many {
            return Err(Ext4FileError::TooManyEntries {
                path: path.to_string(),
                limit: MAX_LISTED_ENTRIES,
            });
        }
        // Per entry listed, its inode and at worst its group's descriptor, on top of the
        // metadata allowance.
        let entries = names.len() as u64;
        let per_entry = u64::from(vol.sb.inode_size) + u64::from(vol.sb.desc_size);
        vol.source.allow(entries * per_entry, 2 * entries);
        names
            .into_iter()
            .map(|(name, number)| {
                let inode = vol.inode(number).map_err(|f| f.at(path))?;
                Ok(Ext4DirEntry {
                    name,
                    inode: number,
                    file_type: inode.file_type(),
                    size: inode.size,
                })
            })
            .collect()
    });
    (source, result)
}

/// Where [`fuzz_one`] looks for the client (its seeds hold one there).
pub const FUZZ_CLIENT_PATH: &str = "/priv-app/ActivationClient/ActivationClient.apk";

/// A fuzz-target entry: any bytes as a filesystem image; hash a fixed path and list `/` and
/// that path's directory. Returns normally on every input (errors are expected); a panic, a
/// hang or unbounded memory is a bug.
pub fn fuzz_one(image: &[u8]) {
    let source = SliceSource(image);
    let (source, _) = hash_file_in_ext4(source, FUZZ_CLIENT_PATH, 16 << 20);
    let (source, _) = list_dir(source, "/");
    let _ = list_dir(source, "/priv-app/ActivationClient");
}

/// A borrowed image as a source (the `[u8]` source needs `&mut`).
#[derive(Clone, Copy)]
struct SliceSource<'a>(&'a [u8]);

impl ReadAt for SliceSource<'_> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let bytes = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "past the end of the image")
            })?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}
