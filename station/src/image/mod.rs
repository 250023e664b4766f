//! Finding a file in an image: one layered reader for every image the station meets, used by
//! pre-flight on image files, by verification on what a phone reads back, and by
//! `flashgate image` for engineers.
//!
//! Layers, bottom to top, each a [`ReadAt`] over the one below and each bounded:
//! 1. a random-access source: an image file, raw or Android sparse ([`ImageFileSource`]), or a
//!    phone's partition read through fastboot `fetch:` — counted, so the caller learns what
//!    crossed the link;
//! 2. optionally `super`: LP metadata (geometry, then the header and tables of one metadata
//!    slot) and one logical partition by name, `system` or `system_a`
//!    ([`LogicalPartition`]); reads go through its extents and never outside them;
//! 3. optionally a read-ahead cache ([`BlockCache`]) for sources where every request is a
//!    round trip; windows never pass the partition or the filesystem's declared end;
//! 4. the filesystem, ext4 or erofs, told by its superblock's magic (our bounded ext4 reader,
//!    erofs through `erofs-rs` with our budgets): each reads only its metadata along the
//!    path and the file's own blocks.
//!
//! Every failure is one [`FindError`] naming its [`Layer`].

mod cache;
mod error;
mod fs;
mod layers;
mod source;

#[cfg(test)]
mod tests;

use std::io::{self, Write};

use protocols::lp::ImageLayout;

use crate::digest::Sha256Digest;
use crate::read_at::{CountingReader, ReadAt};

pub use cache::{BlockCache, CacheConfig, CacheStats};
pub use error::{FindError, Layer, Place};
pub use fs::{DirEntry, EntryKind, FsKind, Probe, PROBE_LEN};
pub use layers::{
    read_super_metadata, resolve_partition, LogicalPartition, OutsidePartition, ResolvedPartition,
};
pub use source::{ImageFileSource, Storage};

/// Where the filesystem lies in the source, and how to read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finder {
    /// The logical partition of a `super` that holds the filesystem: the name as the metadata
    /// has it, or without the slot suffix (`system` is `system_a` in slot 0). `None`: the
    /// whole source is the filesystem.
    pub logical_partition: Option<String>,
    /// The LP metadata slot to read: 0 for slot `_a`, 1 for `_b`.
    pub slot: u32,
    pub cache: CacheConfig,
}

/// A file found and hashed, and what finding it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    pub sha256: Sha256Digest,
    /// The file's length.
    pub size: u64,
    pub fs: FsKind,
    /// The logical partition it was found in, as the metadata names it (`system_a`).
    pub logical_partition: Option<String>,
    /// Bytes read from the source: LP metadata, filesystem metadata, the file's data, and
    /// whatever the cache read ahead.
    pub bytes_read: u64,
    /// Read requests made to the source (each a round trip on a phone).
    pub reads: u64,
}

/// A directory's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub fs: FsKind,
    pub logical_partition: Option<String>,
    pub entries: Vec<DirEntry>,
}

/// What an image is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// A `super` partition or `super.img`.
    Super,
    /// A `super_empty.img`: LP metadata only.
    SuperEmpty,
    Filesystem(FsKind),
    Unrecognised,
}

/// The logical partitions of a `super` image in one metadata slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperListing {
    pub layout: ImageLayout,
    pub slot: u32,
    pub slot_count: u32,
    pub partitions: Vec<LogicalPartitionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalPartitionInfo {
    pub name: String,
    /// Bytes.
    pub size: u64,
    pub group: String,
    /// `LP_PARTITION_ATTR_*` bits.
    pub attributes: u32,
    pub content: Content,
}

/// What a logical partition holds, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Filesystem(FsKind),
    /// No extents (a partition of the other slot, not yet written).
    Empty,
    /// Bytes, but neither filesystem.
    Unrecognised,
    /// Not in this source: a `super_empty.img`, or another block device (retrofit).
    NotInSource,
}

impl Content {
    pub fn as_str(self) -> &'static str {
        match self {
            Content::Filesystem(fs) => fs.as_str(),
            Content::Empty => "empty",
            Content::Unrecognised => "unknown",
            Content::NotInSource => "-",
        }
    }
}

impl Finder {
    /// The whole source is the filesystem.
    pub fn whole_image() -> Self {
        Self::default()
    }

    /// The filesystem is logical partition `name` of a `super`, read in metadata slot `slot`.
    pub fn in_logical_partition(name: &str, slot: u32) -> Self {
        Self {
            logical_partition: Some(name.to_string()),
            slot,
            cache: CacheConfig::OFF,
        }
    }

