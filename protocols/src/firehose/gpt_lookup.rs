//! Partitions by label: read the primary GPT of a LUN through `<read>` and find a label, so the
//! station can read back or digest `system_a` without knowing sectors. The table codec is
//! [`crate::gpt`]; only the sectors the header points at are read.

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

impl<T: Transport> Firehose<T> {
    /// The primary GPT (header at LBA 1) of `lun`, validated (signature, CRCs, bounds).
    pub fn read_primary_gpt(
        &mut self,
        lun: u32,
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
            1,
            Which::Primary,
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

    /// Find `label` in the GPTs of `luns`, in order. LUNs the programmer refuses (not present)
    /// or without a valid GPT are skipped; a link failure stops the search.
    pub fn find_partition(
        &mut self,
        label: &str,
        luns: impl IntoIterator<Item = u32>,
    ) -> Result<PartitionLocation, FirehoseError> {
        let mut searched = Vec::new();
        for lun in luns {
            match self.read_primary_gpt(lun) {
                Ok((_, partitions)) => {
                    searched.push(lun.to_string());
                    if let Some(p) = partitions.into_iter().find(|p| p.name == label) {
                        return Ok(PartitionLocation {
                            lun,
                            sector_size: self.sector_size,
                            partition: p,
                        });
                    }
                }
                Err(FirehoseError::Nak { .. }) => {}
                Err(FirehoseError::Gpt { detail, .. }) => {
                    searched.push(format!("{lun} (no valid GPT: {detail})"));
                }
                Err(other) => return Err(other),
            }
        }
        Err(FirehoseError::PartitionNotFound {
            label: label.to_owned(),
            searched: if searched.is_empty() {
                "(none answered)".to_owned()
            } else {
                searched.join(", ")
            },
        })
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

/// Random access to one partition through `<read>`, for readers that need only some blocks
/// (an ext4 reader looking for one file). Reads whole sectors and counts the bytes that
/// crossed the link, so a verifier can report how little it read.
pub struct PartitionReader<'a, T: Transport> {
    firehose: &'a mut Firehose<T>,
    location: PartitionLocation,
    bytes_read: u64,
}

impl<'a, T: Transport> PartitionReader<'a, T> {
    pub fn new(firehose: &'a mut Firehose<T>, location: PartitionLocation) -> Self {
        PartitionReader {
            firehose,
            location,
            bytes_read: 0,
        }
    }

    pub fn location(&self) -> &PartitionLocation {
        &self.location
    }

    /// Bytes read from the device so far (whole sectors).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Fill `buf` from byte `offset` of the partition.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FirehoseError> {
        if buf.is_empty() {
            return Ok(());
        }
        let size = self.location.size_bytes();
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|end| *end <= size)
            .ok_or_else(|| {
                FirehoseError::InvalidRequest(format!(
                    "{} bytes at offset {offset} run past the end of {} ({size} bytes)",
                    buf.len(),
                    self.location.partition.name
                ))
            })?;
        let sector = self.location.sector_size as u64;
        let first = offset / sector;
        let last = (end - 1) / sector;
        let data = self.firehose.read_to_vec(
            self.location.lun,
            self.location.first_sector() + first,
            last - first + 1,
        )?;
        self.bytes_read += data.len() as u64;
        let skip = (offset - first * sector) as usize;
        let src = data.get(skip..skip + buf.len()).ok_or_else(|| {
            FirehoseError::InvalidRequest("device returned fewer bytes than asked".to_owned())
        })?;
        buf.copy_from_slice(src);
        Ok(())
    }
}
