//! Image files checked against the manifest once per batch, and handles that make sure the
//! bytes later streamed to phones are the bytes that were checked.

use std::fs::{File, Metadata};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use protocols::sparse::{is_sparse, SparseError, SparseIndex};
use sha2::{Digest, Sha256};

use crate::config::ImageFile;
use crate::digest::{HashingReader, Sha256Digest, HASH_CHUNK};
use crate::read_at::ReadAt;
use crate::regular_file::{open_regular, RegularFileError};

pub mod private_copy;

use private_copy::{PrivateCopy, PrivateCopyError, PrivateStore, Tee};

#[derive(Debug, thiserror::Error)]
pub enum ImageCheckError {
    #[error("image `{key}` ({}): no such file; copy the build's file there or correct the manifest's `path`", path.display())]
    Missing { key: String, path: PathBuf },
    #[error("image `{key}` ({}) is {kind}, not a regular file; put the image file itself at that path", path.display())]
    NotRegularFile {
        key: String,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("image `{key}` ({}): cannot open: {source}; check the image root holds the build", path.display())]
    Open {
        key: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image `{key}` ({}): {} bytes on disk, the manifest says {expected}; the file is not the one the manifest describes", path.display(), found)]
    Size {
        key: String,
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("image `{key}` ({}): SHA-256 {found}, the manifest says {expected}; the file changed after the manifest was written (rebuild the manifest or restore the file)", path.display())]
    Hash {
        key: String,
        path: PathBuf,
        expected: Sha256Digest,
        found: Sha256Digest,
    },
    #[error("image `{key}` ({}): changed on disk since pre-flight checked it ({what}); restart the batch so pre-flight checks it again", path.display())]
    ChangedSinceCheck {
        key: String,
        path: PathBuf,
        what: String,
    },
    #[error("image `{key}` ({}): not a valid Android sparse image: {detail}; the build is broken, rebuild the image (img2simg) and its manifest entry", path.display())]
    BadSparse {
        key: String,
        path: PathBuf,
        detail: String,
    },
    #[error("image `{key}` ({}): {source}", path.display())]
    PrivateCopy {
        key: String,
        path: PathBuf,
        #[source]
        source: PrivateCopyError,
    },
}

/// What identifies the file version that was hashed; a change means the bytes may differ.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileStamp {
    fn of(metadata: &Metadata) -> Self {
        Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (metadata.dev(), metadata.ino())
            },
        }
    }

    fn differences(&self, now: &Self) -> Option<String> {
        if self.len != now.len {
            return Some(format!("length {} → {}", self.len, now.len));
        }
        if self.modified != now.modified {
            return Some("modification time changed".into());
        }
        #[cfg(unix)]
        if self.inode != now.inode {
            return Some("replaced by another file".into());
        }
        None
    }
}

/// An image whose size and SHA-256 matched the manifest when pre-flight hashed it.
#[derive(Debug, Clone)]
pub struct VerifiedImage {
    file: ImageFile,
    stamp: FileStamp,
    /// For an Android sparse image (walked and CRC-checked), its expanded size.
    expanded_len: Option<u64>,
    /// The station's sealed copy of the checked bytes, which phones are sent, when pre-flight
    /// made one (else the file is hashed again as each phone is sent it).
    copy: Option<Arc<PrivateCopy>>,
}

/// How an image is stored on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    /// Android sparse; the partition receives its expansion.
    Sparse,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Sparse => "sparse",
        }
    }
}

impl ImageCheckError {
    /// Whether the file is there but its bytes are not the manifest's (size or digest differ,
    /// or they changed after the check), as opposed to a file that is missing, unreadable or
    /// not a file at all.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            Self::Size { .. } | Self::Hash { .. } | Self::ChangedSinceCheck { .. }
        )
    }
}

/// Opens the image for reading only if it is a regular file (see [`open_regular`]).
pub fn open_regular_file(file: &ImageFile) -> Result<File, ImageCheckError> {
    open_regular(&file.path).map_err(|error| match error {
        RegularFileError::Missing => ImageCheckError::Missing {
            key: file.key.clone(),
            path: file.path.clone(),
        },
        RegularFileError::NotRegular(kind) => ImageCheckError::NotRegularFile {
            key: file.key.clone(),
            path: file.path.clone(),
            kind,
        },
        RegularFileError::Io(source) => ImageCheckError::Open {
            key: file.key.clone(),
            path: file.path.clone(),
            source,
        },
    })
}

