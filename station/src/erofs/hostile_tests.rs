//! Hostile images: erofs images from mkfs.erofs, mutated at random in every structure and
//! crafted into loops, lies about sizes and decompression bombs, end in `Ok` or a typed error,
//! never a panic, having read no more than the budget allows.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::test_images::*;
use super::*;
use crate::read_at::CountingReader;

/// The node id `dump.erofs` gives for `path`.
fn nid(image: &Path, path: &str) -> u64 {
    let out = run_tool("dump.erofs", &[&format!("--path={path}")], &[image]);
    out.split("NID:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|nid| nid.parse().ok())
        .unwrap_or_else(|| panic!("no NID in dump.erofs output for {path}: {out}"))
}

/// Where the inode `nid` lies in the image (metadata area start + 32 bytes per nid).
fn inode_offset(image: &[u8], nid: u64) -> usize {
    let meta_blkaddr = u32::from_le_bytes(image[1024 + 40..1024 + 44].try_into().unwrap());
    let block_size = 1usize << image[1024 + 12];
    meta_blkaddr as usize * block_size + nid as usize * 32
}

/// Recomputes the superblock checksum after a test changed the superblock, so the change
/// reaches the parser behind the checksum.
fn reseal_superblock(image: &mut [u8]) {
    if image.len() < 1024 + 128 {
        return;
    }
    // As the kernel covers it: the rest of the first block, or a whole block below 1 KiB.
    let block_size = 1usize << image[1024 + 12].clamp(9, 16);
    let covered = if block_size > 1024 {
        block_size - 1024
    } else {
        block_size
    };
    let end = (1024 + covered).min(image.len());
    image[1028..1032].fill(0);
    let crc = crc32c(&image[1024..end]);
    image[1028..1032].copy_from_slice(&crc.to_le_bytes());
}

fn crc32c(data: &[u8]) -> u32 {
    // Bitwise, independent of the table in superblock.rs.
    let mut crc = u32::MAX;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// What `exercise` hashes at most: the budgets below follow from it.
const MAX_SIZE: u64 = 1 << 20;
const HASH_BUDGET: u64 = LOOKUP_BUDGET.bytes + 2 * MAX_SIZE + (16 << 20);

struct Image {
    _dir: tempfile::TempDir,
    bytes: Vec<u8>,
    /// Named byte ranges worth mutating: the structures a reader trusts most.
    regions: Vec<(&'static str, Range<usize>)>,
}

fn image(options: &[&str]) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    let path = dir.path().join("small.erofs");
    mkfs(&tree, &path, options);
    let bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    let around = |start: usize, span: usize| start.min(len)..(start + span).min(len);
    let mut regions = vec![("superblock", around(1024, 128)), ("anywhere", 0..len)];
    for (name, path_in_image, span) in [
        ("/system inode and entries", "/system", 4096),
        ("big directory inode", BIG_DIR, 64),
        ("client inode and cluster index", CLIENT, 256),
        (
            "compressible inode and index",
            "/system/compressible.bin",
            128,
        ),
    ] {
        regions.push((
            name,
            around(inode_offset(&bytes, nid(&path, path_in_image)), span),
        ));
    }
    for (start, end) in extents(&path, CLIENT).into_iter().take(4) {
        regions.push(("client data", around(start, end.saturating_sub(start))));
    }
    for (start, end) in extents(&path, BIG_DIR) {
        regions.push((
            "big directory entries",
            around(start, end.saturating_sub(start)),
        ));
    }
    Image {
        _dir: dir,
        bytes,
        regions,
    }
}

/// What the station and an engineer would do with an image, each step checked against its
/// read budget. Returns the outcomes, for tests that expect particular ones.
fn exercise(image: Vec<u8>) -> Vec<Result<(), ErofsFileError>> {
    let mut outcomes = Vec::new();
    let counting = CountingReader::new(image);
    let (counting, hashed) = hash_file_in_erofs(counting, CLIENT, MAX_SIZE);
    assert!(
        counting.bytes_read() <= HASH_BUDGET,
        "hash read {}",
        counting.bytes_read()
    );
    outcomes.push(hashed.map(|_| ()));
    let image = counting.into_inner();
    for dir in ["/", BIG_DIR] {
        let counting = CountingReader::new(image.as_slice().to_vec());
        let (counting, listed) = list_dir(counting, dir);
        assert!(counting.bytes_read() <= LISTING_BUDGET.bytes);
        assert!(counting.reads() <= LISTING_BUDGET.reads);
        if let Ok(entries) = &listed {
            assert!(entries.len() <= MAX_DIR_ENTRIES);
        }
        outcomes.push(listed.map(|_| ()));
    }
    let counting = CountingReader::new(image);
    let (counting, streamed) =
        read_file(counting, "/system/compressible.bin", MAX_SIZE, io::sink());
    assert!(counting.bytes_read() <= HASH_BUDGET);
    outcomes.push(streamed.map(|_| ()));
    outcomes
}

/// xorshift: the same mutations on every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below.max(1) as u64) as usize
    }
}

