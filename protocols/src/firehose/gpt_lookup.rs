//! Partitions by label: read the GPT of a LUN through `<read>` and find a label, so the station
//! can read back or digest `system_a` without knowing sectors. The table codec is
//! [`crate::gpt`]; only the sectors the header points at are read.
//!
//! The primary copy (header at LBA 1) is read first. When it is damaged (bad signature or CRC,
//! an interrupted table write) the backup copy in the LUN's last sector is used, as UEFI
//! firmware does. The LUN's size comes from the programmer's `<getstorageinfo>`
//! (`total_blocks`, the source qdl uses for a LUN's geometry); a programmer that does not report
//! it is asked for the last sector as `NUM_DISK_SECTORS-1.`, which it evaluates itself.

use super::client::Firehose;
use super::FirehoseError;
use crate::gpt::{Gpt, GptHeader, Partition, Which};
use crate::transport::Transport;

/// LUNs searched when the programmer does not say how many it has (UFS has up to 8 usable).
pub const DEFAULT_LUNS: std::ops::Range<u32> = 0..8;

/// A partition found on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLocation {
    pub lun: u32,
    pub sector_size: usize,
    pub partition: Partition,
    /// Why the primary GPT was refused, when the partition was found through the backup copy.
    pub primary_gpt_damage: Option<String>,
}

impl PartitionLocation {
    pub fn first_sector(&self) -> u64 {
        self.partition.first_lba
    }
    pub fn num_sectors(&self) -> u64 {
        self.partition.sectors()
    }
    pub fn size_bytes(&self) -> u64 {
        self.num_sectors() * self.sector_size as u64
    }
}

/// One LUN's validated partition table and which copy it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunGpt {
    pub lun: u32,
    pub header: GptHeader,
    pub partitions: Vec<Partition>,
    /// `Some(reason)` when the primary copy was damaged and this table is the backup.
    pub primary_damage: Option<String>,
}

/// What [`Firehose::find_partitions`] found, and which LUNs it searched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundPartitions {
    pub partitions: Vec<PartitionLocation>,
    /// The LUNs whose tables were read, with why a LUN had none (`0`, `1 (no valid GPT: …)`).
    pub searched: Vec<String>,
}

impl FoundPartitions {
    pub fn get(&self, label: &str) -> Option<&PartitionLocation> {
        self.partitions.iter().find(|p| p.partition.name == label)
    }

    /// `label`'s location, or the error naming the LUNs searched.
    pub fn require(&self, label: &str) -> Result<PartitionLocation, FirehoseError> {
        self.get(label)
            .cloned()
            .ok_or_else(|| FirehoseError::PartitionNotFound {
                label: label.to_owned(),
                searched: if self.searched.is_empty() {
                    "(none answered)".to_owned()
                } else {
                    self.searched.join(", ")
                },
            })
    }
}

impl LunGpt {
    pub fn copy(&self) -> Which {
        if self.primary_damage.is_some() {
            Which::Backup
        } else {
            Which::Primary
        }
    }
}

impl<T: Transport> Firehose<T> {
    /// The primary GPT (header at LBA 1) of `lun`, validated (signature, CRCs, bounds).
    pub fn read_primary_gpt(
        &mut self,
        lun: u32,
    ) -> Result<(GptHeader, Vec<Partition>), FirehoseError> {
        self.read_gpt_copy(lun, 1, Which::Primary)
    }

    /// The backup GPT of `lun`: header in the LUN's last sector (`disk_sectors - 1`), validated
    /// like the primary (and it must say it sits in that sector).
    pub fn read_backup_gpt(
        &mut self,
        lun: u32,
        disk_sectors: u64,
    ) -> Result<(GptHeader, Vec<Partition>), FirehoseError> {
        if disk_sectors < 3 {
            return Err(FirehoseError::Gpt {
                lun,
                detail: format!("a LUN of {disk_sectors} sectors cannot hold a backup GPT"),
            });
        }
        self.read_gpt_copy(lun, disk_sectors - 1, Which::Backup)
    }

