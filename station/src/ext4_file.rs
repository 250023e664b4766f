//! Hash one file inside an ext4 filesystem read through any [`ReadAt`] source, reading only the
//! blocks ext4 needs (superblock, group descriptors, inodes, directory and extent blocks, file
//! data) and counting them. Pre-flight runs it over image files; the orchestrator runs it over
//! a phone's partition (fastboot `fetch`, Firehose `<read>`) to verify a unit without reading
//! the whole partition.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use ext4_view::{Ext4, Ext4Error, Ext4Read};
use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;
use crate::read_at::{CountingReader, ReadAt};

/// The digest of a file found inside ext4, and what it cost to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext4FileDigest {
    pub sha256: Sha256Digest,
    /// The file's length.
    pub size: u64,
    /// Bytes read from the source (metadata and data, including ext4-view's read-ahead).
    pub bytes_read: u64,
    /// Read requests made to the source.
    pub reads: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum Ext4FileError {
    /// The source itself failed (disconnect, timeout, short image): not the filesystem's fault.
    #[error("reading the filesystem: {0}")]
    Source(#[source] io::Error),
    #[error("not a readable ext4 filesystem: {0}")]
    NotExt4(String),
    #[error("{path} is not in the filesystem")]
    NotFound { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is {size} bytes, more than the {limit}-byte limit")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("reading {path}: {detail}")]
    Corrupt { path: String, detail: String },
}

/// Shared between this module and the boxed reader ext4-view owns, so that the source can be
/// handed back and its real I/O error recovered.
struct Shared<S> {
    source: CountingReader<S>,
    last_error: Option<io::Error>,
}

struct SharedReader<S>(Rc<RefCell<Shared<S>>>);

impl<S: ReadAt> Ext4Read for SharedReader<S> {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        let mut shared = self.0.borrow_mut();
        match shared.source.read_exact_at(start_byte, dst) {
            Ok(()) => Ok(()),
            Err(e) => {
                let message = e.to_string();
                shared.last_error = Some(e);
                Err(message.into())
            }
        }
    }
}

/// Streams `path` inside the ext4 filesystem on `source` through SHA-256. Files larger than
/// `max_size` are refused before any data block is read (a hostile or corrupt inode must not
/// make verification read gigabytes). The source is handed back whatever the outcome, so a
/// device client can be used again.
pub fn hash_file_in_ext4<S: ReadAt + 'static>(
    source: S,
    path: &str,
    max_size: u64,
) -> (S, Result<Ext4FileDigest, Ext4FileError>) {
    let shared = Rc::new(RefCell::new(Shared {
        source: CountingReader::new(source),
        last_error: None,
    }));
    let result = hash_with(&shared, path, max_size);
    // Every clone of `shared` lived inside the filesystem value dropped by `hash_with`.
    let shared = match Rc::try_unwrap(shared) {
        Ok(cell) => cell.into_inner(),
        Err(_) => unreachable!("ext4-view kept the reader after the filesystem was dropped"),
    };
    let result = result.map(|(sha256, size)| Ext4FileDigest {
        sha256,
        size,
        bytes_read: shared.source.bytes_read(),
        reads: shared.source.reads(),
    });
    (shared.source.into_inner(), result)
}