/// Mutates `rounds` times (CI's quick form), or as often as `FLASHGATE_EROFS_MUTATIONS` says
/// with a seed from `FLASHGATE_EROFS_SEED` when run by hand for longer.
fn mutate_and_exercise(options: &[&str], seed: u64, rounds: usize) {
    let from_env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let rounds = from_env("FLASHGATE_EROFS_MUTATIONS").unwrap_or(rounds as u64) as usize;
    let seed = from_env("FLASHGATE_EROFS_SEED").map_or(seed, |s: u64| s.wrapping_mul(31) ^ seed);
    let target = image(options);
    let mut dice = Dice(seed | 1);
    let mut failures = Vec::new();
    for round in 0..rounds {
        let (region, range) = &target.regions[dice.roll(target.regions.len())];
        let mut mutated = target.bytes.clone();
        for _ in 0..1 + dice.roll(8) {
            let at = range.start + dice.roll(range.len());
            if let Some(byte) = mutated.get_mut(at) {
                *byte = match dice.roll(3) {
                    0 => *byte ^ (1 << dice.roll(8)),
                    1 => dice.roll(256) as u8,
                    _ => [0x00, 0xFF, 0x7F, 0x80][dice.roll(4)],
                };
            }
        }
        // Half the time the checksum is made right again, so the change gets past it.
        if dice.roll(2) == 0 {
            reseal_superblock(&mut mutated);
        }
        if catch_unwind(AssertUnwindSafe(|| exercise(mutated))).is_err() {
            failures.push(format!("round {round}: mutation in {region}"));
        }
    }
    for round in 0..rounds / 8 {
        let len = match round {
            0 => 0,
            1 => 1100,
            2 => 1152,
            3 => 4096,
            _ => dice.roll(target.bytes.len()),
        };
        let truncated = target.bytes[..len].to_vec();
        if catch_unwind(AssertUnwindSafe(|| exercise(truncated))).is_err() {
            failures.push(format!("truncation to {len} bytes"));
        }
    }
    assert!(
        failures.is_empty(),
        "{options:?} seed {seed} panicked: {failures:#?}"
    );
}

#[test]
fn erofs_mutated_lz4hc_images_never_panic() {
    mutate_and_exercise(&["-zlz4hc"], 1, 400);
}

#[test]
fn erofs_mutated_tail_packed_big_pcluster_images_never_panic() {
    mutate_and_exercise(&["-zlz4hc", "-C16384", "-Eztailpacking"], 2, 400);
}

#[test]
fn erofs_mutated_legacy_index_images_never_panic() {
    mutate_and_exercise(
        &["-zlz4", "-Elegacy-compress", "-Eforce-inode-extended"],
        3,
        300,
    );
}

