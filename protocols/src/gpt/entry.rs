//! The entry array a header points to, and the 128-byte entries in it (names are UTF-16LE,
//! at most 36 code units).

use super::{le_u64, GptError, GptHeader, Guid, Which, NAME_UNITS};

impl GptHeader {
    /// Decode the entry array this header points to (`bytes` = at least
    /// [`Self::entry_array_bytes`] bytes read from [`Self::entries_lba`]). Empty entries (zero
    /// type GUID) are skipped; the rest come back in table order with their index.
    pub fn parse_entries(&self, bytes: &[u8], which: Which) -> Result<Vec<Partition>, GptError> {
        let need = self.entry_array_bytes() as usize;
        let Some(array) = bytes.get(..need) else {
            return Err(GptError::EntriesShort {
                which,
                len: bytes.len(),
                need,
            });
        };
        let computed = crc32fast::hash(array);
        if computed != self.entries_crc32 {
            return Err(GptError::EntriesCrc {
                which,
                found: self.entries_crc32,
                computed,
            });
        }
        let mut partitions = Vec::new();
        for (index, raw) in array.chunks_exact(self.entry_size as usize).enumerate() {
            let index = index as u32;
            if let Some(p) = Partition::decode(raw, index)? {
                if p.first_lba < self.first_usable_lba || p.last_lba > self.last_usable_lba {
                    return Err(GptError::Entry {
                        index,
                        name: p.name,
                        reason: format!(
                            "LBAs {}..={} lie outside the usable area {}..={}",
                            p.first_lba, p.last_lba, self.first_usable_lba, self.last_usable_lba
                        ),
                    });
                }
                partitions.push(p);
            }
        }
        Ok(partitions)
    }
}

/// One used partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Position in the entry array.
    pub index: u32,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    /// Inclusive, as in the spec.
    pub last_lba: u64,
    /// Bits 0–2 are UEFI-defined; 48–63 belong to the type (Qualcomm keeps A/B slot state here).
    pub attributes: u64,
    pub name: String,
}

impl Partition {
    pub fn sectors(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }

    pub fn size_bytes(&self, sector_size: u32) -> u64 {
        self.sectors() * u64::from(sector_size)
    }

    /// Byte offset of the first sector on the disk.
    pub fn start_byte(&self, sector_size: u32) -> u64 {
        self.first_lba * u64::from(sector_size)
    }

    fn decode(raw: &[u8], index: u32) -> Result<Option<Partition>, GptError> {
        let guid_at = |at: usize| {
            let mut g = [0u8; 16];
            if let Some(s) = raw.get(at..at + 16) {
                g.copy_from_slice(s);
            }
            Guid::from_bytes(g)
        };
        let type_guid = guid_at(0);
        if type_guid.is_nil() {
            return Ok(None);
        }
        let units: Vec<u16> = raw
            .get(56..56 + 2 * NAME_UNITS)
            .unwrap_or(&[])
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        let p = Partition {
            index,
            type_guid,
            unique_guid: guid_at(16),
            first_lba: le_u64(raw, 32),
            last_lba: le_u64(raw, 40),
            attributes: le_u64(raw, 48),
            name,
        };
        if p.last_lba < p.first_lba {
            return Err(GptError::Entry {
                index,
                name: p.name,
                reason: format!(
                    "last LBA {} is before first LBA {}",
                    p.last_lba, p.first_lba
                ),
            });
        }
        Ok(Some(p))
    }

    pub(super) fn encode_into(&self, raw: &mut [u8]) -> Result<(), GptError> {
        let units = encode_name(&self.name)?;
        raw[..16].copy_from_slice(self.type_guid.as_bytes());
        raw[16..32].copy_from_slice(self.unique_guid.as_bytes());
        raw[32..40].copy_from_slice(&self.first_lba.to_le_bytes());
        raw[40..48].copy_from_slice(&self.last_lba.to_le_bytes());
        raw[48..56].copy_from_slice(&self.attributes.to_le_bytes());
        for (i, u) in units.iter().enumerate() {
            raw[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        Ok(())
    }
}

pub(super) fn encode_name(name: &str) -> Result<Vec<u16>, GptError> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let bad = |reason: &str| GptError::Name {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if units.is_empty() {
        return Err(bad("empty"));
    }
    if units.len() > NAME_UNITS {
        return Err(bad("longer than 36 UTF-16 code units"));
    }
    if units.contains(&0) {
        return Err(bad("contains a NUL character"));
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpt::test_support::small_table;
    use crate::gpt::{types, Gpt};

    #[test]
    fn entry_literal_bytes_and_utf16_name() {
        let mut gpt = Gpt::new(512, 0x20000, Guid::NIL).unwrap();
        gpt.add_partition("boot_a", types::ANDROID_BOOT, Guid::NIL, 1024, 512)
            .unwrap();
        let enc = gpt.encode().unwrap();
        let e = &enc.primary[1024..1024 + 128];
        assert_eq!(
            &e[..16],
            &[
                0x86, 0x7F, 0x11, 0x20, 0x85, 0xE9, 0x57, 0x43, 0xB9, 0xEE, 0x37, 0x4B, 0xC1, 0xD8,
                0x48, 0x7D
            ]
        );
        assert_eq!(
            &e[32..48],
            &[34, 0, 0, 0, 0, 0, 0, 0, 35, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            &e[56..70],
            &[b'b', 0, b'o', 0, b'o', 0, b't', 0, b'_', 0, b'a', 0, 0, 0]
        );
    }

    #[test]
    fn hostile_entries_are_refused() {
        let gpt = small_table(512);
        let enc = gpt.encode().unwrap();
        let header = GptHeader::parse(&enc.primary[512..1024], 512, Which::Primary).unwrap();
        let array = &enc.primary[1024..1024 + 16384];
        assert_eq!(
            header.parse_entries(array, Which::Primary).unwrap().len(),
            4
        );
        assert!(matches!(
            header.parse_entries(&array[..100], Which::Primary),
            Err(GptError::EntriesShort { .. })
        ));
        let mut bad = array.to_vec();
        bad[200] ^= 1;
        assert!(matches!(
            header.parse_entries(&bad, Which::Primary),
            Err(GptError::EntriesCrc { .. })
        ));
        // Entry ending before it starts, with a matching CRC: refused by name.
        let mut bad = array.to_vec();
        bad[40..48].copy_from_slice(&1u64.to_le_bytes());
        let h = GptHeader {
            entries_crc32: crc32fast::hash(&bad),
            ..header.clone()
        };
        assert!(matches!(
            h.parse_entries(&bad, Which::Primary),
            Err(GptError::Entry { index: 0, .. })
        ));
    }
}
