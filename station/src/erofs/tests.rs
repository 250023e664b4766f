//! The reader against images Debian's erofs-utils made: every regular file hashes to what the
//! host tree and `fsck.erofs --extract` hold, listings match the tree, refusals are typed, and
//! a small file costs a few blocks.

use std::fs::{self, File};
use std::path::Path;

use super::test_images::*;
use super::*;
use crate::read_at::CountingReader;

const NO_LIMIT: u64 = 1 << 30;

struct Built {
    _dir: tempfile::TempDir,
    image: std::path::PathBuf,
    tree: std::path::PathBuf,
    extracted: std::path::PathBuf,
}

/// The Android-like tree made into an image with `options`, checked and extracted by
/// `fsck.erofs`.
fn build(options: &[&str]) -> Built {
    build_from(android_tree, options)
}

fn build_from(make_tree: fn(&Path) -> std::path::PathBuf, options: &[&str]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let tree = make_tree(dir.path());
    let image = dir.path().join("system.erofs");
    mkfs(&tree, &image, options);
    let extracted = dir.path().join("extracted");
    run_tool(
        "fsck.erofs",
        &[&format!("--extract={}", extracted.display())],
        &[&image],
    );
    Built {
        _dir: dir,
        image,
        tree,
        extracted,
    }
}

fn open(image: &Path) -> File {
    File::open(image).unwrap()
}

/// Everything a reader of Android's erofs must get right, on one image.
fn check_image(options: &[&str]) {
    let built = build(options);
    let image_size = fs::metadata(&built.image).unwrap().len();
    let mut source = open(&built.image);
    let files = regular_files(&built.tree);
    assert!(files.len() > BIG_DIR_ENTRIES + 40, "{} files", files.len());
    for (path, host_digest, host_size) in &files {
        let (back, result) = hash_file_in_erofs(source, path, NO_LIMIT);
        source = back;
        let found = result.unwrap_or_else(|e| panic!("{options:?} {path}: {e}"));
        let extracted = fs::read(built.extracted.join(path.trim_start_matches('/'))).unwrap();
        assert_eq!(
            Sha256Digest::of_bytes(&extracted),
            *host_digest,
            "fsck {path}"
        );
        assert_eq!(found.sha256, *host_digest, "{options:?} {path}");
        assert_eq!(found.size, *host_size, "{options:?} {path}");
        assert!(found.reads > 0);
    }

    // Streaming out gives the bytes themselves.
    let mut out = Vec::new();
    let (source, streamed) = read_file(source, CLIENT, NO_LIMIT, &mut out);
    let streamed = streamed.unwrap();
    let host = fs::read(built.tree.join(CLIENT.trim_start_matches('/'))).unwrap();
    assert!(out == host, "{options:?}: streamed client differs");
    assert_eq!(streamed.sha256, Sha256Digest::of_bytes(&host));

    // Only the blocks needed: a small file costs a few blocks of a ~7 MiB image, and the
    // client about its own size.
    let (source, small) = hash_file_in_erofs(source, "/system/build.prop", NO_LIMIT);
    let small = small.unwrap();
    assert!(image_size > 3 << 20);
    assert!(
        small.bytes_read < 32 * 1024,
        "{options:?}: {} bytes read for a {}-byte file",
        small.bytes_read,
        small.size
    );
    assert!(
        streamed.bytes_read < streamed.size + 64 * 1024,
        "{options:?}: {} bytes read for the {}-byte client",
        streamed.bytes_read,
        streamed.size
    );

    let source = check_listings(source, &built.tree, options);
    check_refusals(source);
}

fn check_listings(source: File, tree: &Path, options: &[&str]) -> File {
    let (source, listed) = list_dir(source, BIG_DIR);
    let listed = listed.unwrap_or_else(|e| panic!("{options:?}: {e}"));
    let mut expected: Vec<(Vec<u8>, u64)> =
        fs::read_dir(tree.join(BIG_DIR.trim_start_matches('/')))
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().into_encoded_bytes();
                (name, entry.metadata().unwrap().len())
            })
            .collect();
    expected.sort();
    let got: Vec<(Vec<u8>, u64)> = listed.iter().map(|e| (e.name.clone(), e.size)).collect();
    assert_eq!(got, expected, "{options:?}: listing in name order");
    assert!(listed.iter().all(|e| e.file_type == ErofsFileType::Regular));

    let (source, root) = list_dir(source, "/");
    let root = root.unwrap();
    assert_eq!(root.len(), 1);
    assert_eq!(root[0].name_lossy(), "system");
    assert_eq!(root[0].file_type, ErofsFileType::Directory);

    let (source, bin) = list_dir(source, "/system/bin");
    let bin = bin.unwrap();
    let sh = bin.iter().find(|e| e.name == b"sh").unwrap();
    assert_eq!(sh.file_type, ErofsFileType::Symlink);
    assert_eq!(sh.size, "toybox".len() as u64);

    let (source, system) = list_dir(source, "/system");
    let names: Vec<_> = system
        .unwrap()
        .into_iter()
        .map(|e| e.name_lossy().into_owned())
        .collect();
    for name in [
        "a",
        "app",
        "bin",
        "build.prop",
        "empty",
        "empty_dir",
        "priv-app",
        "vendor",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    let (source, empty) = list_dir(source, "/system/empty_dir/");
    assert_eq!(empty.unwrap(), vec![]);
    source
}