    pub fn with_cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Finds the regular file at `path` and hashes it. Files larger than `max_size` are
    /// refused before any of their data is read. The source is handed back whatever the
    /// outcome, so a device client can be used again.
    pub fn hash_file<S: ReadAt + Send>(
        &self,
        source: S,
        path: &str,
        max_size: u64,
    ) -> (S, Result<FoundFile, FindError>) {
        self.read_file(source, path, max_size, io::sink())
    }

    /// As [`Finder::hash_file`], streaming the file's bytes into `out` as well.
    pub fn read_file<S: ReadAt + Send, W: Write>(
        &self,
        source: S,
        path: &str,
        max_size: u64,
        out: W,
    ) -> (S, Result<FoundFile, FindError>) {
        let (source, counts, result) = self.run(source, path, |kind, fs_source, place| {
            let (_, result) = fs::read_file(kind, fs_source, path, max_size, out, place);
            result
        });
        let result = result.map(|(place, (sha256, size))| FoundFile {
            sha256,
            size,
            fs: place.fs.unwrap_or(FsKind::Ext4),
            logical_partition: place.logical_partition,
            bytes_read: counts.bytes,
            reads: counts.reads,
        });
        (source, result)
    }

    /// The entries of the directory at `path` (`.` and `..` left out), in on-disk order.
    pub fn list_dir<S: ReadAt + Send>(
        &self,
        source: S,
        path: &str,
    ) -> (S, Result<Listing, FindError>) {
        let (source, _, result) = self.run(source, path, |kind, fs_source, place| {
            let (_, result) = fs::list_dir(kind, fs_source, path, place);
            result
        });
        let result = result.map(|(place, entries)| Listing {
            fs: place.fs.unwrap_or(FsKind::Ext4),
            logical_partition: place.logical_partition,
            entries,
        });
        (source, result)
    }

    /// Opens the layers down to the filesystem and runs `op` on it.
    fn run<S: ReadAt + Send, T>(
        &self,
        source: S,
        path: &str,
        op: impl FnOnce(FsKind, &mut BlockCache<Region<'_, S>>, &Place) -> Result<T, FindError>,
    ) -> (S, Counts, Result<(Place, T), FindError>) {
        let mut counted = CountingReader::new(source);
        let result = fs::check_path(path).and_then(|()| self.open_and(&mut counted, path, op));
        let counts = Counts {
            bytes: counted.bytes_read(),
            reads: counted.reads(),
        };
        (counted.into_inner(), counts, result)
    }

    fn open_and<S: ReadAt + Send, T>(
        &self,
        counted: &mut CountingReader<S>,
        path: &str,
        op: impl FnOnce(FsKind, &mut BlockCache<Region<'_, S>>, &Place) -> Result<T, FindError>,
    ) -> Result<(Place, T), FindError> {
        let region = match &self.logical_partition {
            None => Region::Whole(counted),
            Some(name) => {
                let partition = resolve_partition(counted, name, self.slot)?;
                Region::Logical(LogicalPartition::new(counted, partition))
            }
        };
        let len = region.len();
        let mut place = Place {
            logical_partition: region.name(),
            fs: None,
        };
        let mut cache = BlockCache::new(region, self.cache);
        if let Some(len) = len {
            cache.limit_to(len);
        }
        let probe = match Probe::read(&mut cache, len) {
            Ok(probe) => probe,
            Err(e) if FindError::is_end_of_source(&e) => {
                let detail = format!("it is shorter than the {PROBE_LEN} bytes a superblock needs");
                return Err(self.not_a_filesystem(&mut cache, detail, &place));
            }
            Err(e) => return Err(FindError::from_source(e, &place, path)),
        };
        let Probe::Filesystem {
            kind,
            declared_size,
        } = probe
        else {
            let detail = match len {
                Some(0) => "it is empty (0 bytes)".to_string(),
                Some(len) if len < PROBE_LEN as u64 => format!("it is only {len} bytes"),
                _ => "no ext4 or erofs superblock at byte 1024".to_string(),
            };
            return Err(self.not_a_filesystem(&mut cache, detail, &place));
        };
        if let Some(size) = declared_size {
            cache.limit_to(size);
        }
        place.fs = Some(kind);
        let value = op(kind, &mut cache, &place)?;
        Ok((place, value))
    }

    /// Why the probe found no filesystem; a whole `super` image is told apart, so the caller
    /// learns which logical partitions to choose from.
    fn not_a_filesystem<S: ReadAt>(
        &self,
        source: &mut S,
        detail: String,
        place: &Place,
    ) -> FindError {
        let mut detail = detail;
        if place.logical_partition.is_none() {
            match read_super_metadata(source, self.slot, "") {
                Ok((_, metadata)) => {
                    return FindError::PartitionNeeded {
                        available: metadata.partitions.iter().map(|p| p.name.clone()).collect(),
                    }
                }
                Err(FindError::NotSuper { .. }) => {
                    detail.push_str(", and it is no super image either");
                }
                Err(_) => {}
            }
        }
        FindError::NotAFilesystem {
            place: place.clone(),
            detail,
        }
    }
}

/// What crossed from the source.
#[derive(Debug, Clone, Copy)]
struct Counts {
    bytes: u64,
    reads: u64,
}

/// The bytes under the filesystem: the whole source, or one logical partition of it.
pub enum Region<'a, S> {
    Whole(&'a mut CountingReader<S>),
    Logical(LogicalPartition<&'a mut CountingReader<S>>),
}

impl<S> Region<'_, S> {
    fn len(&self) -> Option<u64> {
        match self {
            Region::Whole(_) => None,
            Region::Logical(partition) => Some(partition.size()),
        }
    }

    fn name(&self) -> Option<String> {
        match self {
            Region::Whole(_) => None,
            Region::Logical(partition) => Some(partition.name().to_string()),
        }
    }
}

impl<S: ReadAt> ReadAt for Region<'_, S> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Region::Whole(source) => source.read_exact_at(offset, buf),
            Region::Logical(partition) => partition.read_exact_at(offset, buf),
        }
    }
}

