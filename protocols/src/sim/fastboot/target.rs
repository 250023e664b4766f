//! Where `flash:` and `erase:` write: a physical partition of the GPT, or — in fastbootd — a
//! logical partition inside `super`, through the extents of the current slot's metadata (as
//! fastbootd maps it with device-mapper before writing).

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::phone_memory::PhoneMemory;
use super::staging::Staging;
use super::IO_CHUNK;
use crate::lp::{MappedRange, Metadata};
use crate::sim::dynamic::SUPER;
use crate::sim::phone::Phone;
use crate::sim::storage::{seek_within, PartitionInfo, Storage};
use crate::sparse::{self, FILE_HEADER_LEN};

/// A partition to write.
pub(super) enum Target {
    Physical(PartitionInfo),
    /// Partition number `index` of `metadata` (the current slot's).
    Logical {
        metadata: Metadata,
        index: usize,
    },
}

impl Target {
    pub(super) fn name(&self) -> &str {
        match self {
            Target::Physical(p) => &p.name,
            Target::Logical { metadata, index } => &metadata.partitions[*index].name,
        }
    }

    pub(super) fn size(&self) -> u64 {
        match self {
            Target::Physical(p) => p.size_bytes,
            Target::Logical { metadata, index } => {
                metadata.partition_size(&metadata.partitions[*index])
            }
        }
    }

    /// Where the partition's bytes `offset..offset + len` are in physical partitions.
    fn pieces(&self, offset: u64, len: u64) -> Result<Vec<(&str, u64, u64)>, String> {
        match self {
            Target::Physical(p) => Ok(vec![(p.name.as_str(), offset, len)]),
            Target::Logical { metadata, index } => {
                let partition = &metadata.partitions[*index];
                let mapped = metadata
                    .map_range(partition, offset, len)
                    .map_err(|e| e.to_string())?;
                mapped
                    .into_iter()
                    .filter_map(|piece| match piece {
                        MappedRange::Device {
                            block_device: 0,
                            offset,
                            len,
                        } => Some(Ok((SUPER, offset, len))),
                        // dm-zero drops what is written to it.
                        MappedRange::Zero { .. } => None,
                        MappedRange::Device { block_device, .. } => Some(Err(format!(
                            "{} has an extent on block device {block_device}, which this \
                             phone does not have",
                            partition.name
                        ))),
                    })
                    .collect()
            }
        }
    }

    fn write_at(&self, storage: &mut Storage, offset: u64, data: &[u8]) -> Result<(), String> {
        let mut at = 0usize;
        for (name, physical_offset, len) in self.pieces(offset, data.len() as u64)? {
            // Pieces add up to data.len().
            let piece = &data[at..at + len as usize];
            storage
                .write_partition(name, physical_offset, piece)
                .map_err(|e| format!("Writing {} failed: {e}", self.name()))?;
            at += piece.len();
        }
        Ok(())
    }

    /// Erase the whole partition (a discard reads back as zeros).
    pub(super) fn discard(&self, storage: &mut Storage) -> Result<(), String> {
        for (name, offset, len) in self.pieces(0, self.size())? {
            storage
                .discard_partition(name, offset, len)
                .map_err(|e| format!("Erase of {} failed: {e}", self.name()))?;
        }
        Ok(())
    }
}

/// A partition as a `Write + Seek` target, so the shared sparse expander can write into it.
/// Each write takes the phone's lock for that write only.
struct TargetWriter<'a> {
    phone: &'a Phone,
    target: &'a Target,
    size: u64,
    pos: u64,
    /// Bytes still to be written before the phone drops off (`None`: no cut armed).
    budget: Option<u64>,
}

/// What a [`TargetWriter`] returns once its budget is spent: the phone has dropped off.
const CUT: &str = "the phone dropped off the bus mid-write";

