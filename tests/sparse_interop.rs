//! The sparse module against AOSP's own tools (Debian `android-sdk-libsparse-utils`):
//! `img2simg` images must expand to their input, `simg2img` must expand our images to theirs,
//! and split pieces must be what libsparse (`simg2simg`, the fastboot client) would send.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use protocols::external_tool;
use protocols::sparse::{self, ChunkPlan, SparseIndex, SparseWriter};

/// Runs an AOSP sparse tool, failing the test with a clear message if it is missing.
fn run_tool(tool: &str, args: &[&Path]) {
    let out = external_tool::command(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running `{tool}`: {e}"));
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

fn expand_with_simg2img(dir: &Path, pieces: &[PathBuf]) -> Vec<u8> {
    let out = dir.join("simg2img.out");
    let mut args: Vec<&Path> = pieces.iter().map(|p| p.as_path()).collect();
    args.push(&out);
    run_tool("simg2img", &args);
    fs::read(&out).unwrap()
}

#[test]
fn our_whole_image_is_byte_identical_to_img2simg() {
    for tail in [0, 1, 2048, 4095] {
        let dir = tempfile::tempdir().unwrap();
        let raw = mixed_raw_image(tail);
        let raw_path = write(dir.path(), "in.img", &raw);
        let theirs = dir.path().join("theirs.simg");
        run_tool("img2simg", &[&raw_path, &theirs]);

        let plan = ChunkPlan::scan_raw(&mut File::open(&raw_path).unwrap()).unwrap();
        let mut ours = Vec::new();
        let n = plan
            .whole()
            .write_to(&mut File::open(&raw_path).unwrap(), &mut ours)
            .unwrap();
        assert_eq!(n, plan.encoded_len());
        assert_eq!(ours.len() as u64, n);
        assert!(
            ours == fs::read(&theirs).unwrap(),
            "tail {tail}: our sparse image differs from img2simg's"
        );

        let ours_path = write(dir.path(), "ours.simg", &ours);
        assert!(
            expand_with_simg2img(dir.path(), &[ours_path]) == padded(&raw),
            "tail {tail}"
        );
    }
}

#[test]
fn split_pieces_are_byte_identical_to_libsparse_resparse() {
    for tail in [0, 777] {
        let dir = tempfile::tempdir().unwrap();
        let raw = mixed_raw_image(tail);
        let raw_path = write(dir.path(), "in.img", &raw);
        let simg = dir.path().join("in.simg");
        run_tool("img2simg", &[&raw_path, &simg]);

        // Limits from 9 blocks up: below about 8 blocks libsparse emits zero-block RAW chunks
        // (its 1/8 rule rounds the room left to nothing), which we do not imitate.
        for max in [36_925u64, 40_000, 65_536, 70_001, 123_457, 300_000, 1 << 20] {
            // libsparse's resparse, as `fastboot flash` runs it for an image above the limit.
            let prefix = dir.path().join(format!("theirs-{max}"));
            let status = external_tool::command("simg2simg")
                .arg(&simg)
                .arg(&prefix)
                .arg(max.to_string())
                .status()
                .expect("running simg2simg");
            assert!(status.success());
            let theirs: Vec<PathBuf> = (0..)
                .map(|i| PathBuf::from(format!("{}.{i}", prefix.display())))
                .take_while(|p| p.exists())
                .collect();

            // Ours, from the raw file and from the sparse file.
            let from_raw = ChunkPlan::scan_raw(&mut File::open(&raw_path).unwrap()).unwrap();
            let from_sparse = ChunkPlan::open(&mut File::open(&simg).unwrap()).unwrap();
            for (plan, source) in [(&from_raw, &raw_path), (&from_sparse, &simg)] {
                let pieces = sparse::split(plan, max).unwrap();
                assert_eq!(
                    pieces.len(),
                    theirs.len(),
                    "tail {tail} max {max}: piece count"
                );
                let mut ours = Vec::new();
                for (i, (piece, their)) in pieces.iter().zip(&theirs).enumerate() {
                    let mut bytes = Vec::new();
                    piece
                        .write_to(&mut File::open(source).unwrap(), &mut bytes)
                        .unwrap();
                    assert!(bytes.len() as u64 <= max);
                    assert!(
                        bytes == fs::read(their).unwrap(),
                        "tail {tail} max {max}: piece {i} differs from libsparse's"
                    );
                    ours.push(write(dir.path(), &format!("ours-{max}.{i}"), &bytes));
                }
                // A device expands each piece over the same partition in turn.
                assert!(
                    expand_with_simg2img(dir.path(), &ours) == padded(&raw),
                    "tail {tail} max {max}"
                );
                let mut target = tempfile::tempfile().unwrap();
                for p in &ours {
                    std::io::Seek::rewind(&mut target).unwrap();
                    sparse::expand(File::open(p).unwrap(), &mut target).unwrap();
                }
                let mut got = Vec::new();
                std::io::Seek::rewind(&mut target).unwrap();
                target.read_to_end(&mut got).unwrap();
                assert!(
                    got == padded(&raw),
                    "tail {tail} max {max}: our expand of the pieces"
                );
            }
        }
    }
}

#[test]
fn hand_written_image_expands_the_same_with_simg2img() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SparseWriter::with_crc(Vec::new(), 4096, 300, 7).unwrap();
    w.write_fill(0, 10).unwrap();
    w.write_raw(&noise(5, 4096 * 3 + 100)).unwrap(); // padded to 4 blocks
    w.write_dont_care(100).unwrap();
    w.write_fill(0x12345678, 50).unwrap();
    w.write_raw(&noise(6, 4096)).unwrap();
    w.write_dont_care(135).unwrap();
    w.write_crc32().unwrap();
    let bytes = w.finish().unwrap();
    let path = write(dir.path(), "w.simg", &bytes);
    let theirs = expand_with_simg2img(dir.path(), &[path]);
    let mut ours = tempfile::tempfile().unwrap();
    sparse::expand_to_file(&bytes[..], &mut ours).unwrap();
    let mut got = Vec::new();
    std::io::Seek::rewind(&mut ours).unwrap();
    ours.read_to_end(&mut got).unwrap();
    assert_eq!(theirs.len(), 300 * 4096);
    assert!(got == theirs);
}

/// Sparse images with DONT_CARE gaps, adjacent FILLs of one value (libsparse merges them on
/// import) and RAW runs of many sizes: our split of the file equals `simg2simg`'s.
#[test]
fn split_of_generated_sparse_images_matches_simg2simg() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=30u64 {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // (kind, blocks)
        let chunks: Vec<(u64, u32)> = (0..(4 + next() % 30))
            .map(|_| (next() % 4, 1 + (next() % 40) as u32))
            .collect();
        let total: u32 = chunks.iter().map(|c| c.1).sum();
        let mut w = SparseWriter::new(Vec::new(), 4096, total, chunks.len() as u32).unwrap();
        for (i, &(kind, blocks)) in chunks.iter().enumerate() {
            match kind {
                0 => w
                    .write_raw(&noise(seed * 100 + i as u64, blocks as usize * 4096))
                    .unwrap(),
                1 => w.write_dont_care(blocks).unwrap(),
                2 => w.write_fill(0, blocks).unwrap(),
                _ => w
                    .write_fill(0x0101_0101 * (1 + (seed as u32 % 3)), blocks)
                    .unwrap(),
            }
        }
        let bytes = w.finish().unwrap();
        let simg = write(dir.path(), &format!("gen-{seed}.simg"), &bytes);
        let expanded = expand_with_simg2img(dir.path(), std::slice::from_ref(&simg));
        let plan = ChunkPlan::from_sparse(&mut File::open(&simg).unwrap()).unwrap();
        for max in [36_925u64, 50_000 + seed * 997, 90_000, 200_000] {
            let prefix = dir.path().join(format!("gen-{seed}-{max}"));
            let status = external_tool::command("simg2simg")
                .arg(&simg)
                .arg(&prefix)
                .arg(max.to_string())
                .status()
                .expect("running simg2simg");
            assert!(status.success());
            let theirs: Vec<PathBuf> = (0..)
                .map(|i| PathBuf::from(format!("{}.{i}", prefix.display())))
                .take_while(|p| p.exists())
                .collect();
            let pieces = sparse::split(&plan, max).unwrap();
            assert_eq!(
                pieces.len(),
                theirs.len(),
                "seed {seed} max {max}: piece count"
            );
            let mut ours = Vec::new();
            for (i, (piece, their)) in pieces.iter().zip(&theirs).enumerate() {
                let mut out = Vec::new();
                piece
                    .write_to(&mut File::open(&simg).unwrap(), &mut out)
                    .unwrap();
                assert!(out.len() as u64 <= max);
                assert!(
                    out == fs::read(their).unwrap(),
                    "seed {seed} max {max}: piece {i} differs"
                );
                ours.push(write(
                    dir.path(),
                    &format!("gen-ours-{seed}-{max}.{i}"),
                    &out,
                ));
            }
            assert!(
                expand_with_simg2img(dir.path(), &ours) == expanded,
                "seed {seed} max {max}"
            );
        }
    }
}

