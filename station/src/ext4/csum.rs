//! The two checksums ext4 uses. The kernel's `crc32c()` and `crc16()` are raw register updates
//! (no final inversion, any starting value), so they chain: `raw(raw(s, a), b) == raw(s, a ‖ b)`.

use crc::{Crc, CRC_16_MODBUS, CRC_32_ISCSI};

static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);
/// Reflected 0x8005 from 0xFFFF with no final XOR: the kernel's `crc16(~0, …)`.
static CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// The kernel's `crc32c(seed, parts…)`: metadata_csum checksums.
pub(super) fn crc32c(seed: u32, parts: &[&[u8]]) -> u32 {
    // The crate takes the starting register bit-reversed for a reflected CRC and inverts at the
    // end (CRC-32C's xorout); undo both to get the raw register.
    let mut digest = CRC32C.digest_with_initial(seed.reverse_bits());
    for part in parts {
        digest.update(part);
    }
    digest.finalize() ^ 0xFFFF_FFFF
}

/// The kernel's `crc16(~0, parts…)`: the older `gdt_csum` (uninit_bg) group descriptor checksum.
pub(super) fn crc16(parts: &[&[u8]]) -> u16 {
    let mut digest = CRC16.digest();
    for part in parts {
        digest.update(part);
    }
    digest.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_the_raw_register_and_chains() {
        // The standard CRC-32C check value of "123456789" is 0xE3069283: raw(~0) is its inverse.
        assert_eq!(crc32c(!0, &[b"123456789"]), !0xE306_9283);
        let whole = crc32c(0x1234_5678, &[b"hello, world"]);
        let first = crc32c(0x1234_5678, &[b"hello, "]);
        assert_eq!(crc32c(first, &[b"world"]), whole);
        assert_eq!(crc32c(0x1234_5678, &[b"hello, ", b"world"]), whole);
    }

    #[test]
    fn crc16_is_modbus() {
        assert_eq!(crc16(&[b"123456789"]), 0x4B37);
        assert_eq!(crc16(&[b"1234", b"56789"]), 0x4B37);
    }
}
