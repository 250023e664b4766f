//! The erofs superblock checks made before erofs-rs sees an image: the magic (also offered as a
//! cheap probe), a block size the Linux kernel would mount, the superblock checksum the kernel
//! verifies, and the extra devices a single partition cannot supply.

use super::source::Metered;
use super::ErofsFileError;
use crate::read_at::ReadAt;

/// Where the superblock starts: the first KiB is left to boot sectors.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
const MAGIC: u32 = 0xE0F5_E1E2;
const SUPERBLOCK_LEN: usize = 128;

/// Bytes from the start of an image that [`is_erofs`] needs.
pub const PROBE_LEN: usize = SUPERBLOCK_OFFSET as usize + 4;
/// Bytes from the start of an image that [`declared_size`] needs.
pub const SIZE_PROBE_LEN: usize = SUPERBLOCK_OFFSET as usize + SUPERBLOCK_LEN;

const FEATURE_COMPAT_SB_CHKSUM: u32 = 0x1;
/// Also means "compression HEAD2" on images without a device table; only the count tells.
const FEATURE_INCOMPAT_DEVICE_TABLE: u32 = 0x8;

/// 512 B to 64 KiB: Linux mounts block sizes from 512 bytes up to the page size, and 64 KiB
/// is the largest page an Android kernel uses.
const BLOCK_SIZE_BITS: std::ops::RangeInclusive<u8> = 9..=16;

/// Whether `head` (the first [`PROBE_LEN`] bytes of an image or more) starts an erofs
/// filesystem. A cheap probe: the superblock's magic only.
pub fn is_erofs(head: &[u8]) -> bool {
    head.get(SUPERBLOCK_OFFSET as usize..PROBE_LEN) == Some(&MAGIC.to_le_bytes()[..])
}

/// Bytes of the filesystem as its superblock declares them (`blocks` << `blkszbits`), when
/// `head` (the image's first [`SIZE_PROBE_LEN`] bytes or more) starts an erofs image with a
/// block size Linux mounts. Unchecked otherwise: a reader that trusts it only to bound
/// read-ahead loses nothing if it lies.
pub fn declared_size(head: &[u8]) -> Option<u64> {
    if !is_erofs(head) {
        return None;
    }
    let superblock = head.get(SUPERBLOCK_OFFSET as usize..SIZE_PROBE_LEN)?;
    let block_size_bits = *superblock.get(12)?;
    if !BLOCK_SIZE_BITS.contains(&block_size_bits) {
        return None;
    }
    let blocks = u32::from_le_bytes(superblock.get(36..40)?.try_into().ok()?);
    Some(u64::from(blocks) << block_size_bits)
}

/// Refuses an image erofs-rs must not be given. Reads the superblock (and, when the image
/// carries a checksum, the rest of its block) through the metered source; a failed read
/// returns a placeholder error that the caller replaces with the recorded failure.
pub fn check<S: ReadAt>(metered: &mut Metered<S>, path: &str) -> Result<(), ErofsFileError> {
    let mut superblock = [0u8; SUPERBLOCK_LEN];
    metered
        .read(SUPERBLOCK_OFFSET, &mut superblock)
        .map_err(ErofsFileError::Source)?;
    let magic = le32(&superblock, 0);
    if magic != MAGIC {
        return Err(ErofsFileError::NotErofs(format!(
            "found {magic:#010x} at byte {SUPERBLOCK_OFFSET}, not the erofs magic {MAGIC:#010x}"
        )));
    }
    let block_size_bits = superblock[12];
    if !BLOCK_SIZE_BITS.contains(&block_size_bits) {
        return Err(ErofsFileError::Corrupt {
            path: path.to_string(),
            detail: format!(
                "the superblock gives a block size of 2^{block_size_bits} bytes \
                 (Linux mounts 2^9 to 2^16)"
            ),
        });
    }
    if le32(&superblock, 8) & FEATURE_COMPAT_SB_CHKSUM != 0 {
        check_checksum(metered, &superblock, block_size_bits, path)?;
    }
    let extra_devices = u16::from_le_bytes([superblock[86], superblock[87]]);
    if le32(&superblock, 80) & FEATURE_INCOMPAT_DEVICE_TABLE != 0 && extra_devices != 0 {
        return Err(ErofsFileError::Unsupported {
            feature: format!(
                "data on {extra_devices} extra device(s) (a partition image is one device)"
            ),
        });
    }
    Ok(())
}

/// The kernel refuses to mount an image whose superblock checksum is wrong, so a phone would
/// not boot it: CRC-32C (Castagnoli, seed !0, no final inversion) over the rest of the first
/// block from the superblock on, with the checksum field zeroed.
fn check_checksum<S: ReadAt>(
    metered: &mut Metered<S>,
    superblock: &[u8; SUPERBLOCK_LEN],
    block_size_bits: u8,
    path: &str,
) -> Result<(), ErofsFileError> {
    let block_size = 1usize << block_size_bits;
    let len = block_size
        .checked_sub(SUPERBLOCK_OFFSET as usize)
        .filter(|&len| len > 0)
        .unwrap_or(block_size)
        .max(SUPERBLOCK_LEN);
    let mut covered = vec![0u8; len];
    covered[..SUPERBLOCK_LEN].copy_from_slice(superblock);
    if let Some(rest) = covered.get_mut(SUPERBLOCK_LEN..) {
        metered
            .read(SUPERBLOCK_OFFSET + SUPERBLOCK_LEN as u64, rest)
            .map_err(ErofsFileError::Source)?;
    }
    let stored = le32(superblock, 4);
    covered[4..8].fill(0);
    let computed = crc32c(u32::MAX, &covered);
    if computed != stored {
        return Err(ErofsFileError::Corrupt {
            path: path.to_string(),
            detail: format!(
                "the superblock checksum is {stored:#010x} but its contents give \
                 {computed:#010x} (a kernel would not mount it)"
            ),
        });
    }
    Ok(())
}