impl Write for TargetWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let data = match self.budget {
            Some(0) => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, CUT)),
            Some(left) => &data[..data.len().min(usize::try_from(left).unwrap_or(usize::MAX))],
            None => data,
        };
        let end = self.pos.checked_add(data.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "write past the end of {} ({} bytes)",
                    self.target.name(),
                    self.size
                ),
            ));
        }
        self.target
            .write_at(&mut self.phone.lock().storage, self.pos, data)
            .map_err(io::Error::other)?;
        self.pos += data.len() as u64;
        if let Some(left) = &mut self.budget {
            *left -= data.len() as u64;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for TargetWriter<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_within(self.pos, self.size, to)?;
        Ok(self.pos)
    }
}

/// Write a staged image into a partition: sparse images are expanded (RAW copied, FILL
/// written, DONT_CARE left as it is, so each piece of a split image keeps the others' data);
/// anything else is written raw from the partition's start.
pub(super) fn write_image(phone: &Phone, staging: &Staging, target: &Target) -> Result<(), String> {
    write_image_until(phone, staging, target, None)
}

/// Bytes [`write_image`] writes for the staged image: a raw image's length, a sparse image's
/// RAW and FILL data.
pub(super) fn data_bytes(staging: &Staging) -> Result<u64, String> {
    let staged = |e: io::Error| format!("reading the download buffer: {e}");
    let mut head = [0u8; FILE_HEADER_LEN];
    let n = staging.head(&mut head).map_err(staged)?;
    if !sparse::is_sparse(&head[..n]) {
        return Ok(staging.len());
    }
    let mut reader = sparse::SparseReader::new(staging.reader().map_err(staged)?)
        .map_err(|e| format!("Invalid sparse image: {e}"))?;
    let block = reader.header().blk_sz;
    let mut total = 0u64;
    while let Some(chunk) = reader
        .next_chunk()
        .map_err(|e| format!("Invalid sparse image: {e}"))?
    {
        if matches!(
            chunk.kind,
            sparse::ChunkKind::Raw { .. } | sparse::ChunkKind::Fill { .. }
        ) {
            total = total.saturating_add(chunk.expanded_len(block));
        }
    }
    Ok(total)
}

/// [`write_image`] that stops once `budget` bytes are written (`None`: no limit); `Ok` either
/// way, the partition then holds what was written before the stop.
pub(super) fn write_image_until(
    phone: &Phone,
    staging: &Staging,
    target: &Target,
    budget: Option<u64>,
) -> Result<(), String> {
    let staged = |e: io::Error| format!("reading the download buffer: {e}");
    let name = target.name();
    let size = target.size();
    let mut head = [0u8; FILE_HEADER_LEN];
    let n = staging.head(&mut head).map_err(staged)?;
    if sparse::is_sparse(&head[..n]) {
        let header = sparse::SparseHeader::parse(&head[..n])
            .map_err(|e| format!("Invalid sparse image: {e}"))?;
        if header.expanded_len() > size {
            return Err(format!(
                "Sparse image size span overflow: {} bytes expanded, {name} holds {size}",
                header.expanded_len(),
            ));
        }
        let mut writer = TargetWriter {
            phone,
            target,
            size,
            pos: 0,
            budget,
        };
        let expanded = sparse::expand(staging.reader().map_err(staged)?, &mut writer);
        if writer.budget == Some(0) {
            return Ok(());
        }
        expanded
            .map(|_| ())
            .map_err(|e| format!("Flashing sparse image to {name} failed: {e}"))
    } else {
        if staging.len() > size {
            return Err(format!(
                "Image size {} exceeds partition size {size} of {name}",
                staging.len(),
            ));
        }
        let mut reader = staging.reader().map_err(staged)?;
        let mut buf = PhoneMemory::zeroed(IO_CHUNK);
        let mut pos = 0u64;
        let mut left = budget.unwrap_or(u64::MAX);
        loop {
            let n = reader.read(&mut buf).map_err(staged)?;
            let n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
            if n == 0 {
                return Ok(());
            }
            target.write_at(&mut phone.lock().storage, pos, &buf[..n])?;
            pos += n as u64;
            left -= n as u64;
        }
    }
}