/// What pre-flight runs on every sparse image: libsparse's own output passes it, with and
/// without a CRC32 chunk (image_checksum 0, as libsparse writes it, is not checked).
#[test]
fn img2simg_output_and_a_crc_chunk_written_for_simg2img_verify() {
    let dir = tempfile::tempdir().unwrap();
    let raw_path = write(dir.path(), "in.img", &mixed_raw_image(1000));
    let simg = dir.path().join("in.simg");
    run_tool("img2simg", &[&raw_path, &simg]);
    let bytes = fs::read(&simg).unwrap();
    let summary = sparse::verify(&bytes[..], bytes.len() as u64).unwrap();
    assert_eq!(
        summary.expanded_len,
        padded(&mixed_raw_image(1000)).len() as u64
    );
    assert!(!summary.image_checksum_verified);

    let mut w = SparseWriter::with_crc(Vec::new(), 4096, 20, 4).unwrap();
    w.write_raw(&noise(9, 4096 * 3)).unwrap();
    w.write_dont_care(7).unwrap();
    w.write_fill(0xa5a5_5a5a, 10).unwrap();
    w.write_crc32().unwrap();
    let bytes = w.finish().unwrap();
    // simg2img accepts it (it does not check the CRC chunk) and so do we (we do).
    let path = write(dir.path(), "crc.simg", &bytes);
    assert_eq!(expand_with_simg2img(dir.path(), &[path]).len(), 20 * 4096);
    assert_eq!(
        sparse::verify(&bytes[..], bytes.len() as u64)
            .unwrap()
            .crc32_chunks,
        1
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        sparse::verify(&bad[..], bad.len() as u64),
        Err(sparse::SparseError::CrcMismatch { .. })
    ));
}
