//! Images made by `mke2fs -d` (the peer that writes ext4 for real) in every shape the reader
//! supports: each file's bytes equal the host's and what `debugfs cat` extracts.

use std::collections::BTreeMap;
use std::path::Path;

use protocols::external_tool;

use super::*;

/// Files entries per big directory: enough for an htree of several leaf blocks at 4 KiB.
const MANY: usize = 3000;

/// A pseudo-random but reproducible byte pattern.
pub(super) fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Writes the test tree under `root`; returns each regular file's ext4 path and contents.
pub(super) fn build_tree(root: &Path, many: usize) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut put = |path: &str, bytes: Vec<u8>| {
        let host = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(&host, &bytes).unwrap();
        files.insert(path.to_string(), bytes);
    };
    put("/empty", Vec::new());
    put(
        "/small.txt",
        b"forty bytes of inline-sized file data..\n".to_vec(),
    );
    put("/medium.txt", pattern(150, 1));
    for size in [1024usize, 2048, 4096, 65536] {
        put(&format!("/one-block-{size}"), pattern(size, size as u32));
    }
    put("/nested/a/b/c/d/deep.bin", pattern(10_000, 2));
    put(
        "/priv-app/ActivationClient/ActivationClient.apk",
        pattern(300_000, 3),
    );
    put("/big.bin", pattern(3 << 20, 4));
    // Holes: a leading hole, data islands every 64 KiB (one extent each: more than the inode's
    // four, so an extent tree of depth 1), a trailing hole.
    let mut sparse = vec![0u8; 2 << 20];
    for i in 1..24 {
        let island = pattern(4096, 100 + i as u32);
        sparse[i * 65536..i * 65536 + 4096].copy_from_slice(&island);
    }
    put("/sparse.bin", sparse);
    for i in 0..many {
        put(
            &format!("/many/entry-{i:05}"),
            format!("entry {i}\n").into_bytes(),
        );
    }
    std::os::unix::fs::symlink("big.bin", root.join("link")).unwrap();
    files
}

/// A sparse file whose one data block lies past 64 MiB: reached through the triple indirect
/// block with 1 KiB blocks.
fn put_far_file(root: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    let offset = 70usize << 20;
    let mut bytes = vec![0u8; offset + 1024];
    bytes[offset..].copy_from_slice(&pattern(1024, 9));
    let file = std::fs::File::create(root.join("far.bin")).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &bytes[offset..], offset as u64).unwrap();
    files.insert("/far.bin".into(), bytes);
}

