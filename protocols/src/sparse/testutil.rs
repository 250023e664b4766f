//! Test helpers: build sparse images byte by byte (independently of our writer) and expand
//! them naively, so reader, index and writer tests have an oracle.

use super::format::*;

pub(crate) enum C {
    Raw(Vec<u8>),
    Fill(u32, u32),
    Skip(u32),
    Crc(u32),
    /// Arbitrary header + data, for malformed chunks.
    Bad {
        ty: u16,
        chunk_sz: u32,
        total_sz: u32,
        data: Vec<u8>,
    },
}

pub(crate) fn image(blk: u32, total_blks: u32, chunks: &[C]) -> Vec<u8> {
    let mut out = SparseHeader::new(blk, total_blks, chunks.len() as u32)
        .encode()
        .to_vec();
    for c in chunks {
        let (ty, sz, total, data): (u16, u32, u32, Vec<u8>) = match c {
            C::Raw(d) => (
                CHUNK_TYPE_RAW,
                d.len() as u32 / blk,
                12 + d.len() as u32,
                d.clone(),
            ),
            C::Fill(v, n) => (CHUNK_TYPE_FILL, *n, 16, v.to_le_bytes().to_vec()),
            C::Skip(n) => (CHUNK_TYPE_DONT_CARE, *n, 12, vec![]),
            C::Crc(v) => (CHUNK_TYPE_CRC32, 0, 16, v.to_le_bytes().to_vec()),
            C::Bad {
                ty,
                chunk_sz,
                total_sz,
                data,
            } => (*ty, *chunk_sz, *total_sz, data.clone()),
        };
        out.extend_from_slice(&ChunkHeader::new(ty, sz, total).encode());
        out.extend_from_slice(&data);
    }
    out
}

pub(crate) fn expanded(blk: u32, chunks: &[C]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        match c {
            C::Raw(d) => out.extend_from_slice(d),
            C::Fill(v, n) => {
                for _ in 0..(*n as usize * blk as usize / 4) {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            C::Skip(n) => out.resize(out.len() + *n as usize * blk as usize, 0),
            C::Crc(_) | C::Bad { .. } => {}
        }
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift), no dependency needed.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
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

pub(crate) fn crc(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}
