//! Hostile images: real mke2fs images edited the way an attacker or a failing flash would, each
//! refused with a typed error after a bounded number of reads. The first two are the defects that
//! took ext4-view down: an extent index that points to itself, and `s_blocks_per_group = 0`.

use std::path::Path;

use protocols::external_tool;

use super::mkfs::{mkfs, pattern};
use super::*;
use crate::ext4::csum::crc32c;

const BLOCK: usize = 4096;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    image: Vec<u8>,
}

/// A small 4 KiB-block image with the client, a directory, and a file with many extents.
fn fixture(checksums: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let put = |path: &str, bytes: &[u8]| {
        let host = tree.join(path);
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, bytes).unwrap();
    };
    put(
        "priv-app/ActivationClient/ActivationClient.apk",
        &pattern(10 * BLOCK, 7),
    );
    put("app/Copy.apk", &pattern(10 * BLOCK, 8));
    put("dir/x/inside", b"inside x\n");
    put("dir/file", b"a file\n");
    let mut sparse = vec![0u8; 1 << 20];
    for i in 1..12 {
        sparse[i * 65536..i * 65536 + BLOCK].copy_from_slice(&pattern(BLOCK, i as u32));
    }
    put("sparse.bin", &sparse);
    let path = dir.path().join("fs.img");
    let features = if checksums {
        "^has_journal"
    } else {
        "^metadata_csum,^has_journal"
    };
    mkfs(&tree, &path, &["-b", "4096", "-O", features], "8M");
    let image = std::fs::read(&path).unwrap();
    Fixture {
        _dir: dir,
        path,
        image,
    }
}