pub(super) fn mkfs(tree: &Path, image: &Path, args: &[&str], size: &str) {
    let out = external_tool::command("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-E",
            "hash_seed=5f1a0000-0000-4000-8000-0000000000aa",
        ])
        .args(["-U", "5f1a0000-0000-4000-8000-0000000000bb"])
        .args(args)
        .arg("-d")
        .arg(tree)
        .arg(image)
        .arg(size)
        .env("E2FSPROGS_FAKE_TIME", "1764288000")
        .output()
        .expect("running mke2fs");
    assert!(
        out.status.success(),
        "mke2fs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn debugfs_cat(image: &Path, path: &str) -> Vec<u8> {
    let out = external_tool::command("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()
        .expect("running debugfs");
    assert!(out.status.success());
    out.stdout
}

fn read_all(image: &[u8], path: &str) -> Result<(Vec<u8>, Ext4FileRead), Ext4FileError> {
    let mut out = Vec::new();
    let (_, result) = read_file(SliceSource(image), path, &mut out, 1 << 30);
    result.map(|read| (out, read))
}

/// Builds the tree, makes the image with `args`, and checks every file three ways.
fn check_variant(name: &str, args: &[&str], size: &str, far: bool) {
    check_variant_with(name, args, size, far, MANY)
}

fn check_variant_with(name: &str, args: &[&str], size: &str, far: bool, many: usize) {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let mut files = build_tree(&tree, many);
    if far {
        put_far_file(&tree, &mut files);
    }
    let image_path = dir.path().join("fs.img");
    mkfs(&tree, &image_path, args, size);
    let image = std::fs::read(&image_path).unwrap();
    let inline = args.iter().any(|a| a.contains("inline_data"));
    if inline {
        // mke2fs 1.47.0 with inline_data drops a sparse file's trailing hole from i_size
        // (debugfs agrees: the image holds the shorter file). Expect what the image holds.
        let held = debugfs_cat(&image_path, "/sparse.bin");
        assert!(held.len() < files["/sparse.bin"].len());
        assert!(files["/sparse.bin"].starts_with(&held));
        files.insert("/sparse.bin".into(), held);
    }
    let last_entry = format!("/many/entry-{:05}", many - 1);

    for (path, expected) in &files {
        let sampled = !path.starts_with("/many/") || path.ends_with('0') && path.ends_with("00");
        if !sampled {
            continue;
        }
        let (bytes, read) =
            read_all(&image, path).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
        assert!(bytes == *expected, "{name}: {path} differs from the host's");
        assert_eq!(read.size, expected.len() as u64, "{name}: {path}");
        let (_, digest) = hash_file_in_ext4(SliceSource(&image), path, 1 << 30);
        assert_eq!(
            digest.unwrap().sha256,
            Sha256Digest::of_bytes(expected),
            "{name}: {path}"
        );
        // Metadata is a small part of what a file costs: a few inodes and directory blocks.
        let block_size = u64::from(u32::from_le_bytes(
            image[1024 + 0x18..1024 + 0x1C].try_into().unwrap(),
        ));
        let block_size = 1024u64 << block_size;
        assert!(
            read.bytes_read < expected.len() as u64 + (256 * 1024).max(8 * block_size),
            "{name}: {path}: read {} bytes for {}",
            read.bytes_read,
            expected.len()
        );
    }
    for path in [
        "/big.bin",
        "/sparse.bin",
        "/nested/a/b/c/d/deep.bin",
        "/small.txt",
        "/medium.txt",
        "/empty",
        &last_entry,
    ] {
        let mut extracted = debugfs_cat(&image_path, path);
        if inline && files[path].len() < 60 {
            // debugfs 1.47.0 `cat` prints the whole 60-byte inline area, not i_size bytes.
            assert!(
                extracted.len() == 60 && extracted[files[path].len()..].iter().all(|&b| b == 0)
            );
            extracted.truncate(files[path].len());
        }
        assert!(
            extracted == files[path],
            "{name}: debugfs cat {path} differs from the host's file"
        );
    }
    if far {
        assert!(read_all(&image, "/far.bin").unwrap().0 == files["/far.bin"]);
    }

    let (_, listing) = list_dir(SliceSource(&image), "/many");
    let listing = listing.unwrap_or_else(|e| panic!("{name}: ls /many: {e}"));
    assert_eq!(listing.len(), many, "{name}");
    let mut names: Vec<String> = listing
        .iter()
        .map(|e| e.name_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.first().map(String::as_str), Some("entry-00000"));
    assert!(listing.iter().all(|e| e.file_type == Ext4FileType::Regular
        && e.size == files[&format!("/many/{}", e.name_lossy())].len() as u64));

    let (_, root) = list_dir(SliceSource(&image), "/");
    let root = root.unwrap();
    let mut names: Vec<String> = root.iter().map(|e| e.name_lossy().into_owned()).collect();
    names.sort();
    let mut expected: Vec<String> = std::fs::read_dir(&tree)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .chain(["lost+found".to_string()])
        .collect();
    expected.sort();
    assert_eq!(names, expected, "{name}");
    let kind = |n: &str| {
        root.iter()
            .find(|e| e.name == n.as_bytes())
            .unwrap()
            .file_type
    };
    assert_eq!(kind("nested"), Ext4FileType::Directory);
    assert_eq!(kind("link"), Ext4FileType::Symlink);

    // Symlinks are never followed, whether last or inside the path.
    assert!(
        matches!(read_all(&image, "/link"), Err(Ext4FileError::Symlink { path }) if path == "/link")
    );
    assert!(matches!(
        read_all(&image, "/link/x"),
        Err(Ext4FileError::Symlink { .. })
    ));
    assert!(
        matches!(read_all(&image, "/big.bin/x"), Err(Ext4FileError::NotADirectory { path }) if path == "/big.bin")
    );
    assert!(matches!(
        read_all(&image, "/nested"),
        Err(Ext4FileError::NotAFile { .. })
    ));
    assert!(matches!(
        read_all(&image, "/many/entry-99999"),
        Err(Ext4FileError::NotFound { .. })
    ));
}

#[test]
fn mkfs_4k_default_ext4() {
    // metadata_csum, 64bit, flex_bg, extents, journal (clean): what mke2fs -t ext4 makes today.
    check_variant("4k", &["-b", "4096", "-N", "8192"], "48M", false);
}

#[test]
fn mkfs_1k_default_ext4() {
    check_variant("1k", &["-b", "1024", "-N", "8192"], "32M", false);
}

#[test]
fn mkfs_1k_block_maps_gdt_csum_no_journal() {
    // ext3-style: direct/indirect/double/triple block maps, 32-byte descriptors, crc16.
    check_variant(
        "1k-blockmap",
        &[
            "-b",
            "1024",
            "-N",
            "8192",
            "-O",
            "^metadata_csum,^64bit,^extent,^flex_bg,^has_journal,uninit_bg",
        ],
        "32M",
        true,
    );
}

#[test]
fn mkfs_4k_inline_data() {
    check_variant(
        "4k-inline",
        &["-b", "4096", "-N", "8192", "-O", "inline_data,^has_journal"],
        "48M",
        false,
    );
}

#[test]
fn mkfs_2k_meta_bg_without_sparse_super() {
    // 64 small groups: descriptors of groups 32..63 live in group 32, after its superblock copy.
    check_variant(
        "2k-meta_bg",
        &[
            "-b",
            "2048",
            "-g",
            "512",
            "-N",
            "4096",
            "-O",
            "meta_bg,^resize_inode,^sparse_super",
        ],
        "64M",
        false,
    );
}

#[test]
fn mkfs_64k_blocks() {
    // Every file takes a 64 KiB block: fewer of them. 200 entries still need several blocks'
    // worth of rec_len arithmetic past 65535.
    check_variant_with(
        "64k",
        &["-b", "65536", "-N", "8192", "-O", "^has_journal"],
        "64M",
        false,
        200,
    );
}

#[test]
fn mkfs_no_filetype() {
    check_variant(
        "no-filetype",
        &["-b", "4096", "-N", "8192", "-O", "^filetype"],
        "48M",
        false,
    );
}

#[test]
fn mkfs_checksum_seed_survives_a_new_uuid() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let files = build_tree(&tree, 10);
    let image_path = dir.path().join("fs.img");
    mkfs(
        &tree,
        &image_path,
        &["-b", "4096", "-O", "metadata_csum_seed"],
        "16M",
    );
    let status = external_tool::command("tune2fs")
        .args(["-U", "5f1a0000-0000-4000-8000-0000000000cc"])
        .arg(&image_path)
        .output()
        .unwrap();
    assert!(status.status.success());
    let image = std::fs::read(&image_path).unwrap();
    let (bytes, _) = read_all(&image, "/nested/a/b/c/d/deep.bin").unwrap();
    assert!(bytes == files["/nested/a/b/c/d/deep.bin"]);
}

#[test]
fn mkfs_bigalloc() {
    // Clusters of 16 KiB: allocation changes, extents still count blocks.
    check_variant(
        "bigalloc",
        &[
            "-b",
            "4096",
            "-C",
            "16384",
            "-N",
            "8192",
            "-O",
            "bigalloc,^has_journal,^resize_inode",
        ],
        "128M",
        false,
    );
}