#[test]
fn erofs_mutated_uncompressed_and_chunked_images_never_panic() {
    mutate_and_exercise(&[], 4, 300);
    mutate_and_exercise(&["--chunksize=4096", "-Eforce-chunk-indexes"], 5, 300);
}

/// Where the directory entry named `name` for `nid` is: found by its 12-byte shape (nid, name
/// offset, type) and by its name offset, from the start of its entry table, leading to `name`
/// (which tells it from the `.` and `..` entries that hold the same nid).
fn dirent_of(image: &[u8], nid: u64, file_type: u8, name: &str) -> usize {
    let wanted = nid.to_le_bytes();
    let names_it = |at: usize| {
        let name_offset = usize::from(u16::from_le_bytes([image[at + 8], image[at + 9]]));
        (0..=at.min(4096) / 12).any(|k| {
            image
                .get(at - 12 * k + name_offset..)
                .is_some_and(|rest| rest.starts_with(name.as_bytes()))
        })
    };
    let found: Vec<usize> = (1152..image.len().saturating_sub(12))
        .filter(|&at| {
            image[at..at + 8] == wanted
                && image[at + 10] == file_type
                && image[at + 11] == 0
                && names_it(at)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "entries named {name} for nid {nid}: {found:?}"
    );
    found[0]
}

/// A small image changed by `change`, its superblock checksum made right again (the first
/// block holds the root's and often /system's entries, which it covers).
fn with_image(options: &[&str], change: impl FnOnce(&Path, &mut Vec<u8>)) -> Vec<u8> {
    with_image_unsealed(options, |path, bytes| {
        change(path, bytes);
        reseal_superblock(bytes);
    })
}

fn with_image_unsealed(options: &[&str], change: impl FnOnce(&Path, &mut Vec<u8>)) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let tree = small_tree(dir.path());
    let path = dir.path().join("crafted.erofs");
    mkfs(&tree, &path, options);
    let mut bytes = std::fs::read(&path).unwrap();
    change(&path, &mut bytes);
    bytes
}

const DIR: u8 = 2;

#[test]
fn erofs_a_directory_loop_is_followed_only_as_far_as_the_path_goes() {
    // /system/priv-app now leads back to /system.
    let image = with_image(&["-zlz4hc"], |path, bytes| {
        let system = nid(path, "/system");
        let at = dirent_of(bytes, nid(path, "/system/priv-app"), DIR, "priv-app");
        bytes[at..at + 8].copy_from_slice(&system.to_le_bytes());
    });
    let (image, client) = hash_file_in_erofs(image, CLIENT, MAX_SIZE);
    assert!(
        matches!(client, Err(ErofsFileError::NotFound { .. })),
        "{client:?}"
    );
    let looped = format!("/system{}/build.prop", "/priv-app".repeat(400));
    let (image, found) = hash_file_in_erofs(image, &looped, MAX_SIZE);
    let found = found.unwrap();
    assert_eq!(
        found.sha256,
        Sha256Digest::of_bytes(b"ro.product.region=00WW\n")
    );
    assert!(found.bytes_read < LOOKUP_BUDGET.bytes);
    let beyond_path_max = format!("/system{}/build.prop", "/priv-app".repeat(500));
    let (image, refused) = hash_file_in_erofs(image, &beyond_path_max, MAX_SIZE);
    assert!(
        matches!(refused, Err(ErofsFileError::NotFound { .. })),
        "{refused:?}"
    );
    // Listing it finds /system, which now contains itself.
    let (_, listed) = list_dir(image, "/system/priv-app");
    assert!(
        matches!(&listed, Err(ErofsFileError::Corrupt { detail, .. }) if detail.contains("cycle")),
        "{listed:?}"
    );
}

