//! The reader against the demo images, mke2fs images of every supported shape, and hostile
//! images (crafted cases and a deterministic mutation run).

mod hostile;
mod mkfs;
mod mutate;

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
    // Metadata (superblock, one descriptor, four inodes, three directory blocks) is small.
    assert!(
        digest.bytes_read < digest.size + 256 * 1024,
        "read {} bytes for a {}-byte client",
        digest.bytes_read,
        digest.size
    );
    assert!(digest.reads < 16, "{} reads", digest.reads);
    println!(
        "demo client: {} bytes in {} reads for a {}-byte client",
        digest.bytes_read, digest.reads, digest.size
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

#[test]
fn the_probe_tells_ext4_from_other_images() {
    let product = demo();
    let mut superblock = vec![0u8; SUPERBLOCK_SIZE];
    view(&product, "00WW", "system")
        .read_exact_at(SUPERBLOCK_OFFSET, &mut superblock)
        .unwrap();
    assert!(is_ext4(&superblock));
    view(&product, "00WW", "boot")
        .read_exact_at(SUPERBLOCK_OFFSET, &mut superblock)
        .unwrap();
    assert!(!is_ext4(&superblock));
}

#[test]
fn paths_are_absolute_bounded_and_literal() {
    for (path, reason) in [
        ("priv-app/A.apk", "start with /"),
        ("/priv-app/../etc/hosts", "`.` and `..`"),
        ("/./a", "`.` and `..`"),
        ("/a\0b", "NUL"),
    ] {
        match components(path) {
            Err(Ext4FileError::InvalidPath { reason: r, .. }) => {
                assert!(r.contains(reason), "{path}: {r}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(components(&format!("/{}", "a".repeat(256))).is_err());
    assert!(components(&"/a".repeat(MAX_PATH_COMPONENTS + 1)).is_err());
    assert!(components(&"/".repeat(MAX_PATH_BYTES + 1)).is_err());
    assert_eq!(components("//a///b/").unwrap(), vec!["a", "b"]);
    assert!(components("/").unwrap().is_empty());
}

#[test]
fn a_failing_writer_is_an_output_error() {
    struct Broken;
    impl io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let product = demo();
    let (_, result) = read_file(
        view(&product, "00WW", "system"),
        CLIENT,
        &mut Broken,
        1 << 30,
    );
    assert!(
        matches!(result, Err(Ext4FileError::Output { .. })),
        "{result:?}"
    );
}
