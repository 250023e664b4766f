//! The running CRC32 that CRC32 chunks check: the standard 802.3 CRC (what `crc32fast`
//! computes) over the expanded image from its first byte, DONT_CARE blocks counting as zeros.
//!
//! FILL and DONT_CARE runs can cover gigabytes; hashing them byte by byte would dominate the
//! cost of expanding a mostly-empty image, so a run's CRC is built from the CRC of one 4-byte
//! word by repeated doubling with `Hasher::combine` (O(log n) work for n words).

use crc32fast::Hasher;

/// CRC32 state of an expanded image being walked from its start.
#[derive(Clone, Default)]
pub(crate) struct RunningCrc {
    hasher: Hasher,
}

impl RunningCrc {
    pub(crate) fn new() -> Self {
        RunningCrc {
            hasher: Hasher::new(),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Appends `words` copies of the 4-byte little-endian `word`.
    pub(crate) fn update_repeated(&mut self, word: u32, words: u64) {
        let mut unit = Hasher::new();
        unit.update(&word.to_le_bytes());
        let mut power = unit; // CRC state of 2^k words
        let mut remaining = words;
        while remaining > 0 {
            if remaining & 1 == 1 {
                self.hasher.combine(&power);
            }
            remaining >>= 1;
            if remaining > 0 {
                let copy = power.clone();
                power.combine(&copy);
            }
        }
    }

    pub(crate) fn value(&self) -> u32 {
        self.hasher.clone().finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_words_match_hashing_the_bytes() {
        for (word, count) in [
            (0u32, 0u64),
            (0, 1),
            (0xdeadbeef, 3),
            (7, 1024),
            (0x01020304, 4097),
        ] {
            let mut fast = RunningCrc::new();
            fast.update(b"prefix");
            fast.update_repeated(word, count);
            let mut slow = Hasher::new();
            slow.update(b"prefix");
            for _ in 0..count {
                slow.update(&word.to_le_bytes());
            }
            assert_eq!(fast.value(), slow.finalize(), "{word:#x} x {count}");
        }
    }
}