    /// The GPT of `lun`: the primary copy, or the backup when the primary is damaged. A link
    /// failure or a NAK on the primary's read (no such LUN) is returned as it is; when both
    /// copies are bad the error names the LUN and both reasons.
    pub fn read_lun_gpt(&mut self, lun: u32) -> Result<LunGpt, FirehoseError> {
        let primary_damage = match self.read_primary_gpt(lun) {
            Ok((header, partitions)) => {
                return Ok(LunGpt {
                    lun,
                    header,
                    partitions,
                    primary_damage: None,
                })
            }
            Err(FirehoseError::Gpt { detail, .. }) => detail,
            Err(other) => return Err(other),
        };
        let backup = match self.lun_sectors(lun) {
            Ok(sectors) => self.read_backup_gpt(lun, sectors),
            Err(FirehoseError::Gpt { detail, .. })
            | Err(FirehoseError::Nak { reason: detail, .. }) => {
                self.read_backup_gpt_at_disk_end(lun, &detail)
            }
            Err(other) => Err(other),
        };
        match backup {
            Ok((header, partitions)) => {
                tracing::warn!(
                    target: "firehose",
                    "LUN {lun}: primary GPT is damaged ({primary_damage}); using the backup GPT \
                     at LBA {}. Re-flash gpt_main{lun}.bin to repair it.",
                    header.my_lba
                );
                Ok(LunGpt {
                    lun,
                    header,
                    partitions,
                    primary_damage: Some(primary_damage),
                })
            }
            Err(FirehoseError::Gpt { detail, .. }) => Err(FirehoseError::Gpt {
                lun,
                detail: format!("no valid GPT: primary: {primary_damage}; backup: {detail}"),
            }),
            Err(FirehoseError::Nak {
                command, reason, ..
            }) => Err(FirehoseError::Gpt {
                lun,
                detail: format!(
                    "no valid GPT: primary: {primary_damage}; backup: the programmer refused \
                     `{command}`: {reason}"
                ),
            }),
            Err(other) => Err(other),
        }
    }

    /// Sectors on `lun` as the programmer reports them (`total_blocks` of `<getstorageinfo>`),
    /// refused when its block size is not the session's sector size.
    fn lun_sectors(&mut self, lun: u32) -> Result<u64, FirehoseError> {
        let info = self.storage_info(lun)?;
        let gpt_error = |detail: String| FirehoseError::Gpt { lun, detail };
        let total = info.total_blocks.filter(|t| *t > 0).ok_or_else(|| {
            gpt_error(
                "the programmer's getstorageinfo reported no total_blocks, so the backup GPT \
                 (in the LUN's last sector) cannot be located"
                    .to_owned(),
            )
        })?;
        match info.block_size {
            Some(size) if size != self.sector_size as u64 => Err(gpt_error(format!(
                "getstorageinfo reports {size}-byte blocks but the session uses {}-byte sectors",
                self.sector_size
            ))),
            _ => Ok(total),
        }
    }

    /// The backup GPT found by asking the programmer for the LUN's last sector
    /// (`NUM_DISK_SECTORS-1.`); that header, once validated, says which LBA it is, and the copy
    /// is then read as usual. `size_unknown` says why the size was not known.
    fn read_backup_gpt_at_disk_end(
        &mut self,
        lun: u32,
        size_unknown: &str,
    ) -> Result<(GptHeader, Vec<Partition>), FirehoseError> {
        let sector_size = u32::try_from(self.sector_size).map_err(|_| {
            FirehoseError::InvalidRequest(format!("sector size {}", self.sector_size))
        })?;
        let mut last = Vec::new();
        let located = self
            .read_sectors_from(lun, "NUM_DISK_SECTORS-1.", 1, &mut last)
            .and_then(|()| {
                GptHeader::parse(&last, sector_size, Which::Backup).map_err(|e| {
                    FirehoseError::Gpt {
                        lun,
                        detail: e.to_string(),
                    }
                })
            });
        let header = match located {
            Ok(header) => header,
            Err(FirehoseError::Gpt { detail, .. })
            | Err(FirehoseError::Nak { reason: detail, .. }) => {
                return Err(FirehoseError::Gpt {
                    lun,
                    detail: format!(
                        "LUN size unknown ({size_unknown}) and the sector at NUM_DISK_SECTORS-1 \
                         gave no backup header: {detail}"
                    ),
                })
            }
            Err(other) => return Err(other),
        };
        self.read_backup_gpt(lun, header.my_lba.saturating_add(1))
    }