#[test]
fn erofs_a_directory_that_contains_itself_is_harmless() {
    let image = with_image(&["-zlz4hc"], |path, bytes| {
        let priv_app = nid(path, "/system/priv-app");
        let at = dirent_of(
            bytes,
            nid(path, "/system/priv-app/ActivationClient"),
            DIR,
            "ActivationClient",
        );
        bytes[at..at + 8].copy_from_slice(&priv_app.to_le_bytes());
    });
    let (image, client) = hash_file_in_erofs(image, CLIENT, MAX_SIZE);
    assert!(
        matches!(client, Err(ErofsFileError::NotFound { .. })),
        "{client:?}"
    );
    let deep = format!("/system/priv-app{}", "/ActivationClient".repeat(200));
    let (image, deep) = list_dir(image, &deep);
    assert!(
        matches!(&deep, Err(ErofsFileError::Corrupt { detail, .. }) if detail.contains("cycle")),
        "{deep:?}"
    );
    exercise(image);
}

#[test]
fn erofs_entries_pointing_outside_the_image_are_errors() {
    for wild in [u64::MAX, u64::MAX / 32, 1 << 40, 3] {
        let image = with_image(&["-zlz4hc"], |path, bytes| {
            let at = dirent_of(bytes, nid(path, CLIENT), 1, "ActivationClient.apk");
            bytes[at..at + 8].copy_from_slice(&wild.to_le_bytes());
        });
        let counting = CountingReader::new(image);
        let (counting, result) = hash_file_in_erofs(counting, CLIENT, MAX_SIZE);
        assert!(result.is_err(), "nid {wild}: {result:?}");
        assert!(counting.bytes_read() < LOOKUP_BUDGET.bytes);
    }
}

