//! Hostile input: every single-byte corruption of valid images goes through every entry point
//! (reader, expand, index, plan, split, write) and must end in a result — an error or a
//! consistent success — never a panic, a hang or a giant allocation.

use std::io::{Cursor, Read};

use super::testutil::{image, noise, C};
use super::*;

fn exercise(bytes: &[u8]) {
    // Streaming reader, reading every RAW byte.
    if let Ok(mut r) = SparseReader::new(bytes) {
        let declared = r.expanded_len();
        let mut raw = Vec::new();
        let mut covered = 0u64;
        let mut ok = true;
        loop {
            match r.next_chunk() {
                Ok(Some(c)) => {
                    covered += c.expanded_len(r.header().blk_sz);
                    if let ChunkKind::Raw { .. } = c.kind {
                        if r.raw_data().read_to_end(&mut raw).is_err() {
                            ok = false;
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            assert_eq!(covered, declared, "accepted image must cover total_blks");
        }
        // Expanding is bounded by the declared size: only try small ones.
        if declared <= 1 << 20 {
            let mut out = Cursor::new(Vec::new());
            if let Ok(s) = expand(bytes, &mut out) {
                assert!(out.get_ref().len() as u64 <= s.expanded_len);
            }
        }
    }
    if let Ok(mut index) = SparseIndex::build(Cursor::new(bytes)) {
        let len = index.expanded_len();
        let mut buf = vec![0u8; len.min(4096) as usize];
        let _ = index.read_at(0, &mut buf);
        let _ = index.read_at(len.saturating_sub(7), &mut [0u8; 7]);
        let _ = index.read_at(len, &mut [0u8; 1]);
    }
    if let Ok(plan) = ChunkPlan::from_sparse(&mut Cursor::new(bytes)) {
        // Giant declared block sizes make giant (but valid) pieces: only write small ones.
        let max = min_piece_bytes(plan.block_size()).max(200);
        if let Ok(pieces) = split(&plan, max) {
            for p in pieces.iter().take(64) {
                assert!(p.encoded_len() <= max);
                if p.encoded_len() <= 1 << 20 {
                    let _ = p.write_to(&mut Cursor::new(bytes), &mut Vec::new());
                }
            }
        }
    }
}

#[test]
fn single_byte_corruptions_never_panic() {
    let samples = [
        image(
            16,
            8,
            &[
                C::Raw(noise(1, 32)),
                C::Fill(7, 3),
                C::Skip(2),
                C::Raw(noise(2, 16)),
            ],
        ),
        image(
            4096,
            3,
            &[C::Skip(1), C::Raw(noise(3, 4096)), C::Crc(0), C::Fill(0, 1)],
        ),
        image(4, 6, &[C::Fill(1, 1), C::Fill(1, 2), C::Raw(noise(4, 12))]),
    ];
    for sample in &samples {
        exercise(sample);
        for at in 0..sample.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = sample.clone();
                bad[at] ^= flip;
                exercise(&bad);
            }
            exercise(&sample[..at]);
        }
    }
}

#[test]
fn extreme_header_values_are_handled() {
    // total_blks and blk_sz at their maxima with a FILL covering everything: 2^64-ish bytes
    // declared. Indexing and planning work without allocating the image.
    let mut bytes = image(4, 1, &[C::Fill(0xabcdabcd, 1)]);
    bytes[12..16].copy_from_slice(&0xffff_fffcu32.to_le_bytes()); // blk_sz
    bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes()); // total_blks
    bytes[32..36].copy_from_slice(&u32::MAX.to_le_bytes()); // chunk_sz
    let mut index = SparseIndex::build(Cursor::new(&bytes[..])).unwrap();
    assert_eq!(index.expanded_len(), 0xffff_fffc * u64::from(u32::MAX));
    let mut buf = [0u8; 6];
    index.read_at(index.expanded_len() - 6, &mut buf).unwrap();
    assert_eq!(buf, [0xcd, 0xab, 0xcd, 0xab, 0xcd, 0xab]);
    // A plan of it would need 2^32 chunks of one giant block each: refused up front.
    assert!(matches!(
        ChunkPlan::from_sparse(&mut Cursor::new(&bytes[..])),
        Err(SparseError::ImageTooLarge { .. })
    ));
    exercise(&bytes);

    // An 8 TiB FILL: accepted, cut into chunks of at most 2^32 - 4096 bytes (2049 of them).
    let mut bytes = image(4096, 1, &[C::Fill(0, 1)]);
    bytes[16..20].copy_from_slice(&(1u32 << 31).to_le_bytes());
    bytes[32..36].copy_from_slice(&(1u32 << 31).to_le_bytes());
    bytes[28..].copy_from_slice(&[0xc2, 0xca, 0, 0, 0, 0, 0, 0x80, 16, 0, 0, 0, 0, 0, 0, 0]);
    let plan = ChunkPlan::from_sparse(&mut Cursor::new(&bytes[..])).unwrap();
    assert_eq!(plan.image_len(), 1 << 43);
    assert_eq!(plan.chunks().len(), 2049);
    exercise(&bytes);
}
