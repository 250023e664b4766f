//! The sparse module against AOSP's own tools (Debian `android-sdk-libsparse-utils`):
//! `img2simg` images must expand to their input, `simg2img` must expand our images to theirs,
//! and split pieces must be what libsparse (`simg2simg`, the fastboot client) would send.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use protocols::sparse::{self, SparseIndex};

/// Runs an AOSP sparse tool, failing the test with a clear message if it is missing.
fn run_tool(tool: &str, args: &[&Path]) {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}): install it with `apt-get install android-sdk-libsparse-utils`")
    });
    assert!(
        out.status.success(),
        "`{tool} {args:?}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deterministic noise.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A raw image with every kind of block libsparse distinguishes: random data, zeros, a
/// repeated non-zero word, a block that is *almost* a repeated word, and (optionally) a
/// partial last block.
fn mixed_raw_image(tail: usize) -> Vec<u8> {
    let mut img = Vec::new();
    img.extend(noise(1, 3 * 4096));
    img.resize(img.len() + 40 * 4096, 0);
    for _ in 0..(5 * 4096 / 4) {
        img.extend_from_slice(&0xdeadbeefu32.to_le_bytes());
    }
    let mut almost = vec![0x5au8; 4096];
    almost[4095] = 0x5b;
    img.extend(almost);
    img.extend(noise(2, 7 * 4096));
    img.resize(img.len() + 100 * 4096, 0);
    img.extend(noise(3, 4096));
    img.extend(noise(4, tail));
    img
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// libsparse rounds the expanded image up to whole blocks, zero-filled.
fn padded(raw: &[u8]) -> Vec<u8> {
    let mut v = raw.to_vec();
    v.resize(raw.len().div_ceil(4096) * 4096, 0);
    v
}

#[test]
fn our_expand_of_img2simg_output_equals_the_raw_input() {
    for tail in [0, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let raw = mixed_raw_image(tail);
        let raw_path = write(dir.path(), "in.img", &raw);
        let simg = dir.path().join("in.simg");
        run_tool("img2simg", &[&raw_path, &simg]);

        let mut head = [0u8; 4];
        File::open(&simg).unwrap().read_exact(&mut head).unwrap();
        assert!(sparse::is_sparse(&head));

        let mut out = tempfile::tempfile().unwrap();
        let summary = sparse::expand_to_file(File::open(&simg).unwrap(), &mut out).unwrap();
        assert_eq!(summary.expanded_len, padded(&raw).len() as u64);
        let mut got = Vec::new();
        std::io::Seek::rewind(&mut out).unwrap();
        out.read_to_end(&mut got).unwrap();
        assert!(
            got == padded(&raw),
            "expanded image differs from the raw input (tail {tail})"
        );
    }
}

#[test]
fn random_access_reads_equal_the_expanded_image() {
    let dir = tempfile::tempdir().unwrap();
    let raw = padded(&mixed_raw_image(123));
    let raw_path = write(dir.path(), "in.img", &raw);
    let simg = dir.path().join("in.simg");
    run_tool("img2simg", &[&raw_path, &simg]);

    let mut index = SparseIndex::build(File::open(&simg).unwrap()).unwrap();
    assert_eq!(index.expanded_len(), raw.len() as u64);
    // Reads across chunk boundaries of every kind, at odd offsets and lengths.
    let mut x = 99u64;
    for _ in 0..2000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let start = (x >> 20) as usize % raw.len();
        let len = ((x >> 8) as usize % 20000).min(raw.len() - start);
        let mut buf = vec![0xa5; len];
        index.read_at(start as u64, &mut buf).unwrap();
        assert!(
            buf == raw[start..start + len],
            "read_at({start}, {len}) differs"
        );
    }
    let mut all = vec![0u8; raw.len()];
    index.read_at(0, &mut all).unwrap();
    assert!(all == raw);
}

#[test]
fn simg2img_and_our_expand_agree_on_a_sparse_image_with_holes() {
    // img2simg never emits DONT_CARE: build an image by hand with a hole and a fill.
    let dir = tempfile::tempdir().unwrap();
    let data = noise(9, 2 * 4096);
    let mut img = Vec::new();
    img.extend_from_slice(&sparse::SparseHeader::new(4096, 6, 3).encode());
    img.extend_from_slice(&sparse::ChunkHeader::new(sparse::CHUNK_TYPE_DONT_CARE, 1, 12).encode());
    img.extend_from_slice(&sparse::ChunkHeader::new(sparse::CHUNK_TYPE_RAW, 2, 12 + 8192).encode());
    img.extend_from_slice(&data);
    img.extend_from_slice(&sparse::ChunkHeader::new(sparse::CHUNK_TYPE_FILL, 3, 16).encode());
    img.extend_from_slice(&0x01020304u32.to_le_bytes());
    let mut expected = vec![0u8; 4096];
    expected.extend_from_slice(&data);
    for _ in 0..3 * 1024 {
        expected.extend_from_slice(&0x01020304u32.to_le_bytes());
    }
    let simg = write(dir.path(), "hand.simg", &img);
    let theirs = dir.path().join("theirs.img");
    run_tool("simg2img", &[&simg, &theirs]);
    assert!(fs::read(&theirs).unwrap() == expected);

    let mut ours = tempfile::tempfile().unwrap();
    sparse::expand_to_file(&img[..], &mut ours).unwrap();
    let mut got = Vec::new();
    std::io::Seek::rewind(&mut ours).unwrap();
    ours.read_to_end(&mut got).unwrap();
    assert!(got == expected);
}
