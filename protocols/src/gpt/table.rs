//! A whole partition table as both copies describe it: building one for a disk (the simulated
//! phones' storage) and encoding the protective MBR, primary and backup structures.

use super::entry::encode_name;
use super::{
    check_sector_size, GptError, GptHeader, Guid, Partition, DEFAULT_ENTRY_COUNT, ENTRY_SIZE,
    HEADER_SIZE,
};

/// A whole partition table: what both copies describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub sector_size: u32,
    /// Sectors on the disk (LUN); the backup header sits in the last one.
    pub disk_sectors: u64,
    pub disk_guid: Guid,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    /// Size of the entry array (slots, used or not).
    pub entry_count: u32,
    /// Used entries, by index.
    pub partitions: Vec<Partition>,
}

/// Where each piece of an encoded table goes on the disk.
#[derive(Debug, Clone)]
pub struct EncodedGpt {
    /// Protective MBR (LBA 0), primary header (LBA 1) and primary entry array, contiguous from
    /// byte 0 ("gpt_main" in Qualcomm packages).
    pub primary: Vec<u8>,
    /// Backup entry array followed by the backup header (last LBA), starting at `backup_lba`
    /// ("gpt_backup").
    pub backup: Vec<u8>,
    pub backup_lba: u64,
}

impl Gpt {
    /// An empty table for a disk of `disk_sectors` sectors with the standard 128-entry array.
    pub fn new(sector_size: u32, disk_sectors: u64, disk_guid: Guid) -> Result<Self, GptError> {
        check_sector_size(sector_size)?;
        let array_sectors =
            (u64::from(DEFAULT_ENTRY_COUNT) * u64::from(ENTRY_SIZE)).div_ceil(sector_size.into());
        let first_usable_lba = 2 + array_sectors;
        // Backup: array then header in the last sector.
        let reserved_tail = array_sectors + 1;
        if disk_sectors < first_usable_lba + reserved_tail + 1 {
            return Err(GptError::Build {
                name: String::from("(disk)"),
                reason: format!("{disk_sectors} sectors is too small for a GPT"),
            });
        }
        Ok(Gpt {
            sector_size,
            disk_sectors,
            disk_guid,
            first_usable_lba,
            last_usable_lba: disk_sectors - reserved_tail - 1,
            entry_count: DEFAULT_ENTRY_COUNT,
            partitions: Vec::new(),
        })
    }

