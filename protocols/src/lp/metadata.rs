//! One copy of the metadata: the header's four tables decoded into plain structs, every index
//! and range cross-checked, and encoded back the way liblp serializes it (partitions, extents,
//! groups, block devices, contiguous after the header).

use std::collections::HashMap;

use super::header::header_size_for;
use super::{
    attr, decode_name, encode_name, le_u32, le_u64, sha256, total_metadata_size, Geometry, LpError,
    MetadataHeader, TableDescriptor, Which, BLOCK_DEVICE_ENTRY_SIZE, EXTENT_ENTRY_SIZE,
    GROUP_ENTRY_SIZE, MINOR_VERSION_MAX, PARTITION_ENTRY_SIZE, SECTOR_SIZE, TARGET_TYPE_LINEAR,
    TARGET_TYPE_ZERO, VERSION_FOR_EXPANDED_HEADER, VERSION_FOR_UPDATED_ATTR,
};

/// A logical partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// [`attr`] bits.
    pub attributes: u32,
    /// Its extents are `extents[first_extent_index..first_extent_index + num_extents]`, in
    /// logical order; zero extents is a partition of size 0.
    pub first_extent_index: u32,
    pub num_extents: u32,
    pub group_index: u32,
}

impl Partition {
    pub fn is_readonly(&self) -> bool {
        self.attributes & attr::READONLY != 0
    }
    pub fn is_slot_suffixed(&self) -> bool {
        self.attributes & attr::SLOT_SUFFIXED != 0
    }
    pub fn is_updated(&self) -> bool {
        self.attributes & attr::UPDATED != 0
    }
    pub fn is_disabled(&self) -> bool {
        self.attributes & attr::DISABLED != 0
    }
}

/// Where an extent's sectors come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtentTarget {
    /// dm-linear: `sector` (512-byte units) on block device `block_device`.
    Linear { block_device: u32, sector: u64 },
    /// dm-zero: reads as zeros, takes no space.
    Zero,
}

/// A run of a partition's sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Length in 512-byte sectors.
    pub num_sectors: u64,
    pub target: ExtentTarget,
}

impl Extent {
    pub fn len_bytes(&self) -> u64 {
        self.num_sectors.saturating_mul(SECTOR_SIZE)
    }
}

/// An update group: its partitions together may not exceed `maximum_size` (0: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// `GROUP_SLOT_SUFFIXED`.
    pub flags: u32,
    pub maximum_size: u64,
}

/// A physical partition holding logical partitions; the first is the super partition
/// itself (several only on retrofit devices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// First sector extents may use (after the metadata on the super device).
    pub first_logical_sector: u64,
    pub alignment: u32,
    pub alignment_offset: u32,
    /// Bytes.
    pub size: u64,
    /// The partition's name in the GPT (`super`).
    pub partition_name: String,
    /// `BLOCK_DEVICE_SLOT_SUFFIXED`.
    pub flags: u32,
}

/// One metadata copy, as read from a slot or as built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub geometry: Geometry,
    /// 0, 1 (UPDATED/DISABLED attributes) or 2 (256-byte header with flags).
    pub minor_version: u16,
    /// Header flags (`header_flag::*`), 10.2 only.
    pub header_flags: u32,
    pub partitions: Vec<Partition>,
    pub extents: Vec<Extent>,
    pub groups: Vec<Group>,
    pub block_devices: Vec<BlockDevice>,
}

impl Metadata {
    /// Decode and check a metadata blob (header followed by its tables, as in a slot).
    pub fn parse(geometry: &Geometry, bytes: &[u8], which: Which) -> Result<Metadata, LpError> {
        let header = MetadataHeader::parse(bytes, which)?;
        let tables = bytes.get(header.header_size as usize..).unwrap_or(&[]);
        Metadata::parse_tables(geometry, &header, tables, which)
    }

