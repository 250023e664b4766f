//! Reading a table from a disk through a positioned reader: the primary copy, or the backup
//! one when the primary is damaged.

use super::{check_sector_size, Gpt, GptError, GptHeader, Partition, Which};

impl Gpt {
    fn from_parts(
        header: &GptHeader,
        partitions: Vec<Partition>,
        sector_size: u32,
        disk_sectors: u64,
    ) -> Gpt {
        Gpt {
            sector_size,
            disk_sectors,
            disk_guid: header.disk_guid,
            first_usable_lba: header.first_usable_lba,
            last_usable_lba: header.last_usable_lba,
            entry_count: header.entry_count,
            partitions,
        }
    }

    /// Read a table through `read_at(byte_offset, buf)` (a file, a LUN, a device): the primary
    /// copy, or the backup in the disk's last sector when the primary is damaged, like UEFI
    /// firmware does. `disk_sectors` is the disk size in sectors.
    pub fn read<F>(mut read_at: F, sector_size: u32, disk_sectors: u64) -> Result<Gpt, GptError>
    where
        F: FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    {
        check_sector_size(sector_size)?;
        let primary = Self::read_copy(&mut read_at, sector_size, 1, Which::Primary);
        match primary {
            Ok((header, parts)) => Ok(Self::from_parts(&header, parts, sector_size, disk_sectors)),
            Err(primary_err) => {
                let last = disk_sectors.saturating_sub(1);
                match Self::read_copy(&mut read_at, sector_size, last, Which::Backup) {
                    Ok((header, parts)) => {
                        Ok(Self::from_parts(&header, parts, sector_size, disk_sectors))
                    }
                    Err(backup_err) => Err(GptError::BothInvalid {
                        primary: primary_err.to_string(),
                        backup: backup_err.to_string(),
                    }),
                }
            }
        }
    }

    /// Read and check one copy whose header is at `lba`.
    pub fn read_copy<F>(
        read_at: &mut F,
        sector_size: u32,
        lba: u64,
        which: Which,
    ) -> Result<(GptHeader, Vec<Partition>), GptError>
    where
        F: FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    {
        let ss = u64::from(sector_size);
        let mut sector = vec![0u8; sector_size as usize];
        let offset = lba * ss;
        read_at(offset, &mut sector).map_err(|e| GptError::Io {
            offset,
            message: e.to_string(),
        })?;
        let header = GptHeader::parse(&sector, sector_size, which)?;
        if header.my_lba != lba {
            return Err(GptError::Layout {
                which,
                reason: format!("header at LBA {lba} says it is at LBA {}", header.my_lba),
            });
        }
        // Bounded by MAX_ENTRY_ARRAY_BYTES in GptHeader::parse.
        let mut array = vec![0u8; header.entry_array_bytes() as usize];
        let offset = header.entries_lba * ss;
        read_at(offset, &mut array).map_err(|e| GptError::Io {
            offset,
            message: e.to_string(),
        })?;
        let parts = header.parse_entries(&array, which)?;
        Ok((header, parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpt::test_support::small_table;

    #[test]
    fn round_trip_both_sector_sizes() {
        for ss in [512, 4096] {
            let gpt = small_table(ss);
            let enc = gpt.encode().unwrap();
            let mut disk = vec![0u8; (gpt.disk_sectors * u64::from(ss)) as usize];
            disk[..enc.primary.len()].copy_from_slice(&enc.primary);
            let at = (enc.backup_lba * u64::from(ss)) as usize;
            disk[at..at + enc.backup.len()].copy_from_slice(&enc.backup);
            let reader = |off: u64, buf: &mut [u8]| {
                let off = off as usize;
                buf.copy_from_slice(&disk[off..off + buf.len()]);
                Ok(())
            };
            let back = Gpt::read(reader, ss, gpt.disk_sectors).unwrap();
            assert_eq!(back, gpt, "sector size {ss}");
            assert_eq!(back.find("system_a").unwrap().size_bytes(ss), 16 << 20);
            assert!(back.find("System_a").is_none());
            // Primary damaged: the backup copy is used.
            let mut damaged = disk.clone();
            damaged[ss as usize + 100] ^= 0xff; // inside the header sector but past its 92 bytes
            damaged[ss as usize + 40] ^= 0xff; // first usable LBA: header CRC now wrong
            let reader = |off: u64, buf: &mut [u8]| {
                let off = off as usize;
                buf.copy_from_slice(&damaged[off..off + buf.len()]);
                Ok(())
            };
            assert_eq!(Gpt::read(reader, ss, gpt.disk_sectors).unwrap(), gpt);
        }
    }
}