fn le32(bytes: &[u8; SUPERBLOCK_LEN], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C as Linux's `crc32c(seed, data, len)` computes it: no inversion on the way out.
fn crc32c(seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &byte| {
        CRC32C_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erofs::source::{Budget, SourceFailure};

    #[test]
    fn crc32c_matches_the_published_check_value() {
        // The standard CRC-32C check: "123456789" gives 0xE3069283 with both inversions.
        assert_eq!(crc32c(u32::MAX, b"123456789") ^ u32::MAX, 0xE306_9283);
    }

    #[test]
    fn probes_the_magic_only() {
        let mut head = vec![0u8; PROBE_LEN];
        assert!(!is_erofs(&head));
        head[1024..1028].copy_from_slice(&[0xE2, 0xE1, 0xF5, 0xE0]);
        assert!(is_erofs(&head));
        assert!(!is_erofs(&head[..1027]), "too short to tell");
        assert!(!is_erofs(&[]));
    }

    #[test]
    fn the_declared_size_is_blocks_times_the_block_size() {
        let mut head = image(12, 0, 0);
        head[1024 + 36..1024 + 40].copy_from_slice(&300u32.to_le_bytes());
        assert_eq!(declared_size(&head), Some(300 * 4096));
        head[1024 + 12] = 8;
        assert_eq!(
            declared_size(&head),
            None,
            "a block size Linux does not mount"
        );
        assert_eq!(declared_size(&head[..1100]), None, "too short to tell");
        assert_eq!(declared_size(&vec![0u8; 4096]), None);
    }

    /// A superblock with a valid checksum over a 4 KiB block.
    fn image(block_size_bits: u8, incompat: u32, extra_devices: u16) -> Vec<u8> {
        let mut image = vec![0u8; 8192];
        let sb = &mut image[1024..1024 + SUPERBLOCK_LEN];
        sb[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        sb[8..12].copy_from_slice(&FEATURE_COMPAT_SB_CHKSUM.to_le_bytes());
        sb[12] = block_size_bits;
        sb[80..84].copy_from_slice(&incompat.to_le_bytes());
        sb[86..88].copy_from_slice(&extra_devices.to_le_bytes());
        let block_size = 1usize << block_size_bits.clamp(9, 12);
        let len = if block_size > 1024 {
            block_size - 1024
        } else {
            block_size
        };
        let crc = crc32c(u32::MAX, &image[1024..1024 + len]);
        image[1028..1032].copy_from_slice(&crc.to_le_bytes());
        image
    }

    fn run(image: Vec<u8>) -> Result<(), ErofsFileError> {
        let mut metered = Metered::new(
            image,
            Budget {
                bytes: 1 << 20,
                reads: 10,
            },
        );
        check(&mut metered, "/x")
    }

    #[test]
    fn accepts_a_well_formed_superblock() {
        run(image(12, 0x1, 0)).unwrap();
        // The device-table bit without devices is compression HEAD2: fine.
        run(image(12, FEATURE_INCOMPAT_DEVICE_TABLE, 0)).unwrap();
        run(image(9, 0, 0)).unwrap();
    }

    #[test]
    fn refuses_what_a_kernel_would_not_mount() {
        let mut not_erofs = image(12, 0, 0);
        not_erofs[1024] ^= 1;
        assert!(matches!(run(not_erofs), Err(ErofsFileError::NotErofs(_))));

        let mut flipped = image(12, 0, 0);
        flipped[2000] ^= 0x40;
        let error = run(flipped).unwrap_err();
        assert!(
            matches!(&error, ErofsFileError::Corrupt { detail, .. } if detail.contains("checksum")),
            "{error}"
        );

        for bits in [0u8, 8, 17, 30, 255] {
            let error = run(image(bits, 0, 0)).unwrap_err();
            assert!(
                matches!(&error, ErofsFileError::Corrupt { detail, .. } if detail.contains("block size")),
                "{bits}: {error}"
            );
        }

        let error = run(image(12, FEATURE_INCOMPAT_DEVICE_TABLE, 2)).unwrap_err();
        assert!(
            matches!(&error, ErofsFileError::Unsupported { feature } if feature.contains("2 extra")),
            "{error}"
        );
    }

    #[test]
    fn a_short_source_fails_the_read_and_records_why() {
        let mut metered = Metered::new(
            vec![0u8; 1100],
            Budget {
                bytes: 1 << 20,
                reads: 10,
            },
        );
        assert!(matches!(
            check(&mut metered, "/x"),
            Err(ErofsFileError::Source(_))
        ));
        let (_, _, failure) = metered.finish();
        assert!(matches!(failure, Some(SourceFailure::Io(_))));
    }
}