    /// Decode and check the tables that follow a parsed header (`tables` holds at least
    /// `header.tables_size` bytes).
    pub fn parse_tables(
        geometry: &Geometry,
        header: &MetadataHeader,
        tables: &[u8],
        which: Which,
    ) -> Result<Metadata, LpError> {
        let size = u64::from(header.header_size) + u64::from(header.tables_size);
        let max = u64::from(geometry.metadata_max_size);
        if size > max {
            return Err(LpError::TablesTooLarge { which, size, max });
        }
        let need = header.tables_size as usize;
        let Some(tables) = tables.get(..need) else {
            return Err(LpError::TablesShort {
                which,
                len: tables.len(),
                need,
            });
        };
        if sha256(&[tables]) != header.tables_checksum {
            return Err(LpError::TablesChecksum { which });
        }
        let metadata = Metadata {
            geometry: *geometry,
            minor_version: header.minor_version,
            header_flags: header.flags,
            partitions: decode_table(tables, header.partitions, decode_partition)?,
            extents: decode_table(tables, header.extents, decode_extent)?,
            groups: decode_table(tables, header.groups, decode_group)?,
            block_devices: decode_table(tables, header.block_devices, decode_block_device)?,
        };
        metadata.validate(which)?;
        Ok(metadata)
    }

    /// Bytes of the encoded header and tables.
    pub fn encoded_len(&self) -> u64 {
        u64::from(header_size_for(self.minor_version))
            + self.partitions.len() as u64 * u64::from(PARTITION_ENTRY_SIZE)
            + self.extents.len() as u64 * u64::from(EXTENT_ENTRY_SIZE)
            + self.groups.len() as u64 * u64::from(GROUP_ENTRY_SIZE)
            + self.block_devices.len() as u64 * u64::from(BLOCK_DEVICE_ENTRY_SIZE)
    }

    /// Every cross-table rule: what `parse` accepts and `encode` writes.
    pub fn validate(&self, which: Which) -> Result<(), LpError> {
        self.geometry.validate(which)?;
        let minor = self.minor_version;
        if minor > MINOR_VERSION_MAX {
            return Err(LpError::HeaderVersion {
                which,
                major: super::MAJOR_VERSION,
                minor,
            });
        }
        if self.header_flags != 0 && minor < VERSION_FOR_EXPANDED_HEADER {
            return Err(LpError::HeaderFlags {
                which,
                flags: self.header_flags,
                minor,
            });
        }
        let size = self.encoded_len();
        let max = u64::from(self.geometry.metadata_max_size);
        if size > max {
            return Err(LpError::TablesTooLarge { which, size, max });
        }
        self.validate_block_devices()?;
        check_names("group", self.groups.iter().map(|g| g.name.as_str()))?;
        check_names("partition", self.partitions.iter().map(|p| p.name.as_str()))?;
        check_names(
            "block device",
            self.block_devices.iter().map(|d| d.partition_name.as_str()),
        )?;
        let allowed = if minor >= VERSION_FOR_UPDATED_ATTR {
            attr::MASK
        } else {
            attr::MASK_V0
        };
        for p in &self.partitions {
            if p.attributes & !allowed != 0 {
                return Err(LpError::PartitionAttributes {
                    name: p.name.clone(),
                    attributes: p.attributes,
                    minor,
                    allowed,
                });
            }
            let end = u64::from(p.first_extent_index) + u64::from(p.num_extents);
            if end > self.extents.len() as u64 {
                return Err(LpError::PartitionExtents {
                    name: p.name.clone(),
                    first: p.first_extent_index,
                    count: p.num_extents,
                    table_len: self.extents.len(),
                });
            }
            let extents = self.partition_extents(p);
            let size = extents.iter().try_fold(0u64, |sum, e| {
                e.num_sectors
                    .checked_mul(SECTOR_SIZE)
                    .and_then(|len| sum.checked_add(len))
            });
            if size.is_none() {
                return Err(LpError::PartitionTooLarge {
                    name: p.name.clone(),
                });
            }
            if p.group_index as usize >= self.groups.len() {
                return Err(LpError::PartitionGroup {
                    name: p.name.clone(),
                    group_index: p.group_index,
                    groups: self.groups.len(),
                });
            }
        }
        for (index, e) in self.extents.iter().enumerate() {
            self.validate_extent(index, e)?;
        }
        Ok(())
    }

