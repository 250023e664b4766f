//! One error for every layer of the finder, each saying which layer refused and why, so a
//! line engineer reading `flashgate image` or a verdict knows whether the image, the `super`
//! metadata, the filesystem or the path is at fault — or the source (file, phone) itself.

use std::fmt;
use std::io;
use std::path::PathBuf;

use protocols::lp::LpError;

use crate::erofs::ErofsFileError;
use crate::ext4::Ext4FileError;

use super::layers::OutsidePartition;
use super::FsKind;

/// The layer of the finder an error comes from, bottom to top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The byte source: an image file (raw or sparse) or a phone read through `fetch:`.
    Source,
    /// LP metadata (`super`) and the logical partition's extents.
    Super,
    /// The ext4 or erofs filesystem.
    Filesystem,
    /// The path inside the filesystem.
    Path,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Source => "source",
            Layer::Super => "super",
            Layer::Filesystem => "filesystem",
            Layer::Path => "path",
        })
    }
}

/// Where the filesystem lies: the whole image, or a logical partition of a `super` (named as
/// found in the metadata, slot suffix included). With the filesystem once it is known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    pub logical_partition: Option<String>,
    pub fs: Option<FsKind>,
}

impl Place {
    /// What holds the filesystem: `the image` or `logical partition system_a`.
    pub fn container(&self) -> String {
        match &self.logical_partition {
            Some(name) => format!("logical partition {name}"),
            None => "the image".into(),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fs {
            Some(fs) => write!(f, "the {fs} filesystem")?,
            None => f.write_str("the filesystem")?,
        }
        match &self.logical_partition {
            Some(name) => write!(f, " in logical partition {name}"),
            None => f.write_str(" of the image"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// The image file could not be opened as one (missing, not a regular file, a broken
    /// sparse image).
    #[error("{}: {detail}", path.display())]
    Open { path: PathBuf, detail: String },
    /// The source failed to deliver bytes (disconnect, timeout, short file): not the image's
    /// fault.
    #[error("reading the image failed: {0}")]
    Source(#[source] io::Error),
    /// A logical partition was asked for, but the image holds no LP geometry.
    #[error("not a super image ({detail}), so it has no logical partition `{partition}`")]
    NotSuper { partition: String, detail: String },
    /// The LP metadata is there but refused (checksums, bounds, a slot it does not have).
    #[error("the super image's LP metadata is refused: {0}")]
    Super(#[source] LpError),
    #[error("super has no logical partition `{name}` in metadata slot {slot} (it has {}); name one of those", list(available))]
    NoSuchPartition {
        name: String,
        slot: u32,
        available: Vec<String>,
    },
    /// A `super` image was given where a filesystem was expected.
    #[error(
        "this is a super image: name the logical partition that holds the filesystem (it has {})",
        list(available)
    )]
    PartitionNeeded { available: Vec<String> },
    /// A `super_empty.img` has metadata and no partition data.
    #[error("this is a super_empty.img: LP metadata only, no partition holds data (logical partition `{partition}`)")]
    SuperEmpty { partition: String },
    /// The logical partition cannot be read through this source.
    #[error("logical partition {name}: {detail}")]
    PartitionUnreadable { name: String, detail: String },
    #[error("{} holds no filesystem flashgate reads (ext4, erofs): {detail}", place.container())]
    NotAFilesystem { place: Place, detail: String },
    #[error("`{path}` is not a usable path: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("{path} is not in {place}")]
    NotFound { place: Place, path: String },
    #[error("{path} is not a regular file in {place}")]
    NotAFile { place: Place, path: String },
    #[error("{path} is a symbolic link in {place}; links inside an image are not followed")]
    Symlink { place: Place, path: String },
    #[error("{path} is not a directory in {place}, or lies under something that is not one")]
    NotADirectory { place: Place, path: String },
    #[error("{path} in {place} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        place: Place,
        path: String,
        size: u64,
        limit: u64,
    },
    #[error("{place} uses {feature}, which flashgate cannot read")]
    Unsupported { place: Place, feature: String },
    /// The filesystem's own structures are inconsistent or hostile.
    #[error("{place} is corrupt reading {path}: {detail}")]
    Corrupt {
        place: Place,
        path: String,
        detail: String,
    },
    /// The writer a file was streamed into failed.
    #[error("writing out {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// No geometry there: another magic, or the source ends before it.
fn no_geometry(error: &LpError) -> bool {
    match error {
        LpError::GeometryMagic { .. } => true,
        LpError::Io { source, .. } => source.kind() == io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

fn outside_partition(error: &io::Error) -> Option<&OutsidePartition> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<OutsidePartition>())
}

fn is_outside_partition(error: &io::Error) -> bool {
    outside_partition(error).is_some()
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no partitions".into()
    } else {
        names.join(", ")
    }
}

impl FindError {
    /// The layer that refused.
    pub fn layer(&self) -> Layer {
        match self {
            Self::Open { .. } | Self::Source(_) => Layer::Source,
            Self::NotSuper { .. }
            | Self::Super(_)
            | Self::NoSuchPartition { .. }
            | Self::PartitionNeeded { .. }
            | Self::SuperEmpty { .. }
            | Self::PartitionUnreadable { .. } => Layer::Super,
            Self::NotAFilesystem { .. } | Self::Unsupported { .. } | Self::Corrupt { .. } => {
                Layer::Filesystem
            }
            Self::InvalidPath { .. }
            | Self::NotFound { .. }
            | Self::NotAFile { .. }
            | Self::Symlink { .. }
            | Self::NotADirectory { .. }
            | Self::TooLarge { .. }
            | Self::Output { .. } => Layer::Path,
        }
    }

    /// Whether the file asked for is simply not there as a regular file (absent, a directory,
    /// a link): for verification, an absent client rather than a broken filesystem.
    pub fn is_absent_file(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. } | Self::NotAFile { .. } | Self::Symlink { .. }
        )
    }

    /// LP metadata errors: I/O is the source's failure, a missing geometry means no `super`.
    pub(super) fn from_lp(error: LpError, partition: &str) -> Self {
        match error {
            LpError::Io { source, .. } => Self::Source(source),
            LpError::GeometryBothInvalid { primary, backup } => match (*primary, *backup) {
                (primary, backup) if no_geometry(&primary) && no_geometry(&backup) => {
                    Self::NotSuper {
                        partition: partition.to_string(),
                        detail: "no LP geometry at byte 4096 or 8192".into(),
                    }
                }
                (LpError::Io { source, .. }, _) | (_, LpError::Io { source, .. }) => {
                    Self::Source(source)
                }
                (primary, backup) => Self::Super(LpError::GeometryBothInvalid {
                    primary: Box::new(primary),
                    backup: Box::new(backup),
                }),
            },
            other => Self::Super(other),
        }
    }

    /// Whether the bytes read say "not here at all": the source ends first (a file shorter
    /// than a partition's start) or holds no filesystem of ours.
    pub(super) fn is_end_of_source(error: &io::Error) -> bool {
        error.kind() == io::ErrorKind::UnexpectedEof && !is_outside_partition(error)
    }

    /// A source error, unless the logical-partition layer refused the read: then the
    /// filesystem reaches past its partition, a lie of the image.
    pub(super) fn from_source(error: io::Error, place: &Place, path: &str) -> Self {
        match outside_partition(&error) {
            Some(outside) => Self::Corrupt {
                place: place.clone(),
                path: path.to_string(),
                detail: format!("the filesystem reaches past its partition: {outside}"),
            },
            None => Self::Source(error),
        }
    }

    pub(super) fn from_ext4(error: Ext4FileError, place: &Place, path: &str) -> Self {
        let place = place.clone();
        match error {
            Ext4FileError::Source(e) => Self::from_source(e, &place, path),
            Ext4FileError::NotExt4(detail) => Self::NotAFilesystem { place, detail },
            Ext4FileError::Unsupported { feature } => Self::Unsupported { place, feature },
            Ext4FileError::InvalidPath { path, reason } => Self::InvalidPath { path, reason },
            Ext4FileError::NotFound { path } => Self::NotFound { place, path },
            Ext4FileError::NotAFile { path } => Self::NotAFile { place, path },
            Ext4FileError::NotADirectory { path } => Self::NotADirectory { place, path },
            Ext4FileError::Symlink { path } => Self::Symlink { place, path },
            Ext4FileError::TooLarge { path, size, limit } => Self::TooLarge {
                place,
                path,
                size,
                limit,
            },
            Ext4FileError::TooManyEntries { path, limit } => Self::Corrupt {
                place,
                path,
                detail: format!("the directory has more than {limit} entries"),
            },
            Ext4FileError::ReadBudget { path, bytes, reads } => Self::Corrupt {
                place,
                path,
                detail: format!(
                    "it needed more than {bytes} bytes or {reads} reads of metadata; the image \
                     is corrupt or hostile"
                ),
            },
            Ext4FileError::Corrupt { path, detail } => Self::Corrupt {
                place,
                path,
                detail,
            },
            Ext4FileError::Output { path, source } => Self::Output { path, source },
        }
    }

    pub(super) fn from_erofs(error: ErofsFileError, place: &Place, path: &str) -> Self {
        let place = place.clone();
        match error {
            ErofsFileError::Source(e) => Self::from_source(e, &place, path),
            ErofsFileError::NotErofs(detail) => Self::NotAFilesystem { place, detail },
            ErofsFileError::NotFound { path } => Self::NotFound { place, path },
            ErofsFileError::NotAFile { path } => Self::NotAFile { place, path },
            ErofsFileError::NotADirectory { path } => Self::NotADirectory { place, path },
            ErofsFileError::TooLarge { path, size, limit } => Self::TooLarge {
                place,
                path,
                size,
                limit,
            },
            ErofsFileError::Corrupt { path, detail } => Self::Corrupt {
                place,
                path,
                detail,
            },
            ErofsFileError::Unsupported { feature } => Self::Unsupported { place, feature },
            ErofsFileError::Output { path, source } => Self::Output { path, source },
        }
    }
}