fn check_refusals(source: File) {
    let (source, missing) = hash_file_in_erofs(source, "/system/priv-app/Nope.apk", NO_LIMIT);
    assert!(
        matches!(missing, Err(ErofsFileError::NotFound { ref path }) if path == "/system/priv-app/Nope.apk"),
        "{missing:?}"
    );
    let (source, missing_dir) = list_dir(source, "/system/nope");
    assert!(
        matches!(missing_dir, Err(ErofsFileError::NotFound { .. })),
        "{missing_dir:?}"
    );
    let (source, directory) = hash_file_in_erofs(source, "/system/priv-app", NO_LIMIT);
    assert!(
        matches!(directory, Err(ErofsFileError::NotAFile { .. })),
        "{directory:?}"
    );
    let (source, link) = hash_file_in_erofs(source, "/system/bin/sh", NO_LIMIT);
    assert!(
        matches!(link, Err(ErofsFileError::NotAFile { .. })),
        "{link:?}"
    );
    let (source, under_file) = hash_file_in_erofs(source, "/system/build.prop/x", NO_LIMIT);
    assert!(
        matches!(under_file, Err(ErofsFileError::NotADirectory { .. })),
        "{under_file:?}"
    );
    let (source, list_file) = list_dir(source, "/system/build.prop");
    assert!(
        matches!(list_file, Err(ErofsFileError::NotADirectory { .. })),
        "{list_file:?}"
    );
    let (source, large) = hash_file_in_erofs(source, CLIENT, 1000);
    assert!(
        matches!(
            large,
            Err(ErofsFileError::TooLarge {
                limit: 1000,
                size: 300_123,
                ..
            })
        ),
        "{large:?}"
    );
    let long = format!("/system/{}", "x".repeat(256));
    let (_, too_long) = hash_file_in_erofs(source, &long, NO_LIMIT);
    assert!(
        matches!(too_long, Err(ErofsFileError::NotFound { .. })),
        "{too_long:?}"
    );
}

#[test]
fn erofs_uncompressed() {
    check_image(&[]);
}

#[test]
fn erofs_lz4() {
    check_image(&["-zlz4"]);
}

#[test]
fn erofs_lz4hc() {
    check_image(&["-zlz4hc"]);
}

#[test]
fn erofs_lz4hc_level_12() {
    check_image(&["-zlz4hc,12"]);
}

#[test]
fn erofs_lz4hc_tail_packing() {
    check_image(&["-zlz4hc", "-Eztailpacking"]);
}

#[test]
fn erofs_lz4hc_big_pclusters() {
    check_image(&["-zlz4hc", "-C65536"]);
}

#[test]
fn erofs_lz4hc_big_pclusters_with_tail_packing() {
    check_image(&["-zlz4hc,9", "-C262144", "-Eztailpacking"]);
}

#[test]
fn erofs_lz4_legacy_full_indexes() {
    check_image(&["-zlz4", "-Elegacy-compress"]);
}

#[test]
fn erofs_lz4hc_extended_inodes() {
    check_image(&["-zlz4hc", "-C16384", "-Eforce-inode-extended"]);
}

#[test]
fn erofs_uncompressed_without_inline_data() {
    check_image(&["-Enoinline_data"]);
}

#[test]
fn erofs_chunk_indexes() {
    check_image(&["--chunksize=4096", "-Eforce-chunk-indexes"]);
}

#[test]
fn erofs_chunk_block_map() {
    check_image(&["--chunksize=65536", "-Eforce-inode-blockmap"]);
}

#[test]
fn erofs_probe_and_not_erofs() {
    let built = build_from(small_tree, &["-zlz4hc"]);
    let head = fs::read(&built.image).unwrap();
    assert!(is_erofs(&head[..PROBE_LEN]));
    let mut ext4_like = vec![0u8; 8192];
    ext4_like[1080..1082].copy_from_slice(&[0x53, 0xEF]);
    assert!(!is_erofs(&ext4_like));
    let (_, result) = hash_file_in_erofs(ext4_like, CLIENT, NO_LIMIT);
    assert!(
        matches!(result, Err(ErofsFileError::NotErofs(_))),
        "{result:?}"
    );
}

#[test]
fn erofs_a_failing_source_is_reported_as_such() {
    // A compressed image cut where the client's data starts: metadata is there, data is not.
    let built = build_from(small_tree, &["-zlz4hc"]);
    let data_start = extents(&built.image, CLIENT)[0].0;
    assert!(data_start > 4096);
    let head = fs::read(&built.image).unwrap()[..data_start].to_vec();
    let (head, result) = hash_file_in_erofs(head, CLIENT, NO_LIMIT);
    match result {
        Err(ErofsFileError::Source(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
        other => panic!("expected a source error, got {other:?}"),
    }
    assert_eq!(head.len(), data_start);
}

#[test]
fn erofs_a_failing_writer_is_an_output_error() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let built = build_from(small_tree, &[]);
    let (_, result) = read_file(open(&built.image), CLIENT, NO_LIMIT, Full);
    assert!(
        matches!(result, Err(ErofsFileError::Output { .. })),
        "{result:?}"
    );
}

#[test]
fn erofs_counts_what_passes_through_an_outer_counter_too() {
    // The digest's counts are the reader's own; an outer counter (as verification wraps a
    // phone) sees the same.
    let built = build_from(small_tree, &["-zlz4hc", "-Eztailpacking"]);
    let counting = CountingReader::new(open(&built.image));
    let (counting, result) = hash_file_in_erofs(counting, CLIENT, NO_LIMIT);
    let digest = result.unwrap();
    assert_eq!(digest.bytes_read, counting.bytes_read());
    assert_eq!(digest.reads, counting.reads());
}