#[test]
fn erofs_huge_sizes_are_refused_or_bounded() {
    // A compact inode's i_size is 32 bits at byte 8, an extended inode's 64 bits.
    let compact = with_image(&["-zlz4hc"], |path, bytes| {
        let at = inode_offset(bytes, nid(path, CLIENT)) + 8;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let at = inode_offset(bytes, nid(path, BIG_DIR)) + 8;
        bytes[at..at + 4].copy_from_slice(&0xFFFF_F000u32.to_le_bytes());
    });
    let (compact, refused) = hash_file_in_erofs(compact, CLIENT, 512 << 20);
    assert!(
        matches!(
            refused,
            Err(ErofsFileError::TooLarge {
                size: 0xFFFF_FFFF,
                ..
            })
        ),
        "{refused:?}"
    );
    let counting = CountingReader::new(compact);
    let (counting, unbounded) = hash_file_in_erofs(counting, CLIENT, u64::MAX);
    assert!(unbounded.is_err(), "{unbounded:?}");
    assert!(
        counting.bytes_read() < 64 << 20,
        "{} bytes",
        counting.bytes_read()
    );
    let counting = CountingReader::new(counting.into_inner());
    let (counting, listed) = list_dir(counting, BIG_DIR);
    assert!(listed.is_err() || listed.as_ref().is_ok_and(|e| e.len() <= MAX_DIR_ENTRIES));
    assert!(counting.bytes_read() <= LISTING_BUDGET.bytes);

    let extended = with_image(&["-zlz4hc", "-Eforce-inode-extended"], |path, bytes| {
        let at = inode_offset(bytes, nid(path, CLIENT)) + 8;
        bytes[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    });
    let (_, refused) = hash_file_in_erofs(extended, CLIENT, 512 << 20);
    assert!(
        matches!(refused, Err(ErofsFileError::TooLarge { .. })),
        "{refused:?}"
    );
}

#[test]
fn erofs_block_sizes_a_kernel_would_not_mount_are_refused() {
    for bits in [0u8, 8, 17, 30] {
        for reseal in [false, true] {
            let image = with_image_unsealed(&[], |_, bytes| {
                bytes[1024 + 12] = bits;
                if reseal {
                    reseal_superblock(bytes);
                }
            });
            let (_, result) = hash_file_in_erofs(image, CLIENT, MAX_SIZE);
            assert!(
                matches!(&result, Err(ErofsFileError::Corrupt { detail, .. }) if detail.contains("block size")),
                "2^{bits} (resealed: {reseal}): {result:?}"
            );
        }
    }
}

#[test]
fn erofs_a_changed_superblock_fails_its_checksum() {
    let image = with_image_unsealed(&["-zlz4hc"], |_, bytes| bytes[1024 + 14] ^= 1);
    let (_, result) = hash_file_in_erofs(image, CLIENT, MAX_SIZE);
    assert!(
        matches!(&result, Err(ErofsFileError::Corrupt { detail, .. }) if detail.contains("checksum")),
        "{result:?}"
    );
}

#[test]
fn erofs_an_unknown_incompatible_feature_is_unsupported() {
    let image = with_image(&["-zlz4hc"], |_, bytes| bytes[1024 + 83] |= 0x80);
    let (_, result) = hash_file_in_erofs(image, CLIENT, MAX_SIZE);
    assert!(
        matches!(result, Err(ErofsFileError::Unsupported { .. })),
        "{result:?}"
    );
}

#[test]
fn erofs_an_lz4_stream_claiming_more_than_its_extent_is_corrupt() {
    // One literal, then a match whose length runs on for ~1 MiB: far more than the 60 kB
    // extent the cluster index gives. With 0padding the stream ends at the block's end.
    let image = with_image(&["-zlz4hc"], |path, bytes| {
        let (start, end) = extents(path, "/system/compressible.bin")[0];
        let mut bomb = vec![0x1F, b'x', 0x01, 0x00];
        bomb.extend(std::iter::repeat_n(0xFF, 4000));
        bomb.extend([0x00, 0x10, b'y']);
        let block = &mut bytes[start..end];
        block.fill(0);
        assert!(bomb.len() <= block.len(), "a {}-byte pcluster", block.len());
        let at = block.len() - bomb.len();
        block[at..].copy_from_slice(&bomb);
    });
    let counting = CountingReader::new(image);
    let (counting, result) = read_file(counting, "/system/compressible.bin", MAX_SIZE, io::sink());
    assert!(
        matches!(result, Err(ErofsFileError::Corrupt { .. })),
        "{result:?}"
    );
    assert!(counting.bytes_read() < 64 * 1024);
}

#[test]
fn erofs_the_fuzz_entry_takes_anything() {
    exercise_untrusted_image(&[]);
    exercise_untrusted_image(&[0xE2; 5000]);
    let image = with_image(&["-zlz4hc", "-Eztailpacking"], |_, _| {});
    exercise_untrusted_image(&image);
    let mut dice = Dice(99);
    for _ in 0..50 {
        let junk: Vec<u8> = (0..dice.roll(20_000))
            .map(|_| dice.roll(256) as u8)
            .collect();
        let mut with_magic = junk.clone();
        if with_magic.len() > 1152 {
            with_magic[1024..1028].copy_from_slice(&0xE0F5_E1E2u32.to_le_bytes());
            with_magic[1024 + 12] = 12;
            reseal_superblock(&mut with_magic);
        }
        exercise_untrusted_image(&junk);
        exercise_untrusted_image(&with_magic);
    }
}

#[test]
fn erofs_data_placed_past_the_filesystem_is_corrupt_not_a_device_fault() {
    // The client's data moved to block 1000, beyond the filesystem but inside the source (a
    // compact inode's block address is 32 bits at byte 16): on a phone, or in a `super` image,
    // that read would land in another partition.
    let image = with_image(&[], |path, bytes| {
        let at = inode_offset(bytes, nid(path, CLIENT)) + 16;
        bytes[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    });
    assert!(image.len() < 1000 * 4096);
    let mut padded = image;
    padded.resize(8 << 20, 0);
    let counting = CountingReader::new(padded);
    let (counting, result) = hash_file_in_erofs(counting, CLIENT, MAX_SIZE);
    assert!(
        matches!(&result, Err(ErofsFileError::Corrupt { detail, .. }) if detail.contains("past the filesystem's end")),
        "{result:?}"
    );
    assert!(counting.bytes_read() < 64 * 1024);
}