impl VerifiedImage {
    /// Streams the file through SHA-256 and compares size and digest with the manifest.
    pub fn check(file: &ImageFile) -> Result<Self, ImageCheckError> {
        Self::check_into(file, None)
    }

    /// [`check`](Self::check), and the checked bytes kept in `store`: copied there in the
    /// same pass that hashes them (or a sealed copy of the same content reused), so phones are
    /// sent the copy without hashing it again.
    pub fn check_and_copy(file: &ImageFile, store: &PrivateStore) -> Result<Self, ImageCheckError> {
        Self::check_into(file, Some(store))
    }

    fn check_into(file: &ImageFile, store: Option<&PrivateStore>) -> Result<Self, ImageCheckError> {
        let open_error = |source| ImageCheckError::Open {
            key: file.key.clone(),
            path: file.path.clone(),
            source,
        };
        let mut handle = open_regular_file(file)?;
        let before = FileStamp::of(&handle.metadata().map_err(open_error)?);
        if before.len != file.size {
            return Err(ImageCheckError::Size {
                key: file.key.clone(),
                path: file.path.clone(),
                expected: file.size,
                found: before.len,
            });
        }
        let mut magic = [0u8; 4];
        let sparse = handle.read_exact(&mut magic).is_ok() && is_sparse(&magic);
        handle.seek(SeekFrom::Start(0)).map_err(open_error)?;
        let copy_error = |source| ImageCheckError::PrivateCopy {
            key: file.key.clone(),
            path: file.path.clone(),
            source,
        };
        let reusable = store.and_then(|s| s.reuse(&file.sha256, file.size));
        let mut writer = match (store, &reusable) {
            (Some(store), None) => {
                let allocated =
                    private_copy::allocated_bytes(&handle.metadata().map_err(open_error)?);
                Some(store.start(file.size, allocated).map_err(copy_error)?)
            }
            _ => None,
        };
        // A sparse image is walked and its CRCs verified in the same pass that hashes it (and
        // copies it, when a copy is made).
        let pass = match writer.as_mut() {
            Some(copy) => hash_and_walk(
                Tee {
                    inner: &mut handle,
                    copy,
                },
                sparse,
                file.size,
            ),
            None => hash_and_walk(&mut handle, sparse, file.size),
        }
        .map_err(open_error)?;
        let (sparse_check, found, hashed) = (pass.sparse, pass.digest, pass.len);
        let after = FileStamp::of(&handle.metadata().map_err(open_error)?);
        let unmatched =
            before.differences(&after).is_some() || hashed != file.size || found != file.sha256;
        let copy = match (writer, reusable) {
            (Some(writer), _) if unmatched => {
                writer.discard();
                None
            }
            (Some(writer), _) => {
                let store = store.expect("a writer comes from a store");
                Some(writer.seal(store, &found).map_err(copy_error)?)
            }
            (None, reused) => reused,
        };
        if let Some(what) = before.differences(&after) {
            return Err(ImageCheckError::ChangedSinceCheck {
                key: file.key.clone(),
                path: file.path.clone(),
                what: format!("while it was being hashed: {what}"),
            });
        }
        if hashed != file.size {
            return Err(ImageCheckError::Size {
                key: file.key.clone(),
                path: file.path.clone(),
                expected: file.size,
                found: hashed,
            });
        }
        if found != file.sha256 {
            return Err(ImageCheckError::Hash {
                key: file.key.clone(),
                path: file.path.clone(),
                expected: file.sha256,
                found,
            });
        }
        // Only now that the bytes are the manifest's is a bad sparse image the build's fault.
        let expanded_len = match sparse_check {
            None => None,
            Some(Ok(summary)) => Some(summary.expanded_len),
            Some(Err(SparseError::Io { source, .. })) => return Err(open_error(source)),
            Some(Err(e)) => {
                return Err(ImageCheckError::BadSparse {
                    key: file.key.clone(),
                    path: file.path.clone(),
                    detail: e.to_string(),
                })
            }
        };
        Ok(Self {
            file: file.clone(),
            stamp: after,
            expanded_len,
            copy,
        })
    }

    /// The station's sealed copy phones are sent, when pre-flight made one.
    pub fn private_copy(&self) -> Option<&Path> {
        self.copy.as_deref().map(PrivateCopy::path)
    }

    /// Where a reader of the checked bytes opens them: the private copy, else the file.
    pub fn send_path(&self) -> &Path {
        self.private_copy().unwrap_or(&self.file.path)
    }

    /// `Err` when the private copy changed since it was sealed (the file itself, without one,
    /// when it changed since it was hashed).
    pub fn check_unchanged(&self) -> Result<(), ImageCheckError> {
        self.reopen().map(drop)
    }