    fn validate_block_devices(&self) -> Result<(), LpError> {
        if self.block_devices.is_empty() {
            return Err(LpError::NoSuperDevice);
        }
        let reserved = total_metadata_size(&self.geometry);
        for (index, d) in self.block_devices.iter().enumerate() {
            let bad = |reason: String| LpError::BlockDeviceLayout {
                index,
                name: d.partition_name.clone(),
                reason,
            };
            let first_byte = d.first_logical_sector.checked_mul(SECTOR_SIZE);
            let fits = first_byte
                .and_then(|b| b.checked_add(SECTOR_SIZE))
                .is_some_and(|end| end <= d.size);
            if !fits {
                return Err(bad(format!(
                    "first logical sector {} leaves no room in its {} bytes",
                    d.first_logical_sector, d.size
                )));
            }
            if index == 0 && first_byte.is_some_and(|b| b < reserved) {
                return Err(bad(format!(
                    "first logical sector {} overlaps the {reserved} bytes of geometry and metadata slots",
                    d.first_logical_sector
                )));
            }
        }
        Ok(())
    }

    fn validate_extent(&self, index: usize, e: &Extent) -> Result<(), LpError> {
        if e.num_sectors == 0 {
            return Err(LpError::ExtentEmpty { index });
        }
        let ExtentTarget::Linear {
            block_device,
            sector,
        } = e.target
        else {
            return Ok(());
        };
        let Some(device) = self.block_devices.get(block_device as usize) else {
            return Err(LpError::ExtentBlockDevice {
                index,
                device: block_device,
                devices: self.block_devices.len(),
            });
        };
        let end = device.size / SECTOR_SIZE;
        let inside = sector >= device.first_logical_sector
            && sector.checked_add(e.num_sectors).is_some_and(|x| x <= end);
        if !inside {
            return Err(LpError::ExtentOutsideDevice {
                index,
                device: block_device,
                start: sector,
                sectors: e.num_sectors,
                first: device.first_logical_sector,
                end,
            });
        }
        Ok(())
    }

    /// Encode header and tables (checked by [`Metadata::validate`] first).
    pub fn encode(&self) -> Result<Vec<u8>, LpError> {
        self.validate(Which::Only)?;
        let mut tables = Vec::with_capacity(self.encoded_len() as usize);
        // Each table's offset is where the bytes before it end; its length is checked
        // against metadata_max_size (≤ 1 MiB) by validate, so the u32 casts are exact.
        let descriptor = |tables: &Vec<u8>, count: usize, entry_size: u32| TableDescriptor {
            offset: (tables.len() - count * entry_size as usize) as u32,
            num_entries: count as u32,
            entry_size,
        };
        for (index, p) in self.partitions.iter().enumerate() {
            tables.extend_from_slice(&name_field("partition", index, &p.name)?);
            for v in [
                p.attributes,
                p.first_extent_index,
                p.num_extents,
                p.group_index,
            ] {
                tables.extend_from_slice(&v.to_le_bytes());
            }
        }
        let partitions = descriptor(&tables, self.partitions.len(), PARTITION_ENTRY_SIZE);
        for e in &self.extents {
            let (kind, data, source) = match e.target {
                ExtentTarget::Linear {
                    block_device,
                    sector,
                } => (TARGET_TYPE_LINEAR, sector, block_device),
                ExtentTarget::Zero => (TARGET_TYPE_ZERO, 0, 0),
            };
            tables.extend_from_slice(&e.num_sectors.to_le_bytes());
            tables.extend_from_slice(&kind.to_le_bytes());
            tables.extend_from_slice(&data.to_le_bytes());
            tables.extend_from_slice(&source.to_le_bytes());
        }
        let extents = descriptor(&tables, self.extents.len(), EXTENT_ENTRY_SIZE);
        for (index, g) in self.groups.iter().enumerate() {
            tables.extend_from_slice(&name_field("group", index, &g.name)?);
            tables.extend_from_slice(&g.flags.to_le_bytes());
            tables.extend_from_slice(&g.maximum_size.to_le_bytes());
        }
        let groups = descriptor(&tables, self.groups.len(), GROUP_ENTRY_SIZE);
        for (index, d) in self.block_devices.iter().enumerate() {
            tables.extend_from_slice(&d.first_logical_sector.to_le_bytes());
            tables.extend_from_slice(&d.alignment.to_le_bytes());
            tables.extend_from_slice(&d.alignment_offset.to_le_bytes());
            tables.extend_from_slice(&d.size.to_le_bytes());
            tables.extend_from_slice(&name_field("block device", index, &d.partition_name)?);
            tables.extend_from_slice(&d.flags.to_le_bytes());
        }
        let block_devices = descriptor(&tables, self.block_devices.len(), BLOCK_DEVICE_ENTRY_SIZE);
        let header = MetadataHeader {
            minor_version: self.minor_version,
            header_size: header_size_for(self.minor_version),
            header_checksum: [0; 32],
            tables_size: tables.len() as u32,
            tables_checksum: sha256(&[&tables]),
            partitions,
            extents,
            groups,
            block_devices,
            flags: self.header_flags,
        };
        let mut blob = header.encode();
        blob.extend_from_slice(&tables);
        Ok(blob)
    }
}

