//! Property-style round trips over generated images: what the index reads, what a plan of the
//! file re-encodes and what the pieces of a split rebuild must all equal the expanded image.

use std::io::Cursor;

use super::format::{ChunkHeader, SparseHeader, CHUNK_TYPE_FILL, CHUNK_TYPE_RAW};
use super::testutil::{expanded, image, noise, C};
use super::*;

fn generated(seed: u64) -> (u32, Vec<C>) {
    let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let blk = [4u32, 16, 64, 512][(next() % 4) as usize];
    let chunks = (0..1 + next() % 25)
        .map(|i| {
            let n = 1 + (next() % 12) as u32;
            match next() % 5 {
                0 | 1 => C::Raw(noise(seed * 1000 + i, (n * blk) as usize)),
                2 => C::Skip(n),
                3 => C::Fill(0, n),
                _ => C::Fill(next() as u32, n),
            }
        })
        .collect();
    (blk, chunks)
}

fn expand_pieces(pieces: &[Piece], source: &[u8], len: usize) -> Vec<u8> {
    let mut target = Cursor::new(vec![0u8; len]);
    for p in pieces {
        let mut bytes = Vec::new();
        p.write_to(&mut Cursor::new(source), &mut bytes).unwrap();
        target.set_position(0);
        expand(&bytes[..], &mut target).unwrap();
    }
    target.into_inner()
}

#[test]
fn generated_images_round_trip_through_index_plan_and_split() {
    for seed in 1..200u64 {
        let (blk, chunks) = generated(seed);
        let total: u32 = chunks
            .iter()
            .map(|c| match c {
                C::Raw(d) => d.len() as u32 / blk,
                C::Fill(_, n) | C::Skip(n) => *n,
                _ => 0,
            })
            .sum();
        let bytes = image(blk, total, &chunks);
        let want = expanded(blk, &chunks);

        let mut index = SparseIndex::build(Cursor::new(&bytes[..])).unwrap();
        let mut got = vec![0xaa; want.len()];
        index.read_at(0, &mut got).unwrap();
        assert_eq!(got, want, "seed {seed}: index");
        let mid = want.len() / 3;
        let mut part = vec![0u8; want.len() / 2];
        index.read_at(mid as u64, &mut part).unwrap();
        assert_eq!(
            part,
            want[mid..mid + part.len()],
            "seed {seed}: index, offset read"
        );

        let plan = ChunkPlan::from_sparse(&mut Cursor::new(&bytes[..])).unwrap();
        assert_eq!(
            expand_pieces(&[plan.whole()], &bytes, want.len()),
            want,
            "seed {seed}: whole"
        );
        let min = min_piece_bytes(blk);
        for max in [min, min + 3 * u64::from(blk) + 5, plan.encoded_len() / 2] {
            let max = max.max(min);
            let pieces = split(&plan, max).unwrap();
            assert!(
                pieces.iter().all(|p| p.encoded_len() <= max),
                "seed {seed} max {max}"
            );
            assert!(pieces.iter().all(|p| p.header().total_blks == total));
            assert_eq!(
                expand_pieces(&pieces, &bytes, want.len()),
                want,
                "seed {seed} max {max}"
            );
        }

        // And re-scanning the expanded bytes as a raw image gives a plan that rebuilds them.
        let raw_plan =
            ChunkPlan::scan_raw_stream(&mut &want[..], want.len() as u64, blk, &mut |_| {})
                .unwrap();
        assert_eq!(
            expand_pieces(&[raw_plan.whole()], &want, want.len()),
            want,
            "seed {seed}: raw"
        );
    }
}

#[test]
fn larger_declared_header_sizes_are_skipped_everywhere() {
    // file_hdr_sz 40, chunk_hdr_sz 20: RAW, FILL, RAW.
    let mut bytes = SparseHeader {
        file_hdr_sz: 40,
        chunk_hdr_sz: 20,
        ..SparseHeader::new(8, 4, 3)
    }
    .encode()
    .to_vec();
    bytes.extend_from_slice(&[0xee; 12]);
    let mut chunk = |ty: u16, blocks: u32, data: &[u8]| {
        bytes.extend_from_slice(&ChunkHeader::new(ty, blocks, 20 + data.len() as u32).encode());
        bytes.extend_from_slice(&[0xee; 8]);
        bytes.extend_from_slice(data);
    };
    chunk(CHUNK_TYPE_RAW, 1, b"ABCDEFGH");
    chunk(CHUNK_TYPE_FILL, 2, &[1, 2, 3, 4]);
    chunk(CHUNK_TYPE_RAW, 1, b"12345678");
    let want = [
        &b"ABCDEFGH"[..],
        &[1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4],
        b"12345678",
    ]
    .concat();

    let mut out = Cursor::new(Vec::new());
    expand(&bytes[..], &mut out).unwrap();
    assert_eq!(out.into_inner(), want);
    let mut index = SparseIndex::build(Cursor::new(&bytes[..])).unwrap();
    let mut got = vec![0u8; 32];
    index.read_at(0, &mut got).unwrap();
    assert_eq!(got, want);
    // Re-encoded with standard header sizes, RAW data taken from the right offsets.
    let plan = ChunkPlan::from_sparse(&mut Cursor::new(&bytes[..])).unwrap();
    assert_eq!(expand_pieces(&[plan.whole()], &bytes, 32), want);
}