fn hash_with<S: ReadAt + 'static>(
    shared: &Rc<RefCell<Shared<S>>>,
    path: &str,
    max_size: u64,
) -> Result<(Sha256Digest, u64), Ext4FileError> {
    let source_error =
        |shared: &Rc<RefCell<Shared<S>>>, e: Ext4Error, otherwise: Ext4FileError| match (
            e,
            shared.borrow_mut().last_error.take(),
        ) {
            (Ext4Error::Io(_), Some(io)) => Ext4FileError::Source(io),
            _ => otherwise,
        };
    let fs = Ext4::load(Box::new(SharedReader(Rc::clone(shared)))).map_err(|e| {
        let detail = e.to_string();
        source_error(shared, e, Ext4FileError::NotExt4(detail))
    })?;
    let metadata = fs.metadata(path).map_err(|e| match e {
        Ext4Error::NotFound => Ext4FileError::NotFound {
            path: path.to_string(),
        },
        other => {
            let detail = other.to_string();
            source_error(
                shared,
                other,
                Ext4FileError::Corrupt {
                    path: path.to_string(),
                    detail,
                },
            )
        }
    })?;
    if !metadata.file_type().is_regular_file() {
        return Err(Ext4FileError::NotAFile {
            path: path.to_string(),
        });
    }
    let size = metadata.len();
    if size > max_size {
        return Err(Ext4FileError::TooLarge {
            path: path.to_string(),
            size,
            limit: max_size,
        });
    }
    let corrupt = |e: Ext4Error| {
        let detail = e.to_string();
        source_error(
            shared,
            e,
            Ext4FileError::Corrupt {
                path: path.to_string(),
                detail,
            },
        )
    };
    let mut file = fs.open(path).map_err(corrupt)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read_bytes(&mut buffer).map_err(corrupt)?;
        if n == 0 {
            break;
        }
        hasher.update(buffer.get(..n).unwrap_or(&[]));
        total = total.saturating_add(n as u64);
    }
    if total != size {
        return Err(Ext4FileError::Corrupt {
            path: path.to_string(),
            detail: format!("read {total} bytes, the inode says {size}"),
        });
    }
    drop(file);
    drop(fs);
    Ok((Sha256Digest::from_hasher(hasher), size))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{ProductManifest, RegionCode};
    use crate::verified_image::{PartitionView, VerifiedImage};

    const CLIENT: &str = "/priv-app/ActivationClient/ActivationClient.apk";

    fn demo() -> ProductManifest {
        let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/demo");
        let root = demo.join("images").canonicalize().unwrap();
        ProductManifest::load(&demo.join("products/fgdemo.yaml"), &root).unwrap()
    }

    fn view(product: &ProductManifest, region: &str, key: &str) -> PartitionView {
        let set = &product.regions[&RegionCode::parse(region).unwrap()];
        VerifiedImage::check(&set.files[key])
            .unwrap()
            .open_partition_view()
            .unwrap()
    }

    #[test]
    fn hashes_the_client_in_a_raw_image_reading_only_what_ext4_needs() {
        let product = demo();
        let set = &product.regions[&RegionCode::parse("00WW").unwrap()];
        let (_, result) = hash_file_in_ext4(view(&product, "00WW", "system"), CLIENT, 1 << 30);
        let digest = result.unwrap();
        assert_eq!(digest.sha256, set.activation_client.sha256);
        assert!(digest.size > 100_000);
        assert!(digest.bytes_read >= digest.size);
        assert!(
            digest.bytes_read < set.files["system"].size / 2,
            "read {} of {} bytes",
            digest.bytes_read,
            set.files["system"].size
        );
    }

    #[test]
    fn hashes_the_client_in_a_sparse_image() {
        let product = demo();
        let cn = view(&product, "00CN", "system");
        assert!(matches!(cn, PartitionView::Sparse(_)));
        let (_, result) = hash_file_in_ext4(cn, CLIENT, 1 << 30);
        let found = result.unwrap().sha256;
        assert_eq!(
            product.region_with_client(&found).map(RegionCode::as_str),
            Some("00CN")
        );
    }

    #[test]
    fn refusals_are_typed_and_the_source_comes_back() {
        let product = demo();
        let (source, missing) = hash_file_in_ext4(
            view(&product, "00WW", "system"),
            "/priv-app/Nope.apk",
            1 << 30,
        );
        assert!(
            matches!(missing, Err(Ext4FileError::NotFound { .. })),
            "{missing:?}"
        );
        let (source, directory) = hash_file_in_ext4(source, "/priv-app", 1 << 30);
        assert!(matches!(directory, Err(Ext4FileError::NotAFile { .. })));
        let (_, large) = hash_file_in_ext4(source, CLIENT, 1000);
        assert!(matches!(
            large,
            Err(Ext4FileError::TooLarge { limit: 1000, .. })
        ));

        let (_, not_ext4) = hash_file_in_ext4(view(&product, "00WW", "boot"), CLIENT, 1 << 30);
        assert!(
            matches!(not_ext4, Err(Ext4FileError::NotExt4(_))),
            "{not_ext4:?}"
        );
    }

    #[test]
    fn a_failing_source_is_reported_as_such() {
        // The first 64 KiB of the filesystem: superblock and tables are there, the file is not.
        let product = demo();
        let mut whole = view(&product, "00WW", "system");
        let mut head = vec![0u8; 64 * 1024];
        whole.read_exact_at(0, &mut head).unwrap();
        let (head, result) = hash_file_in_ext4(head, CLIENT, 1 << 30);
        match result {
            Err(Ext4FileError::Source(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("expected a source error, got {other:?}"),
        }
        assert_eq!(head.len(), 64 * 1024);
    }
}
