//! A deterministic mutation run: byte flips, extreme field values and truncations over small
//! valid images. Every outcome must be Ok or a typed error after a bounded number of reads;
//! a panic fails the run with the seed that reproduces it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::mkfs::{mkfs, pattern};
use super::*;

/// xorshift64*: reproducible on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn small_image(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let put = |path: &str, bytes: &[u8]| {
        let host = tree.join(path);
        std::fs::create_dir_all(host.parent().unwrap()).unwrap();
        std::fs::write(host, bytes).unwrap();
    };
    put(
        "priv-app/ActivationClient/ActivationClient.apk",
        &pattern(20_000, 1),
    );
    put("priv-app/ActivationClient/tiny", b"tiny\n");
    for i in 0..40 {
        put(
            &format!("priv-app/ActivationClient/f{i:02}"),
            &pattern(100 * i, i as u32),
        );
    }
    let mut sparse = vec![0u8; 100_000];
    for i in 0..6 {
        sparse[i * 16384..i * 16384 + 1024].copy_from_slice(&pattern(1024, 50 + i as u32));
    }
    put("priv-app/ActivationClient/sparse", &sparse);
    let image = dir.path().join("fs.img");
    mkfs(&tree, &image, args, "1M");
    std::fs::read(image).unwrap()
}

/// Records each read's range.
struct Recorder<'a>(SliceSource<'a>, Vec<(u64, usize)>);

impl ReadAt for Recorder<'_> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.1.push((offset, buf.len()));
        self.0.read_exact_at(offset, buf)
    }
}

/// Reads through a mutated image as verification would; panics only on a reader bug.
fn exercise(image: &[u8]) -> u64 {
    exercise_with(SliceSource(image))
}

fn exercise_with(source: impl ReadAt) -> u64 {
    let source = CountingReader::new(source);
    let (source, _) = hash_file_in_ext4(source, CLIENT, 16 << 20);
    let (source, _) = list_dir(source, "/priv-app/ActivationClient");
    let mut out = Vec::new();
    let (source, _) = read_file(
        source,
        "/priv-app/ActivationClient/sparse",
        &mut out,
        1 << 20,
    );
    assert!(out.len() <= 1 << 20);
    source.reads()
}

fn mutate_run(name: &str, original: &[u8], iterations: u64, seed: u64) {
    // The valid image reads; the mutations start from it.
    let (_, digest) = hash_file_in_ext4(SliceSource(original), CLIENT, 1 << 20);
    assert_eq!(
        digest.unwrap().sha256,
        Sha256Digest::of_bytes(&pattern(20_000, 1))
    );
    let mut image = original.to_vec();
    // Aim at the bytes the reader parses: the metadata reads it makes on the valid image.
    let mut recorder = Recorder(SliceSource(original), Vec::new());
    exercise_with(&mut recorder);
    let hot: Vec<usize> = recorder
        .1
        .iter()
        .filter(|(_, len)| *len <= 4096)
        .flat_map(|&(offset, len)| offset as usize..offset as usize + len)
        .collect();
    assert!(hot.len() > 4096, "{name}: {} metadata bytes", hot.len());
    for iteration in 0..iterations {
        let mut rng = Rng(seed ^ (iteration + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        image.copy_from_slice(original);
        let mut len = image.len();
        match rng.below(8) {
            0 => len = rng.below(image.len()),
            1..=3 => {
                for _ in 0..1 + rng.below(4) {
                    let at = hot[rng.below(hot.len())];
                    image[at] ^= 1 << rng.below(8);
                }
            }
            4..=5 => {
                let at = hot[rng.below(hot.len())] & !3;
                let value: u32 = [0, 1, 0xFFFF, 0x8000, u32::MAX, 0x7FFF_FFFF][rng.below(6)];
                let width = if rng.below(2) == 0 { 2 } else { 4 };
                image[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            _ => {
                for _ in 0..1 + rng.below(16) {
                    let at = rng.below(image.len());
                    image[at] = rng.next() as u8;
                }
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&image[..len])));
        match outcome {
            Ok(reads) => assert!(
                reads < 3 * METADATA_BUDGET_READS,
                "{name}: iteration {iteration} (seed {seed:#x}) made {reads} reads"
            ),
            Err(_) => panic!("{name}: iteration {iteration} (seed {seed:#x}) panicked"),
        }
    }
}

#[test]
fn mutated_images_give_ok_or_typed_errors_never_a_panic() {
    let shapes: [(&str, &[&str]); 3] = [
        // No checksums: every mutation reaches the structure checks.
        (
            "1k extents",
            &["-b", "1024", "-O", "^metadata_csum,^has_journal"],
        ),
        (
            "1k block maps",
            &[
                "-b",
                "1024",
                "-O",
                "^metadata_csum,^64bit,^extent,^has_journal",
            ],
        ),
        (
            "1k inline+csum",
            &["-b", "1024", "-O", "inline_data,^has_journal"],
        ),
    ];
    for (i, (name, args)) in shapes.iter().enumerate() {
        mutate_run(name, &small_image(args), 1500, 0x5EED_0000 + i as u64);
    }
}

#[test]
fn the_fuzz_entry_takes_any_bytes() {
    fuzz_one(&[]);
    fuzz_one(&[0xFF; 3000]);
    let mut rng = Rng(42);
    let mut noise = vec![0u8; 16384];
    for byte in noise.iter_mut() {
        *byte = rng.next() as u8;
    }
    // Noise behind a valid magic goes as deep as the superblock checks let it.
    noise[1024 + 0x38] = 0x53;
    noise[1024 + 0x39] = 0xEF;
    fuzz_one(&noise);
    fuzz_one(&small_image(&["-b", "1024"]));
}