fn debugfs(image: &Path, request: &str) -> String {
    let out = external_tool::command("debugfs")
        .args(["-R", request])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `label` in debugfs output.
fn number_after(text: &str, label: &str, radix: u32) -> u64 {
    let rest = &text[text
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {text}"))
        + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_digit(radix))
        .collect();
    u64::from_str_radix(&digits, radix).unwrap()
}

impl Fixture {
    fn inode_number(&self, path: &str) -> u32 {
        number_after(&debugfs(&self.path, &format!("stat {path}")), "Inode:", 10) as u32
    }

    /// Byte offset of inode `number`, as debugfs locates it.
    fn inode_offset(&self, number: u32) -> usize {
        let text = debugfs(&self.path, &format!("imap <{number}>"));
        let block = number_after(&text, "located at block", 10) as usize;
        let offset = number_after(&text, "offset 0x", 16) as usize;
        block * BLOCK + offset
    }

    fn block_of(&self, number: u32, logical: u64) -> usize {
        debugfs(&self.path, &format!("bmap <{number}> {logical}"))
            .trim()
            .parse()
            .unwrap()
    }

    fn read(&self, image: &[u8], path: &str) -> (u64, u64, Result<Vec<u8>, Ext4FileError>) {
        let mut out = Vec::new();
        let (source, result) = read_file(
            CountingReader::new(SliceSource(image)),
            path,
            &mut out,
            1 << 30,
        );
        (source.bytes_read(), source.reads(), result.map(|_| out))
    }
}

fn put16(image: &mut [u8], at: usize, v: u16) {
    image[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(image: &mut [u8], at: usize, v: u32) {
    image[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get32(image: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
}

/// Writes an extent node header and index entries (logical block, child block).
fn index_node(image: &mut [u8], at: usize, max: u16, depth: u16, entries: &[(u32, u32)]) {
    put16(image, at, 0xF30A);
    put16(image, at + 2, entries.len() as u16);
    put16(image, at + 4, max);
    put16(image, at + 6, depth);
    put32(image, at + 8, 0);
    for (i, (logical, child)) in entries.iter().enumerate() {
        let e = at + 12 + i * 12;
        put32(image, e, *logical);
        put32(image, e + 4, *child);
        put32(image, e + 8, 0);
    }
}

/// The metadata_csum seed of inode `number` at `offset` (what the reader checks it against).
fn inode_seed(image: &[u8], number: u32, offset: usize) -> u32 {
    let fs_seed = crc32c(!0, &[&image[1024 + 0x68..1024 + 0x78]]);
    let generation = get32(image, offset + 0x64);
    crc32c(fs_seed, &[&number.to_le_bytes(), &generation.to_le_bytes()])
}

/// Recomputes an inode's checksum after an edit, as e2fsck would.
fn fix_inode_checksum(image: &mut [u8], number: u32, offset: usize) {
    let seed = inode_seed(image, number, offset);
    put16(image, offset + 0x7C, 0);
    put16(image, offset + 0x82, 0);
    let sum = crc32c(seed, &[&image[offset..offset + 256]]);
    put16(image, offset + 0x7C, sum as u16);
    put16(image, offset + 0x82, (sum >> 16) as u16);
}

fn fix_extent_block_checksum(image: &mut [u8], seed: u32, block: usize, max: usize) {
    let tail = block * BLOCK + 12 + max * 12;
    let sum = crc32c(seed, &[&image[block * BLOCK..tail]]);
    put32(image, tail, sum);
}

fn fix_superblock_checksum(image: &mut [u8]) {
    let sum = crc32c(!0, &[&image[1024..1024 + 0x3FC]]);
    put32(image, 1024 + 0x3FC, sum);
}

fn corrupt_detail(result: Result<Vec<u8>, Ext4FileError>) -> String {
    match result {
        Err(Ext4FileError::Corrupt { detail, .. }) => detail,
        other => panic!("expected Corrupt, got {:?}", other.map(|b| b.len())),
    }
}

#[test]
fn an_extent_index_pointing_to_itself_is_refused_at_once() {
    for checksums in [false, true] {
        let fx = fixture(checksums);
        let number = fx.inode_number(CLIENT);
        let offset = fx.inode_offset(number);
        let free = (fx.image.len() / BLOCK - 1) as u32;
        assert!(debugfs(&fx.path, &format!("testb {free}")).contains("not in use"));
        // Root at depth 1 → block `free` claiming depth 1 and pointing to itself; and a root
        // at depth 2 → the same block, whose self-reference then breaks the depth rule.
        for root_depth in [1u16, 2] {
            let mut image = fx.image.clone();
            index_node(&mut image, offset + 0x28, 4, root_depth, &[(0, free)]);
            index_node(&mut image, free as usize * BLOCK, 340, 1, &[(0, free)]);
            if checksums {
                fix_inode_checksum(&mut image, number, offset);
                let seed = inode_seed(&image, number, offset);
                fix_extent_block_checksum(&mut image, seed, free as usize, 340);
            }
            let (bytes, reads, result) = fx.read(&image, CLIENT);
            let detail = corrupt_detail(result);
            // Either way the block's depth 1 is not its parent's depth − 1 = 0.
            assert!(
                detail.contains(&format!(
                    "block {free}: depth 1 where its parent index requires 0"
                )),
                "{detail}"
            );
            // Bounded: superblock, descriptor, four inodes, three directory blocks, at most two
            // extent blocks — not gigabytes.
            assert!(
                bytes < 64 * 1024 && reads < 16,
                "{bytes} bytes in {reads} reads"
            );
        }
    }
}

#[test]
fn a_subtree_reached_twice_breaks_the_ordering_rule() {
    let fx = fixture(false);
    let number = fx.inode_number("/sparse.bin");
    let offset = fx.inode_offset(number);
    let root = Le(&fx.image[offset + 0x28..offset + 0x28 + 60]);
    assert_eq!(root.u16(6), 1, "sparse.bin has an extent tree of depth 1");
    let leaf = root.u32(12 + 4);
    let mut image = fx.image.clone();
    index_node(
        &mut image,
        offset + 0x28,
        4,
        1,
        &[(0, leaf), (2000, leaf), (4000, leaf)],
    );
    let mut out = Vec::new();
    let (_, result) = read_file(SliceSource(&image), "/sparse.bin", &mut out, 1 << 30);
    assert!(
        matches!(result, Err(Ext4FileError::Corrupt { .. })),
        "{result:?}"
    );
}

/// An edit of image bytes (or, for the superblock cases, of the superblock's 1024 bytes).
type Edit<'a> = Box<dyn Fn(&mut [u8]) + 'a>;

fn superblock_case(edit: impl FnOnce(&mut [u8])) -> Ext4FileError {
    let fx = fixture(true);
    let mut image = fx.image.clone();
    edit(&mut image[1024..2048]);
    fix_superblock_checksum(&mut image);
    fx.read(&image, CLIENT).2.unwrap_err()
}

#[test]
fn superblock_geometry_that_would_divide_by_zero_or_overflow_is_refused() {
    let cases: [(&str, Edit, &str); 9] = [
        (
            "bpg 0",
            Box::new(|sb| put32(sb, 0x20, 0)),
            "s_blocks_per_group is 0",
        ),
        (
            "ipg 0",
            Box::new(|sb| put32(sb, 0x28, 0)),
            "s_inodes_per_group is 0",
        ),
        (
            "log bs",
            Box::new(|sb| put32(sb, 0x18, 30)),
            "s_log_block_size 30",
        ),
        (
            "inode > block",
            Box::new(|sb| put16(sb, 0x58, 8192)),
            "s_inode_size is 8192",
        ),
        (
            "groups > 2^32",
            Box::new(|sb| {
                put32(sb, 0x150, 0x100);
                put32(sb, 0x20, 8);
            }),
            "more than 2^32 groups",
        ),
        (
            "size overflow",
            Box::new(|sb| put32(sb, 0x150, u32::MAX)),
            "overflow a 64-bit size",
        ),
        (
            "inodes count",
            Box::new(|sb| put32(sb, 0x0, 1)),
            "s_inodes_count is 1",
        ),
        (
            "desc size",
            Box::new(|sb| put16(sb, 0xFE, 48)),
            "s_desc_size is 48",
        ),
        (
            "first data block",
            Box::new(|sb| put32(sb, 0x14, 5)),
            "s_first_data_block is 5",
        ),
    ];
    for (name, edit, expected) in cases {
        match superblock_case(edit) {
            Ext4FileError::Corrupt { detail, .. } => {
                assert!(detail.contains(expected), "{name}: {detail}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn features_that_would_be_misread_are_refused_by_name() {
    let cases: [(u32, &str); 3] = [
        (0x4, "needs_recovery"),
        (0x20000, "casefold"),
        (0x8000_0000, "unknown incompat feature bits 0x80000000"),
    ];
    for (bit, name) in cases {
        let error = superblock_case(|sb| put32(sb, 0x60, get32(sb, 0x60) | bit));
        assert!(
            matches!(&error, Ext4FileError::Unsupported { feature } if feature.contains(name)),
            "{error:?}"
        );
    }
    let error = superblock_case(|sb| sb[0x175] = 2);
    assert!(
        matches!(error, Ext4FileError::Unsupported { .. }),
        "{error:?}"
    );
}

#[test]
fn checksum_mismatches_name_what_failed() {
    let fx = fixture(true);
    let client = fx.inode_number(CLIENT);
    let client_at = fx.inode_offset(client);
    let sparse = fx.inode_number("/sparse.bin");
    let sparse_at = fx.inode_offset(sparse);
    let extent_block = get32(&fx.image, sparse_at + 0x28 + 12 + 4) as usize;
    let root_dir_block = fx.block_of(2, 0);
    let cases: [(usize, &str, &str); 5] = [
        (1024 + 0x30, CLIENT, "superblock: checksum"),
        (BLOCK + 0x0C, CLIENT, "group 0 descriptor checksum"),
        (
            client_at + 0x10,
            CLIENT,
            &format!("inode {client}: checksum"),
        ),
        (
            root_dir_block * BLOCK + 30,
            CLIENT,
            "directory inode 2: block 0 checksum",
        ),
        (extent_block * BLOCK + 4000, "/sparse.bin", "checksum"),
    ];
    for (at, path, expected) in cases {
        let mut image = fx.image.clone();
        image[at] ^= 0x40;
        let error = fx.read(&image, path).2.unwrap_err();
        assert!(
            matches!(&error, Ext4FileError::Corrupt { detail, .. } if detail.contains(expected)),
            "byte {at}: {error:?}"
        );
    }
    let mut image = fx.image.clone();
    image[1024 + 0x38] = 0;
    assert!(matches!(
        fx.read(&image, CLIENT).2,
        Err(Ext4FileError::NotExt4(_))
    ));
}

/// Offsets of the entries of the directory block at `block`: (entry offset, name).
fn entries(image: &[u8], block: usize) -> Vec<(usize, Vec<u8>)> {
    let mut at = block * BLOCK;
    let mut found = Vec::new();
    while at < (block + 1) * BLOCK {
        let rec_len = u16::from_le_bytes([image[at + 4], image[at + 5]]) as usize;
        let name_len = image[at + 6] as usize;
        found.push((at, image[at + 8..at + 8 + name_len].to_vec()));
        at += rec_len;
    }
    found
}

#[test]
fn broken_directory_entries_are_refused() {
    let fx = fixture(false);
    let root_block = fx.block_of(2, 0);
    let dot = entries(&fx.image, root_block)[0].0;
    for (what, edit) in [
        (
            "rec_len 0",
            Box::new(|image: &mut [u8]| put16(image, dot + 4, 0)) as Edit,
        ),
        (
            "rec_len not a multiple of 4",
            Box::new(|image: &mut [u8]| put16(image, dot + 4, 13)),
        ),
        (
            "rec_len past the block",
            Box::new(|image: &mut [u8]| put16(image, dot + 4, 8192)),
        ),
        (
            "name_len past rec_len",
            Box::new(|image: &mut [u8]| image[dot + 6] = 200),
        ),
        (
            "inode past the count",
            Box::new(|image: &mut [u8]| put32(image, dot, u32::MAX)),
        ),
    ] {
        let mut image = fx.image.clone();
        edit(&mut image);
        let detail = corrupt_detail(fx.read(&image, CLIENT).2);
        assert!(detail.contains("directory inode 2"), "{what}: {detail}");
        let (_, listing) = list_dir(SliceSource(&image), "/");
        assert!(
            matches!(listing, Err(Ext4FileError::Corrupt { .. })),
            "{what}"
        );
    }
}

#[test]
fn a_directory_entry_looping_to_its_own_directory_stays_bounded() {
    let fx = fixture(false);
    let dir = fx.inode_number("/dir");
    let block = fx.block_of(dir, 0);
    let (x_at, _) = entries(&fx.image, block)
        .into_iter()
        .find(|(_, name)| name == b"x")
        .unwrap();
    let mut image = fx.image.clone();
    put32(&mut image, x_at, dir);
    // /dir/x is /dir again, as deep as the path goes: the path length bounds the walk.
    let deep = format!("/dir{}/file", "/x".repeat(MAX_PATH_COMPONENTS - 2));
    let (bytes, reads, result) = fx.read(&image, &deep);
    assert_eq!(result.unwrap(), b"a file\n");
    assert!(
        reads < 3 * MAX_PATH_COMPONENTS as u64 + 10,
        "{reads} reads, {bytes} bytes"
    );
    let deeper = format!("/dir{}/file", "/x".repeat(MAX_PATH_COMPONENTS));
    assert!(matches!(
        fx.read(&image, &deeper).2,
        Err(Ext4FileError::InvalidPath { .. })
    ));
    let (_, listing) = list_dir(SliceSource(&image), "/dir/x/x");
    assert_eq!(listing.unwrap().len(), 2);
}

#[test]
fn bad_extents_are_refused_and_uninitialised_ones_read_as_zeros() {
    let fx = fixture(false);
    let number = fx.inode_number(CLIENT);
    let root = fx.inode_offset(number) + 0x28;
    let physical = get32(&fx.image, root + 12 + 8);
    let blocks_count = get32(&fx.image, 1024 + 0x4);

    // Every extent of the client marked uninitialised (preallocated): the file reads as zeros.
    let mut image = fx.image.clone();
    let extents = usize::from(Le(&image).u16(root + 2));
    for i in 0..extents {
        let len = root + 12 + i * 12 + 4;
        let marked = Le(&image).u16(len) | 0x8000;
        put16(&mut image, len, marked);
    }
    let (_, _, result) = fx.read(&image, CLIENT);
    assert_eq!(result.unwrap(), vec![0u8; 10 * BLOCK]);

    let edits: [(&str, Edit); 5] = [
        (
            "past the end",
            Box::new(|i| put32(i, root + 12 + 8, blocks_count - 2)),
        ),
        ("block 0", Box::new(|i| put32(i, root + 12 + 8, 0))),
        ("length 0", Box::new(|i| put16(i, root + 12 + 4, 0))),
        ("entries > max", Box::new(|i| put16(i, root + 2, 5))),
        ("depth 6", Box::new(|i| put16(i, root + 6, 6))),
    ];
    for (what, edit) in edits {
        let mut image = fx.image.clone();
        edit(&mut image);
        let detail = corrupt_detail(fx.read(&image, CLIENT).2);
        assert!(detail.contains("extent"), "{what}: {detail}");
    }
    // An encrypted file's blocks are ciphertext: refused, never hashed as if plain.
    let mut image = fx.image.clone();
    let flags = fx.inode_offset(number) + 0x20;
    let encrypted = get32(&image, flags) | 0x800;
    put32(&mut image, flags, encrypted);
    let result = fx.read(&image, CLIENT).2;
    assert!(
        matches!(&result, Err(Ext4FileError::Unsupported { feature }) if feature.contains("encrypted")),
        "{result:?}"
    );
    // Two extents that overlap in logical order.
    let mut image = fx.image.clone();
    put16(&mut image, root + 2, 2);
    put16(&mut image, root + 12 + 4, 5);
    let second = root + 24;
    put32(&mut image, second, 3);
    put16(&mut image, second + 4, 5);
    put16(&mut image, second + 6, 0);
    put32(&mut image, second + 8, physical + 5);
    let detail = corrupt_detail(fx.read(&image, CLIENT).2);
    assert!(detail.contains("overlaps"), "{detail}");
}

#[test]
fn the_read_budget_stops_what_the_structure_checks_allow() {
    let mut source = Source::new(vec![0u8; 8192]);
    source.bytes_left = 4096;
    let mut buf = vec![0u8; 4096];
    assert!(source.read(0, &mut buf).is_ok());
    assert!(matches!(
        source.read(4096, &mut buf),
        Err(Fault::Budget { .. })
    ));
    source.allow(4096, 1);
    assert!(source.read(4096, &mut buf).is_ok());
    let mut source = Source::new(vec![0u8; 64]);
    source.reads_left = 1;
    assert!(source.read(0, &mut buf[..8]).is_ok());
    assert!(matches!(
        source.read(0, &mut buf[..8]),
        Err(Fault::Budget { .. })
    ));
}

#[test]
fn shared_blocks_as_e2fsdroid_deduplicates_read_for_every_file() {
    let fx = fixture(false);
    let client = fx.inode_offset(fx.inode_number(CLIENT)) + 0x28;
    let copy = fx.inode_offset(fx.inode_number("/app/Copy.apk")) + 0x28;
    let mut image = fx.image.clone();
    // shared_blocks (read-only compatible), and the copy's extents now map the client's
    // blocks, as e2fsdroid does for identical files.
    let ro_compat = get32(&image, 1024 + 0x64) | 0x4000;
    put32(&mut image, 1024 + 0x64, ro_compat);
    image.copy_within(client..client + 60, copy);
    let (_, _, original) = fx.read(&image, CLIENT);
    let (_, _, shared) = fx.read(&image, "/app/Copy.apk");
    let (original, shared) = (original.unwrap(), shared.unwrap());
    assert!(original == pattern(10 * BLOCK, 7));
    assert!(shared == pattern(10 * BLOCK, 7));
}
