//! Reading a table from a disk through a positioned reader: the primary copy, or the backup
//! one when the primary is damaged.

use super::{check_sector_size, lba_is_addressable, Gpt, GptError, GptHeader, Partition, Which};

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
        // The backup's LBA comes from a disk size a device reported: it may be absurd.
        if !lba_is_addressable(lba, sector_size) {
            return Err(GptError::BeyondAddressSpace {
                which,
                lba,
                sector_size,
            });
        }
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
        // Bounded by MAX_ENTRY_ARRAY_BYTES, and its LBAs by the address space, in GptHeader::parse.
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

    #[test]
    fn a_disk_size_past_2_64_bytes_is_an_error_not_an_overflow() {
        // Found by the `gpt` fuzz target: the backup's byte offset overflowed.
        let zeros = |_: u64, buf: &mut [u8]| {
            buf.fill(0);
            Ok(())
        };
        for sectors in [u64::MAX, u64::MAX / 512 + 2, 0x0b86_9b99_4602_0000] {
            match Gpt::read(zeros, 512, sectors) {
                Err(GptError::BothInvalid { backup, .. }) => {
                    assert!(backup.contains("beyond 2^64 bytes"), "{backup}")
                }
                other => panic!("{sectors} sectors: {other:?}"),
            }
        }
    }
}
