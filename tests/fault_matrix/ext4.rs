//! The fault matrix's hostile read-back rows: a phone whose `system` partition reads back as a
//! hostile ext4 filesystem (whatever was written to it) fails that unit only, with the reason,
//! while the rest of the batch passes. The same routine reads image files at pre-flight.

use std::path::Path;

use protocols::external_tool;

use super::{failure_beside_passes, Rig};

const CLIENT_DIR: &str = "priv-app/ActivationClient";
const BLOCK: usize = 4096;
/// Superblock fields (offsets inside the superblock, which starts at byte 1024).
const SUPERBLOCK: usize = 1024;
const S_BLOCKS_COUNT: usize = 0x04;
const S_BLOCKS_PER_GROUP: usize = 0x20;
const S_INODE_SIZE: usize = 0x58;
/// `bg_inode_table_lo` in a 32-byte group descriptor (no `64bit` feature).
const BG_INODE_TABLE: usize = 0x08;
/// `i_block` in an inode: the extent tree's root.
const I_BLOCK: usize = 0x28;
const EXTENT_MAGIC: u16 = 0xf30a;

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// A small ext4 filesystem holding an activation client, built by mke2fs (the Debian peer)
/// without the checksums that would make a patched field read as plain corruption:
/// `^metadata_csum`, and `^64bit` for 32-byte group descriptors.
fn small_ext4(work: &Path) -> Vec<u8> {
    let tree = work.join("tree");
    std::fs::create_dir_all(tree.join(CLIENT_DIR)).unwrap();
    std::fs::write(
        tree.join(CLIENT_DIR).join("ActivationClient.apk"),
        b"PK\x03\x04 not the region's client",
    )
    .unwrap();
    let image = work.join("system.raw");
    let made = external_tool::command("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-N", "64"])
        .args(["-O", "^has_journal,^metadata_csum,^64bit", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("1024k")
        .output()
        .expect("running mke2fs");
    assert!(
        made.status.success(),
        "mke2fs failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    std::fs::read(image).unwrap()
}

/// `s_blocks_per_group = 0`: ext4-view 0.9.3 divides by it.
fn zero_blocks_per_group(mut image: Vec<u8>) -> Vec<u8> {
    let at = SUPERBLOCK + S_BLOCKS_PER_GROUP;
    image[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    image
}

/// The root directory's extent tree made one index level deep, its index pointing at a block
/// whose own index points at itself: ext4-view 0.9.3 follows it without end, growing memory.
fn self_referencing_extent_index(mut image: Vec<u8>) -> Vec<u8> {
    let superblock = &image[SUPERBLOCK..SUPERBLOCK + 1024];
    let loop_block = u32_at(superblock, S_BLOCKS_COUNT) - 1;
    let inode_size = usize::from(u16::from_le_bytes(
        superblock[S_INODE_SIZE..S_INODE_SIZE + 2]
            .try_into()
            .unwrap(),
    ));
    let inode_table = u32_at(&image, BLOCK + BG_INODE_TABLE) as usize;
    // Inode 2 (the root directory) is the second of group 0's table.
    let root = inode_table * BLOCK + inode_size;
    let index_node = |max_entries: u16| {
        let mut node = Vec::new();
        node.extend_from_slice(&EXTENT_MAGIC.to_le_bytes());
        node.extend_from_slice(&1u16.to_le_bytes()); // entries
        node.extend_from_slice(&max_entries.to_le_bytes());
        node.extend_from_slice(&1u16.to_le_bytes()); // depth: an index node
        node.extend_from_slice(&0u32.to_le_bytes()); // generation
        node.extend_from_slice(&0u32.to_le_bytes()); // ei_block: covers file block 0 on
        node.extend_from_slice(&loop_block.to_le_bytes()); // ei_leaf_lo
        node.extend_from_slice(&0u32.to_le_bytes()); // ei_leaf_hi, unused
        node
    };
    let in_inode = index_node(4);
    image[root + I_BLOCK..root + I_BLOCK + in_inode.len()].copy_from_slice(&in_inode);
    let in_block = index_node(((BLOCK - 12) / 12) as u16);
    let at = loop_block as usize * BLOCK;
    image[at..at + in_block.len()].copy_from_slice(&in_block);
    image
}

/// Slot 2's `system_a` reads back as `image` (its writes land, its reads do not show them),
/// as its phones file says: `read_back` from an image file.
fn run_with_system_reading_back(image: Vec<u8>) {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("hostile-system.img");
    std::fs::write(&file, image).unwrap();
    let rig = Rig::fastboot_with(&format!(
        "{{ read_back: [{{ on: \"fetch:system_a\", image: \"{}\" }}] }}",
        file.display()
    ));
    let outcome = rig.run();
    let (code, sentence) = failure_beside_passes(&outcome, 2, "system_a");
    // A reader that refuses the filesystem says so; one that crashes on it is caught, and the
    // sentence names the step it crashed in.
    let reason = match code.as_str() {
        "VERIFY_MISMATCH" => "system_a ext4 filesystem",
        "HOST_ERROR" => "during verify system_a",
        other => panic!("{other}: {sentence}"),
    };
    assert!(sentence.contains(reason), "{sentence}");
}

#[test]
fn hostile_ext4_read_back_with_zero_blocks_per_group_fails_that_unit_only() {
    let work = tempfile::tempdir().unwrap();
    run_with_system_reading_back(zero_blocks_per_group(small_ext4(work.path())));
}

#[test]
fn hostile_ext4_read_back_with_a_self_referencing_extent_index_fails_that_unit_only() {
    let work = tempfile::tempdir().unwrap();
    run_with_system_reading_back(self_referencing_extent_index(small_ext4(work.path())));
}

/// The fixtures are what they claim: e2fsck finds each broken at the patched field.
#[test]
fn hostile_ext4_fixtures_are_broken_where_they_say() {
    let work = tempfile::tempdir().unwrap();
    let clean = small_ext4(work.path());
    assert_ne!(u32_at(&clean, SUPERBLOCK + S_BLOCKS_PER_GROUP), 0);
    for (name, image) in [
        ("zero-bpg", zero_blocks_per_group(clean.clone())),
        ("extent-loop", self_referencing_extent_index(clean.clone())),
    ] {
        let path = work.path().join(name);
        std::fs::write(&path, image).unwrap();
        let fsck = external_tool::command("e2fsck")
            .args(["-f", "-n"])
            .arg(&path)
            .output()
            .expect("running e2fsck");
        assert!(!fsck.status.success(), "{name}: e2fsck finds nothing wrong");
    }
    let path = work.path().join("clean");
    std::fs::write(&path, &clean).unwrap();
    let fsck = external_tool::command("e2fsck")
        .args(["-f", "-n"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}