    fn read_gpt_copy(
        &mut self,
        lun: u32,
        header_lba: u64,
        which: Which,
    ) -> Result<(GptHeader, Vec<Partition>), FirehoseError> {
        let sector = self.sector_size;
        let sector_size = u32::try_from(sector)
            .map_err(|_| FirehoseError::InvalidRequest(format!("sector size {sector}")))?;
        let mut link_error = None;
        let result = Gpt::read_copy(
            &mut |offset: u64, buf: &mut [u8]| {
                let first = offset / sector as u64;
                let count = (buf.len() as u64).div_ceil(sector as u64);
                match self.read_to_vec(lun, first, count) {
                    Ok(data) => {
                        let skip = (offset % sector as u64) as usize;
                        match data.get(skip..skip + buf.len()) {
                            Some(src) => {
                                buf.copy_from_slice(src);
                                Ok(())
                            }
                            None => Err(std::io::Error::other("short read")),
                        }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        link_error = Some(e);
                        Err(std::io::Error::other(text))
                    }
                }
            },
            sector_size,
            header_lba,
            which,
        );
        match (result, link_error) {
            (Ok(table), _) => Ok(table),
            (Err(_), Some(e)) => Err(e),
            (Err(e), None) => Err(FirehoseError::Gpt {
                lun,
                detail: e.to_string(),
            }),
        }
    }

    /// Find `label` in the GPTs of `luns`, in order (each LUN's primary table, or its backup
    /// when the primary is damaged). LUNs the programmer refuses (not present) are skipped,
    /// LUNs with no valid copy are named in the error; a link failure stops the search.
    pub fn find_partition(
        &mut self,
        label: &str,
        luns: impl IntoIterator<Item = u32>,
    ) -> Result<PartitionLocation, FirehoseError> {
        self.find_partitions(&[label], luns)?.require(label)
    }

    /// Find every one of `labels` that the GPTs of `luns` hold, reading each LUN's table once
    /// and no further LUN once all are found; the first LUN holding a label wins, as in
    /// [`Self::find_partition`]. Labels found nowhere are simply absent from the answer.
    pub fn find_partitions(
        &mut self,
        labels: &[&str],
        luns: impl IntoIterator<Item = u32>,
    ) -> Result<FoundPartitions, FirehoseError> {
        let mut found = FoundPartitions::default();
        for lun in luns {
            if labels.iter().all(|l| found.get(l).is_some()) {
                break;
            }
            match self.read_lun_gpt(lun) {
                Ok(table) => {
                    found.searched.push(lun.to_string());
                    for p in table.partitions {
                        if labels.contains(&p.name.as_str()) && found.get(&p.name).is_none() {
                            found.partitions.push(PartitionLocation {
                                lun,
                                sector_size: self.sector_size,
                                partition: p,
                                primary_gpt_damage: table.primary_damage.clone(),
                            });
                        }
                    }
                }
                Err(FirehoseError::Nak { .. }) => {}
                Err(FirehoseError::Gpt { detail, .. }) => {
                    found.searched.push(format!("{lun} ({detail})"));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(found)
    }

    /// The LUNs to search: as many as `<getstorageinfo>` reports, else [`DEFAULT_LUNS`].
    pub fn lun_count(&mut self) -> u32 {
        match self.storage_info(0) {
            Ok(info) => info
                .num_physical
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=32).contains(n))
                .unwrap_or(DEFAULT_LUNS.end),
            Err(_) => DEFAULT_LUNS.end,
        }
    }
}