    /// The same checked file under another manifest key (two entries naming one file).
    pub fn renamed(mut self, key: &str) -> Self {
        self.file.key = key.to_string();
        self
    }

    pub fn manifest(&self) -> &ImageFile {
        &self.file
    }

    pub fn key(&self) -> &str {
        &self.file.key
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    pub fn size(&self) -> u64 {
        self.file.size
    }

    pub fn sha256(&self) -> Sha256Digest {
        self.file.sha256
    }

    /// Bytes the partition receives: the expanded size of a sparse image, else the file size.
    pub fn partition_bytes(&self) -> u64 {
        self.expanded_len.unwrap_or(self.file.size)
    }

    /// The expanded size, when the file is an Android sparse image.
    pub fn sparse_expanded_len(&self) -> Option<u64> {
        self.expanded_len
    }

    pub fn format(&self) -> ImageFormat {
        if self.expanded_len.is_some() {
            ImageFormat::Sparse
        } else {
            ImageFormat::Raw
        }
    }

    fn reopen(&self) -> Result<File, ImageCheckError> {
        if let Some(copy) = &self.copy {
            return copy
                .reopen()
                .map_err(|e| ImageCheckError::ChangedSinceCheck {
                    key: self.file.key.clone(),
                    path: self.file.path.clone(),
                    what: e.to_string(),
                });
        }
        let open_error = |source| ImageCheckError::Open {
            key: self.file.key.clone(),
            path: self.file.path.clone(),
            source,
        };
        let handle = open_regular_file(&self.file)?;
        let now = FileStamp::of(&handle.metadata().map_err(open_error)?);
        if let Some(what) = self.stamp.differences(&now) {
            return Err(ImageCheckError::ChangedSinceCheck {
                key: self.file.key.clone(),
                path: self.file.path.clone(),
                what,
            });
        }
        Ok(handle)
    }

    /// A `Read + Seek` handle for flashing: it hashes the bytes it hands out and refuses to hand
    /// out the last ones if the whole file's digest differs from the checked one, so a phone
    /// never receives a complete image other than the one pre-flight checked.
    /// With a private copy, the stream reads the sealed copy instead, without hashing: every
    /// read checks the copy is still as sealed (see [`private_copy`]).
    pub fn open_stream(&self) -> Result<VerifiedStream, ImageCheckError> {
        let file = match &self.copy {
            // The open copy itself (read with `pread`, so the shared offset is never used).
            Some(copy) => copy
                .open_handle()
                .map_err(|e| ImageCheckError::ChangedSinceCheck {
                    key: self.file.key.clone(),
                    path: self.file.path.clone(),
                    what: e.to_string(),
                })?,
            None => self.reopen()?,
        };
        Ok(VerifiedStream {
            file,
            sealed: self.copy.clone(),
            key: self.file.key.clone(),
            expected: self.file.sha256,
            size: self.file.size,
            position: 0,
            hasher: Sha256::new(),
            hashed_up_to: 0,
            verified: false,
        })
    }

    /// Random access to the partition contents the image describes (a sparse image expanded),
    /// for looking inside it (the activation client).
    pub fn open_partition_view(&self) -> Result<PartitionView, ImageCheckError> {
        let file = self.reopen()?;
        if self.expanded_len.is_some() {
            let index = SparseIndex::build(file).map_err(|e| ImageCheckError::BadSparse {
                key: self.file.key.clone(),
                path: self.file.path.clone(),
                detail: e.to_string(),
            })?;
            Ok(PartitionView::Sparse(index))
        } else {
            Ok(PartitionView::Raw(file))
        }
    }

    /// Hashes the file again (e.g. before a long batch resumes) and compares.
    pub fn recheck(&self) -> Result<(), ImageCheckError> {
        let again = Self::check(&self.file)?;
        if let Some(what) = self.stamp.differences(&again.stamp) {
            return Err(ImageCheckError::ChangedSinceCheck {
                key: self.file.key.clone(),
                path: self.file.path.clone(),
                what,
            });
        }
        Ok(())
    }
}

/// What one pass over an image file found: the sparse walk's outcome (for a sparse image),
/// the digest and the number of bytes hashed.
struct HashPass {
    sparse: Option<Result<protocols::sparse::SparseSummary, SparseError>>,
    digest: Sha256Digest,
    len: u64,
}

/// Hashes `input` to its end, walking it as a sparse image first when it is one.
fn hash_and_walk<R: Read>(input: R, sparse: bool, declared_len: u64) -> io::Result<HashPass> {
    let mut hashing = HashingReader::new(input);
    let sparse = if sparse {
        let reader = BufReader::with_capacity(HASH_CHUNK, &mut hashing);
        Some(protocols::sparse::verify(reader, declared_len))
    } else {
        None
    };
    let (digest, len) = hashing.finish()?;
    Ok(HashPass {
        sparse,
        digest,
        len,
    })
}

/// The partition contents of an image file.
pub enum PartitionView {
    Raw(File),
    Sparse(SparseIndex<File>),
}

impl PartitionView {
    pub fn format(&self) -> ImageFormat {
        match self {
            Self::Raw(_) => ImageFormat::Raw,
            Self::Sparse(_) => ImageFormat::Sparse,
        }
    }
}

impl ReadAt for PartitionView {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Self::Raw(file) => file.read_exact_at(offset, buf),
            Self::Sparse(index) => index.read_exact_at(offset, buf),
        }
    }
}

