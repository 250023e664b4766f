//! Writing metadata: `super_empty.img`, a whole `super.img` streamed from partition images,
//! and the writes that update a super partition in place (as fastbootd's `update-super` and
//! partition commands do through liblp's `FlashPartitionTable` / `UpdatePartitionTable`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use super::{
    backup_geometry_offset, backup_metadata_offset, primary_geometry_offset,
    primary_metadata_offset, ExtentTarget, LpError, Metadata, PARTITION_RESERVED_BYTES,
    SECTOR_SIZE,
};

/// `super_empty.img`: the geometry block then one metadata copy (see
/// [`super::ImageLayout`]), as `lpmake` writes it when given no images.
pub fn super_empty_image(metadata: &Metadata) -> Result<Vec<u8>, LpError> {
    let mut image = metadata.geometry.encode();
    image.extend_from_slice(&metadata.encode()?);
    Ok(image)
}

/// Bytes to write at an offset of the super partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionWrite {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The metadata blob, refused if it would spill into the partitions' area.
fn checked_blob(metadata: &Metadata, last_offset: u64) -> Result<Vec<u8>, LpError> {
    let blob = metadata.encode()?;
    let data_start = metadata
        .super_device()
        .map(|d| d.first_logical_sector * SECTOR_SIZE)
        .unwrap_or(0);
    if last_offset + blob.len() as u64 > data_start {
        return Err(LpError::Build(format!(
            "metadata written at byte {last_offset} would overlap partition data from byte {data_start}"
        )));
    }
    Ok(blob)
}

/// Rewrite slot `slot` of a super partition whose geometry is unchanged: its primary copy,
/// then its backup (in that order, so a cut leaves one valid copy).
pub fn slot_update_writes(metadata: &Metadata, slot: u32) -> Result<Vec<RegionWrite>, LpError> {
    let g = &metadata.geometry;
    if slot >= g.metadata_slot_count {
        return Err(LpError::SlotOutOfRange {
            slot,
            slot_count: g.metadata_slot_count,
        });
    }
    let blob = checked_blob(metadata, backup_metadata_offset(g, slot))?;
    Ok(vec![
        RegionWrite {
            offset: primary_metadata_offset(g, slot),
            bytes: blob.clone(),
        },
        RegionWrite {
            offset: backup_metadata_offset(g, slot),
            bytes: blob,
        },
    ])
}

/// Write a fresh table to a super partition: zeros over the reserved bytes, both geometry
/// copies, and the metadata in every slot (primary and backup). Partition data is untouched.
pub fn flash_table_writes(metadata: &Metadata) -> Result<Vec<RegionWrite>, LpError> {
    let g = &metadata.geometry;
    let last = backup_metadata_offset(g, g.metadata_slot_count - 1);
    let blob = checked_blob(metadata, last)?;
    let geometry = g.encode();
    let mut writes = vec![
        RegionWrite {
            offset: 0,
            bytes: vec![0; PARTITION_RESERVED_BYTES as usize],
        },
        RegionWrite {
            offset: primary_geometry_offset(),
            bytes: geometry.clone(),
        },
        RegionWrite {
            offset: backup_geometry_offset(),
            bytes: geometry,
        },
    ];
    for slot in 0..g.metadata_slot_count {
        for offset in [
            primary_metadata_offset(g, slot),
            backup_metadata_offset(g, slot),
        ] {
            writes.push(RegionWrite {
                offset,
                bytes: blob.clone(),
            });
        }
    }
    Ok(writes)
}

/// Where a piece of a `super.img` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanData {
    /// Geometry or metadata bytes (shared between their copies).
    Bytes(Arc<[u8]>),
    /// `len` bytes of image number `image` (its index in the images given) from `offset`.
    Image { image: usize, offset: u64 },
}

/// `len` bytes at `offset` of the super image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPiece {
    pub offset: u64,
    pub len: u64,
    pub data: PlanData,
}

/// What a `super.img` holds, without holding it: metadata pieces first, then each image's
/// pieces in the order its bytes are read. Bytes in no piece are zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperImagePlan {
    /// Bytes of the whole image (the super block device's size).
    pub device_size: u64,
    pub pieces: Vec<PlanPiece>,
}