fn name_field(table: &'static str, index: usize, name: &str) -> Result<[u8; 36], LpError> {
    encode_name(name).map_err(|reason| LpError::Name {
        table,
        index,
        reason,
    })
}

fn check_names<'a>(
    table: &'static str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), LpError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, name) in names.enumerate() {
        name_field(table, index, name)?;
        // Block devices may repeat (nothing forbids it and nothing looks them up by name).
        if table == "block device" {
            continue;
        }
        if let Some(first) = seen.insert(name, index) {
            return Err(LpError::DuplicateName {
                table,
                name: name.to_string(),
                first,
                second: index,
            });
        }
    }
    Ok(())
}

/// Decode every entry of one table; `desc` was bounds-checked against the tables by
/// [`MetadataHeader::check_tables`], and `tables` is exactly `tables_size` bytes.
fn decode_table<T>(
    tables: &[u8],
    desc: TableDescriptor,
    decode: fn(&[u8], usize) -> Result<T, LpError>,
) -> Result<Vec<T>, LpError> {
    let bytes = tables.get(desc.byte_range()).unwrap_or(&[]);
    bytes
        .chunks_exact(desc.entry_size.max(1) as usize)
        .enumerate()
        .map(|(index, raw)| decode(raw, index))
        .collect()
}

fn name_at(table: &'static str, raw: &[u8], at: usize, index: usize) -> Result<String, LpError> {
    decode_name(raw.get(at..).unwrap_or(&[])).map_err(|reason| LpError::Name {
        table,
        index,
        reason,
    })
}

fn decode_partition(raw: &[u8], index: usize) -> Result<Partition, LpError> {
    Ok(Partition {
        name: name_at("partition", raw, 0, index)?,
        attributes: le_u32(raw, 36),
        first_extent_index: le_u32(raw, 40),
        num_extents: le_u32(raw, 44),
        group_index: le_u32(raw, 48),
    })
}

fn decode_extent(raw: &[u8], index: usize) -> Result<Extent, LpError> {
    let num_sectors = le_u64(raw, 0);
    let target_type = le_u32(raw, 8);
    let data = le_u64(raw, 12);
    let source = le_u32(raw, 20);
    let target = match target_type {
        TARGET_TYPE_LINEAR => ExtentTarget::Linear {
            block_device: source,
            sector: data,
        },
        TARGET_TYPE_ZERO if data == 0 && source == 0 => ExtentTarget::Zero,
        TARGET_TYPE_ZERO => {
            return Err(LpError::ExtentZeroFields {
                index,
                data,
                source_index: source,
            })
        }
        other => {
            return Err(LpError::ExtentTargetType {
                index,
                target_type: other,
            })
        }
    };
    Ok(Extent {
        num_sectors,
        target,
    })
}

fn decode_group(raw: &[u8], index: usize) -> Result<Group, LpError> {
    Ok(Group {
        name: name_at("group", raw, 0, index)?,
        flags: le_u32(raw, 36),
        maximum_size: le_u64(raw, 40),
    })
}

fn decode_block_device(raw: &[u8], index: usize) -> Result<BlockDevice, LpError> {
    Ok(BlockDevice {
        first_logical_sector: le_u64(raw, 0),
        alignment: le_u32(raw, 8),
        alignment_offset: le_u32(raw, 12),
        size: le_u64(raw, 16),
        partition_name: name_at("block device", raw, 24, index)?,
        flags: le_u32(raw, 60),
    })
}