/// What the first bytes of `source` say it is: a `super`, a `super_empty.img`, a filesystem,
/// or none of these. `len` is the source's length when known.
pub fn identify<S: ReadAt>(mut source: S, len: Option<u64>) -> (S, Result<ImageKind, FindError>) {
    let result = identify_in(&mut source, len);
    (source, result)
}

fn identify_in<S: ReadAt>(source: &mut S, len: Option<u64>) -> Result<ImageKind, FindError> {
    match Probe::read(source, len) {
        Ok(Probe::Filesystem { kind, .. }) => return Ok(ImageKind::Filesystem(kind)),
        Ok(Probe::Other) => {}
        Err(e) if FindError::is_end_of_source(&e) => {}
        Err(e) => return Err(FindError::Source(e)),
    }
    match read_super_metadata(source, 0, "") {
        Ok((ImageLayout::Super, _)) => Ok(ImageKind::Super),
        Ok((ImageLayout::SuperEmpty, _)) => Ok(ImageKind::SuperEmpty),
        Err(FindError::NotSuper { .. }) => Ok(ImageKind::Unrecognised),
        Err(other) => Err(other),
    }
}

/// The logical partitions of the `super` on `source` in metadata slot `slot`, each with what
/// its first bytes hold.
pub fn list_logical_partitions<S: ReadAt>(
    mut source: S,
    slot: u32,
) -> (S, Result<SuperListing, FindError>) {
    let result = list_in(&mut source, slot);
    (source, result)
}

fn list_in<S: ReadAt>(source: &mut S, slot: u32) -> Result<SuperListing, FindError> {
    let (layout, metadata) = read_super_metadata(source, slot, "")?;
    let mut partitions = Vec::with_capacity(metadata.partitions.len());
    for summary in metadata.summaries() {
        let index = partitions.len();
        let content = match ResolvedPartition::new(metadata.clone(), index, layout) {
            Err(_) => Content::NotInSource,
            Ok(resolved) if resolved.size == 0 => Content::Empty,
            Ok(resolved) => {
                let len = resolved.size;
                let mut partition = LogicalPartition::new(&mut *source, resolved);
                match Probe::read(&mut partition, Some(len)).map_err(FindError::Source)? {
                    Probe::Filesystem { kind, .. } => Content::Filesystem(kind),
                    Probe::Other => Content::Unrecognised,
                }
            }
        };
        partitions.push(LogicalPartitionInfo {
            name: summary.name,
            size: summary.size,
            group: summary.group,
            attributes: summary.attributes,
            content,
        });
    }
    Ok(SuperListing {
        layout,
        slot,
        slot_count: metadata.geometry.metadata_slot_count,
        partitions,
    })
}