impl SuperImagePlan {
    /// Plan a `super.img` as `lpmake --image` makes it: every slot holds `metadata`, and each
    /// `(partition name, image length)` is laid over that partition's extents from its start.
    pub fn new(metadata: &Metadata, images: &[(&str, u64)]) -> Result<SuperImagePlan, LpError> {
        let g = &metadata.geometry;
        if metadata.block_devices.len() != 1 {
            return Err(LpError::Build(format!(
                "a single super.img needs one block device, the metadata has {} (retrofit)",
                metadata.block_devices.len()
            )));
        }
        let device_size = metadata.block_devices[0].size;
        let last = backup_metadata_offset(g, g.metadata_slot_count - 1);
        let mut blob = checked_blob(metadata, last)?;
        blob.resize(g.metadata_max_size as usize, 0);
        let blob: Arc<[u8]> = blob.into();
        let geometry: Arc<[u8]> = g.encode().into();
        let bytes = |offset: u64, data: &Arc<[u8]>| PlanPiece {
            offset,
            len: data.len() as u64,
            data: PlanData::Bytes(data.clone()),
        };
        let mut pieces = vec![
            bytes(primary_geometry_offset(), &geometry),
            bytes(backup_geometry_offset(), &geometry),
        ];
        for slot in 0..g.metadata_slot_count {
            pieces.push(bytes(primary_metadata_offset(g, slot), &blob));
        }
        for slot in 0..g.metadata_slot_count {
            pieces.push(bytes(backup_metadata_offset(g, slot), &blob));
        }
        for (image, &(name, len)) in images.iter().enumerate() {
            if images[..image].iter().any(|(other, _)| *other == name) {
                return Err(LpError::Build(format!("two images given for {name:?}")));
            }
            pieces.extend(Self::image_pieces(metadata, image, name, len)?);
        }
        Ok(SuperImagePlan {
            device_size,
            pieces,
        })
    }

    fn image_pieces(
        metadata: &Metadata,
        image: usize,
        name: &str,
        len: u64,
    ) -> Result<Vec<PlanPiece>, LpError> {
        let partition = metadata
            .partition(name)
            .ok_or_else(|| LpError::ImageWithoutPartition {
                partition: name.to_string(),
            })?;
        let size = metadata.partition_size(partition);
        if len > size {
            return Err(LpError::ImageTooLarge {
                partition: name.to_string(),
                len,
                size,
            });
        }
        let mut pieces = Vec::new();
        let mut done = 0u64;
        for extent in metadata.partition_extents(partition) {
            if done == len {
                break;
            }
            let take = extent.len_bytes().min(len - done);
            let ExtentTarget::Linear { sector, .. } = extent.target else {
                return Err(LpError::Build(format!(
                    "partition {name:?} has a ZERO extent: an image cannot be written into it"
                )));
            };
            pieces.push(PlanPiece {
                offset: sector * SECTOR_SIZE,
                len: take,
                data: PlanData::Image {
                    image,
                    offset: done,
                },
            });
            done += take;
        }
        Ok(pieces)
    }

    /// The pieces in the order they lie in the image (for a sparse writer).
    pub fn pieces_by_offset(&self) -> Vec<&PlanPiece> {
        let mut sorted: Vec<&PlanPiece> = self.pieces.iter().collect();
        sorted.sort_by_key(|p| p.offset);
        sorted
    }
}

/// A partition image to put into a `super.img`: `len` bytes read from `reader`.
pub struct PartitionImage<'a> {
    pub partition: &'a str,
    pub len: u64,
    pub reader: &'a mut dyn Read,
}

/// Write a whole `super.img` into `out` (expected to be empty: zero ranges are skipped, only
/// the length is set), streaming each image through a 1 MiB buffer. Returns its size.
pub fn write_super_image<W: Write + Seek>(
    metadata: &Metadata,
    images: &mut [PartitionImage<'_>],
    out: &mut W,
) -> Result<u64, LpError> {
    let list: Vec<(&str, u64)> = images.iter().map(|i| (i.partition, i.len)).collect();
    let plan = SuperImagePlan::new(metadata, &list)?;
    let write_error = |what: String| move |source| LpError::Write { what, source };
    let mut buf = vec![0u8; 1 << 20];
    let mut end = 0u64;
    for piece in &plan.pieces {
        out.seek(SeekFrom::Start(piece.offset))
            .map_err(write_error(format!("super image at byte {}", piece.offset)))?;
        end = end.max(piece.offset + piece.len);
        match &piece.data {
            PlanData::Bytes(bytes) => out
                .write_all(bytes)
                .map_err(write_error(format!("LP metadata at byte {}", piece.offset)))?,
            PlanData::Image { image, offset } => {
                let image = &mut images[*image];
                let mut left = piece.len;
                while left > 0 {
                    let chunk = &mut buf[..left.min(1 << 20) as usize];
                    image
                        .reader
                        .read_exact(chunk)
                        .map_err(|_| LpError::ImageShort {
                            partition: image.partition.to_string(),
                            read: offset + (piece.len - left),
                            len: image.len,
                        })?;
                    out.write_all(chunk).map_err(write_error(format!(
                        "partition {} into the super image",
                        image.partition
                    )))?;
                    left -= chunk.len() as u64;
                }
            }
        }
    }
    if end < plan.device_size {
        let last = plan.device_size - 1;
        out.seek(SeekFrom::Start(last))
            .and_then(|_| out.write_all(&[0]))
            .map_err(write_error("the super image's last byte".to_string()))?;
    }
    out.flush()
        .map_err(write_error("the super image".to_string()))?;
    Ok(plan.device_size)
}
