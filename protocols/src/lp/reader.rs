//! Reading geometry and metadata through a positioned reader, with liblp's fallbacks: the
//! backup geometry when the primary is damaged, a slot's backup copy when its primary is.
//! Only the bytes needed are read (4096 of geometry, the header, then `tables_size` bytes),
//! so a phone read back through Firehose or fastboot sends a few KiB.

use super::{
    backup_geometry_offset, backup_metadata_offset, primary_geometry_offset,
    primary_metadata_offset, Geometry, ImageLayout, LpError, Metadata, MetadataHeader, ReadAt,
    Which, GEOMETRY_SIZE, HEADER_SIZE_V1_0,
};

fn read<R: ReadAt + ?Sized>(
    read_at: &mut R,
    what: &'static str,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), LpError> {
    read_at
        .read_exact_at(offset, buf)
        .map_err(|source| LpError::Io {
            what,
            offset,
            source,
        })
}

fn read_geometry_at<R: ReadAt + ?Sized>(
    read_at: &mut R,
    offset: u64,
    which: Which,
) -> Result<Geometry, LpError> {
    let mut block = vec![0u8; GEOMETRY_SIZE as usize];
    read(read_at, "LP geometry", offset, &mut block)?;
    Geometry::parse(&block, which)
}

/// The geometry of a super partition: the primary copy, or the backup when the primary is
/// damaged (liblp's `ReadLogicalPartitionGeometry`).
pub fn read_geometry<R: ReadAt + ?Sized>(read_at: &mut R) -> Result<Geometry, LpError> {
    match read_geometry_at(read_at, primary_geometry_offset(), Which::Primary) {
        Ok(g) => Ok(g),
        Err(primary) => {
            read_geometry_at(read_at, backup_geometry_offset(), Which::Backup).map_err(|backup| {
                LpError::GeometryBothInvalid {
                    primary: Box::new(primary),
                    backup: Box::new(backup),
                }
            })
        }
    }
}

/// One metadata copy at `offset`: the header first, then exactly the tables it declares
/// (bounded by the slot size before anything is allocated).
pub fn read_metadata_copy<R: ReadAt + ?Sized>(
    read_at: &mut R,
    geometry: &Geometry,
    offset: u64,
    which: Which,
) -> Result<Metadata, LpError> {
    let mut header_bytes = vec![0u8; HEADER_SIZE_V1_0 as usize];
    read(read_at, "LP metadata header", offset, &mut header_bytes)?;
    let full = MetadataHeader::bytes_needed(&header_bytes);
    if full > header_bytes.len() {
        let start = header_bytes.len();
        header_bytes.resize(full, 0);
        read(
            read_at,
            "LP metadata header",
            offset + start as u64,
            &mut header_bytes[start..],
        )?;
    }
    let header = MetadataHeader::parse(&header_bytes, which)?;
    let size = u64::from(header.header_size) + u64::from(header.tables_size);
    let max = u64::from(geometry.metadata_max_size);
    if size > max {
        return Err(LpError::TablesTooLarge { which, size, max });
    }
    let mut tables = vec![0u8; header.tables_size as usize];
    read(
        read_at,
        "LP metadata tables",
        offset + u64::from(header.header_size),
        &mut tables,
    )?;
    Metadata::parse_tables(geometry, &header, &tables, which)
}

/// Metadata slot `slot` of a super partition (0 is `_a`, 1 is `_b`): its primary copy, or
/// its backup when the primary is damaged. As liblp's `ReadMetadata` does, names marked
/// slot-suffixed (retrofit images) get the slot's suffix.
pub fn read_metadata<R: ReadAt + ?Sized>(
    read_at: &mut R,
    geometry: &Geometry,
    slot: u32,
) -> Result<Metadata, LpError> {
    if slot >= geometry.metadata_slot_count {
        return Err(LpError::SlotOutOfRange {
            slot,
            slot_count: geometry.metadata_slot_count,
        });
    }
    let primary_at = primary_metadata_offset(geometry, slot);
    let mut metadata = match read_metadata_copy(read_at, geometry, primary_at, Which::Primary) {
        Ok(m) => m,
        Err(primary) => {
            let backup_at = backup_metadata_offset(geometry, slot);
            read_metadata_copy(read_at, geometry, backup_at, Which::Backup).map_err(|backup| {
                LpError::MetadataBothInvalid {
                    slot,
                    primary: Box::new(primary),
                    backup: Box::new(backup),
                }
            })?
        }
    };
    metadata.apply_slot_suffixes(slot)?;
    Ok(metadata)
}

/// A `super_empty.img`: geometry at offset 0, one metadata copy at 4096 (see
/// [`ImageLayout`]). Names are returned as stored, as fastboot's `ReadFromImageFile` does.
pub fn read_super_empty<R: ReadAt + ?Sized>(read_at: &mut R) -> Result<Metadata, LpError> {
    let geometry = read_geometry_at(read_at, 0, Which::Only)?;
    read_metadata_copy(read_at, &geometry, GEOMETRY_SIZE, Which::Only)
}

/// Either kind of image, told apart by [`ImageLayout::detect`]; `slot` picks the metadata
/// slot of a super partition (a `super_empty.img` has one copy).
pub fn read_image<R: ReadAt + ?Sized>(
    read_at: &mut R,
    slot: u32,
) -> Result<(ImageLayout, Metadata), LpError> {
    let layout = ImageLayout::detect(read_at)?;
    let metadata = match layout {
        ImageLayout::SuperEmpty => read_super_empty(read_at)?,
        ImageLayout::Super => {
            let geometry = read_geometry(read_at)?;
            read_metadata(read_at, &geometry, slot)?
        }
    };
    Ok((layout, metadata))
}