    /// Partition by exact label (GPT names are case-sensitive, as Firehose and fastboot use them).
    pub fn find(&self, label: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == label)
    }

    pub fn find_mut(&mut self, label: &str) -> Option<&mut Partition> {
        self.partitions.iter_mut().find(|p| p.name == label)
    }

    /// First LBA after the last partition, aligned up to `align_bytes`.
    pub fn next_free_lba(&self, align_bytes: u64) -> u64 {
        let end = self
            .partitions
            .iter()
            .map(|p| p.last_lba + 1)
            .max()
            .unwrap_or(self.first_usable_lba)
            .max(self.first_usable_lba);
        let align = (align_bytes / u64::from(self.sector_size)).max(1);
        end.div_ceil(align) * align
    }

    /// Append a partition of `size_bytes` (rounded up to whole sectors) after the last one,
    /// aligned to `align_bytes` (1 MiB is what sgdisk and most tools use).
    pub fn add_partition(
        &mut self,
        name: &str,
        type_guid: Guid,
        unique_guid: Guid,
        size_bytes: u64,
        align_bytes: u64,
    ) -> Result<&Partition, GptError> {
        let build = |reason: String| GptError::Build {
            name: name.to_string(),
            reason,
        };
        encode_name(name)?;
        if self.find(name).is_some() {
            return Err(build("a partition with this name already exists".into()));
        }
        let index = (0..self.entry_count)
            .find(|i| !self.partitions.iter().any(|p| p.index == *i))
            .ok_or_else(|| build(format!("all {} entries are used", self.entry_count)))?;
        let sectors = size_bytes.div_ceil(self.sector_size.into());
        if sectors == 0 {
            return Err(build("size is zero".into()));
        }
        let first_lba = self.next_free_lba(align_bytes);
        let last_lba = first_lba + sectors - 1;
        if last_lba > self.last_usable_lba {
            return Err(build(format!(
                "{size_bytes} bytes at LBA {first_lba} do not fit (last usable LBA {})",
                self.last_usable_lba
            )));
        }
        self.partitions.push(Partition {
            index,
            type_guid,
            unique_guid,
            first_lba,
            last_lba,
            attributes: 0,
            name: name.to_string(),
        });
        self.partitions.sort_by_key(|p| p.index);
        Ok(self.find(name).expect("just inserted"))
    }

    fn array_sectors(&self) -> u64 {
        (u64::from(self.entry_count) * u64::from(ENTRY_SIZE)).div_ceil(self.sector_size.into())
    }

    fn entry_array(&self) -> Result<Vec<u8>, GptError> {
        let sectors = self.array_sectors();
        let mut array = vec![0u8; (sectors * u64::from(self.sector_size)) as usize];
        for p in &self.partitions {
            let at = p.index as usize * ENTRY_SIZE as usize;
            let raw =
                array
                    .get_mut(at..at + ENTRY_SIZE as usize)
                    .ok_or_else(|| GptError::Entry {
                        index: p.index,
                        name: p.name.clone(),
                        reason: format!("index beyond the {}-entry array", self.entry_count),
                    })?;
            p.encode_into(raw)?;
        }
        Ok(array)
    }

    /// The protective MBR sector (one 0xEE partition covering the disk, capped at 2^32-1 sectors).
    pub fn protective_mbr(&self) -> Vec<u8> {
        let mut mbr = vec![0u8; self.sector_size as usize];
        let entry = &mut mbr[446..462];
        entry[0] = 0x00; // not bootable
        entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
        entry[4] = 0xEE; // GPT protective
        entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = u32::try_from(self.disk_sectors - 1).unwrap_or(u32::MAX);
        entry[12..16].copy_from_slice(&size.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        mbr
    }

    /// Headers for both copies (entries CRC filled in).
    pub fn headers(&self) -> Result<(GptHeader, GptHeader), GptError> {
        let array = self.entry_array()?;
        let crc = crc32fast::hash(&array[..(self.entry_count * ENTRY_SIZE) as usize]);
        let last = self.disk_sectors - 1;
        let primary = GptHeader {
            header_size: HEADER_SIZE,
            header_crc32: 0,
            my_lba: 1,
            alternate_lba: last,
            first_usable_lba: self.first_usable_lba,
            last_usable_lba: self.last_usable_lba,
            disk_guid: self.disk_guid,
            entries_lba: 2,
            entry_count: self.entry_count,
            entry_size: ENTRY_SIZE,
            entries_crc32: crc,
        };
        let backup = GptHeader {
            my_lba: last,
            alternate_lba: 1,
            entries_lba: last - self.array_sectors(),
            ..primary.clone()
        };
        Ok((primary, backup))
    }

    /// Encode every on-disk structure.
    pub fn encode(&self) -> Result<EncodedGpt, GptError> {
        check_sector_size(self.sector_size)?;
        for p in &self.partitions {
            if p.first_lba < self.first_usable_lba || p.last_lba > self.last_usable_lba {
                return Err(GptError::Build {
                    name: p.name.clone(),
                    reason: format!(
                        "LBAs {}..={} lie outside the usable area {}..={}",
                        p.first_lba, p.last_lba, self.first_usable_lba, self.last_usable_lba
                    ),
                });
            }
        }
        let array = self.entry_array()?;
        let (primary_header, backup_header) = self.headers()?;
        let mut primary = self.protective_mbr();
        primary.extend_from_slice(&primary_header.encode(self.sector_size));
        primary.extend_from_slice(&array);
        let mut backup = array;
        backup.extend_from_slice(&backup_header.encode(self.sector_size));
        Ok(EncodedGpt {
            primary,
            backup,
            backup_lba: backup_header.entries_lba,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpt::types;

    #[test]
    fn protective_mbr_literal_bytes() {
        let gpt = Gpt::new(512, 0x20000, Guid::NIL).unwrap();
        let mbr = gpt.protective_mbr();
        assert_eq!(mbr.len(), 512);
        assert_eq!(
            &mbr[446..462],
            &[
                0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF,
                0x01, 0x00
            ]
        );
        assert_eq!(&mbr[510..], &[0x55, 0xAA]);
        assert!(mbr[..446].iter().all(|&b| b == 0));
    }

    #[test]
    fn build_refuses_bad_names_and_overflows() {
        let mut gpt = Gpt::new(512, 0x20000, Guid::NIL).unwrap();
        let add = |g: &mut Gpt, n: &str, size: u64| {
            g.add_partition(n, types::BASIC_DATA, Guid::NIL, size, 512)
                .map(|_| ())
        };
        assert!(add(&mut gpt, "", 512).is_err());
        assert!(add(&mut gpt, &"x".repeat(37), 512).is_err());
        assert!(add(&mut gpt, &"x".repeat(36), 512).is_ok());
        assert!(add(&mut gpt, "a", 0).is_err());
        assert!(add(&mut gpt, "big", 1 << 40).is_err());
        assert!(add(&mut gpt, "dup", 512).is_ok());
        assert!(add(&mut gpt, "dup", 512).is_err());
        assert!(Gpt::new(512, 40, Guid::NIL).is_err());
    }
}
