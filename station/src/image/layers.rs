//! The `super` layer: LP metadata read from the start of the source, one logical partition
//! chosen by name for a metadata slot, and its bytes read through its extents — never a byte
//! outside them, whatever a filesystem above asks for.

use std::io;

use protocols::lp::{self, ExtentTarget, ImageLayout, Metadata};

use super::FindError;
use crate::read_at::ReadAt;

/// A logical partition found in LP metadata: what [`LogicalPartition`] reads through.
#[derive(Debug, Clone)]
pub struct ResolvedPartition {
    metadata: Metadata,
    index: usize,
    /// The name as the metadata has it (`system_a`).
    pub name: String,
    /// Bytes: the sum of its extents.
    pub size: u64,
}

/// The LP metadata of a `super` image or partition for metadata slot `slot` (0 is `_a`), or of
/// a `super_empty.img` (one copy). The geometry is looked for first where a `super` keeps it,
/// so a phone's partition costs no extra request.
pub fn read_super_metadata<S: ReadAt + ?Sized>(
    source: &mut S,
    slot: u32,
    partition: &str,
) -> Result<(ImageLayout, Metadata), FindError> {
    let mut read = |offset: u64, buf: &mut [u8]| source.read_exact_at(offset, buf);
    match lp::read_geometry(&mut read) {
        Ok(geometry) => lp::read_metadata(&mut read, &geometry, slot)
            .map(|metadata| (ImageLayout::Super, metadata))
            .map_err(|e| FindError::from_lp(e, partition)),
        Err(error) => {
            let not_super = FindError::from_lp(error, partition);
            if !matches!(not_super, FindError::NotSuper { .. }) {
                return Err(not_super);
            }
            match ImageLayout::detect(&mut read).map_err(|e| FindError::from_lp(e, partition))? {
                ImageLayout::SuperEmpty => lp::read_super_empty(&mut read)
                    .map(|metadata| (ImageLayout::SuperEmpty, metadata))
                    .map_err(|e| FindError::from_lp(e, partition)),
                ImageLayout::Super => Err(not_super),
            }
        }
    }
}

/// Finds logical partition `name` (as given, else with slot `slot`'s suffix: `system` in slot
/// 1 is `system_b`) and checks that it can be read from this source alone.
pub fn resolve_partition<S: ReadAt + ?Sized>(
    source: &mut S,
    name: &str,
    slot: u32,
) -> Result<ResolvedPartition, FindError> {
    let (layout, metadata) = read_super_metadata(source, slot, name)?;
    let wanted = metadata
        .partition_for_slot(name, slot)
        .map(|p| p.name.clone());
    let Some(index) = metadata
        .partitions
        .iter()
        .position(|p| Some(&p.name) == wanted.as_ref())
    else {
        return Err(FindError::NoSuchPartition {
            name: name.to_string(),
            slot,
            available: metadata.partitions.iter().map(|p| p.name.clone()).collect(),
        });
    };
    ResolvedPartition::new(metadata, index, layout)
}

impl ResolvedPartition {
    /// Partition `index` of `metadata`, if its bytes are in the source the metadata was read
    /// from.
    pub fn new(
        metadata: Metadata,
        index: usize,
        layout: ImageLayout,
    ) -> Result<ResolvedPartition, FindError> {
        let Some(partition) = metadata.partitions.get(index) else {
            return Err(FindError::NoSuchPartition {
                name: format!("#{index}"),
                slot: 0,
                available: metadata.partitions.iter().map(|p| p.name.clone()).collect(),
            });
        };
        let found = partition.name.clone();
        if layout == ImageLayout::SuperEmpty {
            return Err(FindError::SuperEmpty { partition: found });
        }
        // A retrofit phone keeps `_b` partitions on other block devices: the source is the
        // super partition only, so such bytes are not reachable through it.
        let elsewhere =
            metadata
                .partition_extents(partition)
                .iter()
                .find_map(|extent| match extent.target {
                    ExtentTarget::Linear { block_device, .. } if block_device != 0 => {
                        Some(block_device)
                    }
                    _ => None,
                });
        if let Some(device) = elsewhere {
            let device_name = metadata
                .block_devices
                .get(device as usize)
                .map_or("?", |d| d.partition_name.as_str());
            return Err(FindError::PartitionUnreadable {
                name: found,
                detail: format!(
                    "it lies partly on block device {device} (`{device_name}`, a retrofit \
                     layout), not inside super; read that partition directly"
                ),
            });
        }
        let size = metadata.partition_size(partition);
        Ok(ResolvedPartition {
            metadata,
            index,
            name: found,
            size,
        })
    }
}

/// A read that a filesystem asked of its logical partition past the partition's end. Carried
/// inside the `io::Error` so the finder can tell this lie of the image from a failing source.
#[derive(Debug, thiserror::Error)]
#[error("{len} bytes at byte {offset} of logical partition {name} lie past its end ({size} bytes)")]
pub struct OutsidePartition {
    pub name: String,
    pub offset: u64,
    pub len: u64,
    pub size: u64,
}

/// One logical partition's bytes, read through its extents from the super source.
#[derive(Debug)]
pub struct LogicalPartition<S> {
    inner: S,
    partition: ResolvedPartition,
}

impl<S> LogicalPartition<S> {
    pub fn new(inner: S, partition: ResolvedPartition) -> Self {
        Self { inner, partition }
    }

    pub fn name(&self) -> &str {
        &self.partition.name
    }

    pub fn size(&self) -> u64 {
        self.partition.size
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: ReadAt> ReadAt for LogicalPartition<S> {
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let len = buf.len() as u64;
        let size = self.partition.size;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                OutsidePartition {
                    name: self.partition.name.clone(),
                    offset,
                    len,
                    size,
                },
            ));
        }
        let metadata = &self.partition.metadata;
        let partition = &metadata.partitions[self.partition.index];
        let inner = &mut self.inner;
        let mut read = |at: u64, piece: &mut [u8]| inner.read_exact_at(at, piece);
        metadata
            .read_partition_at(partition, &mut read, offset, buf)
            .map_err(|error| match error {
                lp::LpError::Io { source, .. } => source,
                // Checked above (range, block device): kept as an error, never a panic.
                other => io::Error::new(io::ErrorKind::InvalidData, other),
            })
    }
}
