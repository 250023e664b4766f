//! The GPT header sector: decoding with every field bounded before it is used, and encoding
//! with its CRC32.

use super::{
    check_sector_size, lba_is_addressable, le_u32, le_u64, GptError, Guid, Which, ENTRY_SIZE,
    HEADER_SIZE, MAX_ENTRY_ARRAY_BYTES, MAX_ENTRY_SIZE, REVISION_1_0, SIGNATURE,
};

/// A decoded GPT header (primary or backup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    pub header_size: u32,
    pub header_crc32: u32,
    /// LBA of this header.
    pub my_lba: u64,
    /// LBA of the other copy's header.
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    /// First LBA of this copy's entry array.
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
}

impl GptHeader {
    /// Decode and validate one header sector (`sector` must hold at least one sector of
    /// `sector_size` bytes; only the header's own bytes are checked by its CRC).
    pub fn parse(sector: &[u8], sector_size: u32, which: Which) -> Result<Self, GptError> {
        check_sector_size(sector_size)?;
        let need = sector_size as usize;
        if sector.len() < need {
            return Err(GptError::Short {
                which,
                len: sector.len(),
                need,
            });
        }
        if sector.get(..8) != Some(&SIGNATURE[..]) {
            return Err(GptError::Signature { which });
        }
        let revision = le_u32(sector, 8);
        if revision != REVISION_1_0 {
            return Err(GptError::Revision { which, revision });
        }
        let header_size = le_u32(sector, 12);
        if header_size < HEADER_SIZE || header_size > sector_size {
            return Err(GptError::HeaderSize {
                which,
                size: header_size,
                max: sector_size,
            });
        }
        let found = le_u32(sector, 16);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&sector[..16]);
        hasher.update(&[0; 4]);
        hasher.update(&sector[20..header_size as usize]);
        let computed = hasher.finalize();
        if found != computed {
            return Err(GptError::HeaderCrc {
                which,
                found,
                computed,
            });
        }
        let header = GptHeader {
            header_size,
            header_crc32: found,
            my_lba: le_u64(sector, 24),
            alternate_lba: le_u64(sector, 32),
            first_usable_lba: le_u64(sector, 40),
            last_usable_lba: le_u64(sector, 48),
            disk_guid: Guid::from_bytes(sector[56..72].try_into().unwrap_or([0; 16])),
            entries_lba: le_u64(sector, 72),
            entry_count: le_u32(sector, 80),
            entry_size: le_u32(sector, 84),
            entries_crc32: le_u32(sector, 88),
        };
        header.check_bounds(sector_size, which)?;
        Ok(header)
    }

    fn check_bounds(&self, sector_size: u32, which: Which) -> Result<(), GptError> {
        let size = self.entry_size;
        if !(ENTRY_SIZE..=MAX_ENTRY_SIZE).contains(&size) || !size.is_power_of_two() {
            return Err(GptError::EntrySize { which, size });
        }
        if u64::from(self.entry_count) * u64::from(size) > MAX_ENTRY_ARRAY_BYTES {
            return Err(GptError::EntryArrayTooLarge {
                which,
                count: self.entry_count,
                size,
            });
        }
        let layout = |reason: String| GptError::Layout { which, reason };
        if self.first_usable_lba > self.last_usable_lba.saturating_add(1) {
            return Err(layout(format!(
                "first usable LBA {} is past last usable LBA {}",
                self.first_usable_lba, self.last_usable_lba
            )));
        }
        // Every LBA the header names must have a byte offset (and the partitions inside the
        // usable area a byte size) that fits in u64.
        let array_end = self
            .entries_lba
            .saturating_add(self.entry_array_sectors(sector_size));
        for lba in [
            self.my_lba,
            self.alternate_lba,
            self.last_usable_lba,
            array_end,
        ] {
            if !lba_is_addressable(lba, sector_size) {
                return Err(GptError::BeyondAddressSpace {
                    which,
                    lba,
                    sector_size,
                });
            }
        }
        let array_inside_usable =
            self.entries_lba <= self.last_usable_lba && array_end > self.first_usable_lba;
        if self.entries_lba < 2 && which == Which::Primary || array_inside_usable {
            return Err(layout(format!(
                "entry array at LBA {} overlaps the header or the usable area",
                self.entries_lba
            )));
        }
        Ok(())
    }

    /// Bytes of the entry array (bounded by [`MAX_ENTRY_ARRAY_BYTES`] once parsed).
    pub fn entry_array_bytes(&self) -> u64 {
        u64::from(self.entry_count) * u64::from(self.entry_size)
    }

    /// Whole sectors the entry array occupies.
    pub fn entry_array_sectors(&self, sector_size: u32) -> u64 {
        self.entry_array_bytes()
            .div_ceil(u64::from(sector_size.max(1)))
    }
    /// Encode into one sector of `sector_size` bytes, computing the header CRC.
    pub fn encode(&self, sector_size: u32) -> Vec<u8> {
        let mut s = vec![0u8; sector_size as usize];
        s[..8].copy_from_slice(SIGNATURE);
        s[8..12].copy_from_slice(&REVISION_1_0.to_le_bytes());
        s[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        s[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        s[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        s[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        s[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        s[56..72].copy_from_slice(self.disk_guid.as_bytes());
        s[72..80].copy_from_slice(&self.entries_lba.to_le_bytes());
        s[80..84].copy_from_slice(&self.entry_count.to_le_bytes());
        s[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        s[88..92].copy_from_slice(&self.entries_crc32.to_le_bytes());
        let crc = crc32fast::hash(&s[..HEADER_SIZE as usize]);
        s[16..20].copy_from_slice(&crc.to_le_bytes());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpt::test_support::{header_sector, recrc};
    use crate::gpt::Gpt;

    #[test]
    fn header_literal_fields_and_crc() {
        let gpt = Gpt::new(512, 0x20000, Guid::NIL).unwrap();
        let enc = gpt.encode().unwrap();
        let h = &enc.primary[512..1024];
        assert_eq!(&h[..8], b"EFI PART");
        assert_eq!(&h[8..16], &[0x00, 0x00, 0x01, 0x00, 0x5C, 0x00, 0x00, 0x00]);
        assert_eq!(&h[24..32], &1u64.to_le_bytes()); // my LBA
        assert_eq!(&h[32..40], &0x1FFFFu64.to_le_bytes()); // backup in the last sector
        assert_eq!(&h[40..48], &34u64.to_le_bytes()); // 2 + 32 sectors of entries
        assert_eq!(&h[48..56], &(0x1FFFFu64 - 33).to_le_bytes());
        assert_eq!(
            &h[72..92],
            &[2, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0][..16]
                .iter()
                .chain(&crc32fast::hash(&[0u8; 16384]).to_le_bytes())
                .copied()
                .collect::<Vec<u8>>()[..]
        );
        // The empty-array CRC every empty 128×128 table carries.
        assert_eq!(crc32fast::hash(&[0u8; 16384]), 0xAB54_D286);
        let mut zeroed = h[..92].to_vec();
        zeroed[16..20].fill(0);
        assert_eq!(&h[16..20], &crc32fast::hash(&zeroed).to_le_bytes());
        assert!(h[92..].iter().all(|&b| b == 0));
    }

    #[test]
    fn hostile_headers_are_refused_without_panicking() {
        let good = header_sector();
        assert!(GptHeader::parse(&good, 512, Which::Primary).is_ok());
        type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("short", Box::new(|s| s.truncate(91))),
            ("signature", Box::new(|s| s[0] = b'X')),
            (
                "revision",
                Box::new(|s| {
                    s[10] = 2;
                    recrc(s)
                }),
            ),
            (
                "header size small",
                Box::new(|s| {
                    s[12] = 91;
                    recrc(s)
                }),
            ),
            (
                "header size huge",
                Box::new(|s| {
                    s[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
                    recrc(s)
                }),
            ),
            ("crc", Box::new(|s| s[16] ^= 1)),
            (
                "entry size 0",
                Box::new(|s| {
                    s[84..88].copy_from_slice(&0u32.to_le_bytes());
                    recrc(s)
                }),
            ),
            (
                "entry size 129",
                Box::new(|s| {
                    s[84..88].copy_from_slice(&129u32.to_le_bytes());
                    recrc(s)
                }),
            ),
            (
                "entry count huge",
                Box::new(|s| {
                    s[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
                    recrc(s)
                }),
            ),
            (
                "array in usable area",
                Box::new(|s| {
                    s[72..80].copy_from_slice(&100u64.to_le_bytes());
                    recrc(s)
                }),
            ),
            (
                "entry array near 2^64 (an overflow before)",
                Box::new(|s| {
                    s[72..80].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
                    recrc(s)
                }),
            ),
            (
                "usable area past 2^64 bytes",
                Box::new(|s| {
                    s[48..56].copy_from_slice(&(u64::MAX / 512).to_le_bytes());
                    recrc(s)
                }),
            ),
            (
                "backup LBA past 2^64 bytes",
                Box::new(|s| {
                    s[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
                    recrc(s)
                }),
            ),
            (
                "first > last usable",
                Box::new(|s| {
                    s[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
                    recrc(s)
                }),
            ),
        ];
        for (what, mutate) in cases {
            let mut s = good.clone();
            mutate(&mut s);
            assert!(
                GptHeader::parse(&s, 512, Which::Primary).is_err(),
                "{what} accepted"
            );
        }
        assert_eq!(
            GptHeader::parse(&good, 1024, Which::Primary),
            Err(GptError::SectorSize(1024))
        );
    }
}