/// See [`VerifiedImage::open_stream`].
#[derive(Debug)]
pub struct VerifiedStream {
    file: File,
    /// Set when the bytes come from the sealed private copy (read at `position`, not hashed).
    sealed: Option<Arc<PrivateCopy>>,
    key: String,
    expected: Sha256Digest,
    size: u64,
    position: u64,
    hasher: Sha256,
    /// Bytes `[0, hashed_up_to)` handed out so far have been hashed, in order. Reads that start
    /// past it (a client scanning sparse chunk headers before sending) are not hashed; the
    /// prefix grows again when reading comes back to it.
    hashed_up_to: u64,
    verified: bool,
}

/// What a finished [`VerifiedStream`] proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamProof {
    /// Every byte of the file was handed out and their SHA-256 is the checked one.
    AllBytesMatched(Sha256Digest),
    /// Not every byte was handed out in one ordered pass: only the first `hashed` bytes were.
    Partial { hashed: u64 },
    /// The bytes came from the station's sealed copy of the checked file, unchanged at every
    /// read; it was hashed (to this digest) as it was written.
    FromSealedCopy(Sha256Digest),
}

impl VerifiedStream {
    /// What the bytes handed out so far prove.
    pub fn proof(&self) -> StreamProof {
        if self.sealed.is_some() {
            StreamProof::FromSealedCopy(self.expected)
        } else if self.verified {
            StreamProof::AllBytesMatched(self.expected)
        } else {
            StreamProof::Partial {
                hashed: self.hashed_up_to,
            }
        }
    }

    fn account(&mut self, start: u64, data: &[u8]) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        let end = start + data.len() as u64;
        if start > self.hashed_up_to || end <= self.hashed_up_to {
            return Ok(());
        }
        let skip = usize::try_from(self.hashed_up_to - start).unwrap_or(usize::MAX);
        let fresh = data.get(skip..).unwrap_or(&[]);
        self.hasher.update(fresh);
        self.hashed_up_to = end;
        if self.hashed_up_to > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "image `{}` grew past its checked size of {} bytes while being sent",
                    self.key, self.size
                ),
            ));
        }
        if self.hashed_up_to == self.size {
            let found = Sha256Digest::from_hasher(std::mem::take(&mut self.hasher));
            if found != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "image `{}` changed on disk: the bytes read hash to {found}, pre-flight checked {}; \
                         the last bytes were withheld so the phone does not get a complete image",
                        self.key, self.expected
                    ),
                ));
            }
            self.verified = true;
        }
        Ok(())
    }
}

impl Read for VerifiedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.position;
        if let Some(copy) = &self.sealed {
            let n = copy.read_at(start, buf)?;
            self.position = start + n as u64;
            return Ok(n);
        }
        let n = self.file.read(buf)?;
        let data = buf.get(..n).unwrap_or(&[]);
        if let Err(e) = self.account(start, data) {
            // Do not let the caller use bytes that failed the check.
            buf.get_mut(..n).unwrap_or(&mut []).fill(0);
            return Err(e);
        }
        self.position = start + n as u64;
        Ok(n)
    }
}

impl Seek for VerifiedStream {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        if self.sealed.is_some() {
            let target = match to {
                SeekFrom::Start(at) => Some(at),
                SeekFrom::End(by) => self.size.checked_add_signed(by),
                SeekFrom::Current(by) => self.position.checked_add_signed(by),
            };
            self.position = target.ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "seek before the image's start")
            })?;
            return Ok(self.position);
        }
        self.position = self.file.seek(to)?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests;
