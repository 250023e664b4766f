//! Every corruption of the format we can name, each refused with its own typed error.

use super::test_support::{reseal_geometry, reseal_metadata, small_metadata, small_super_image};
use super::*;

const PRIMARY_GEOMETRY: usize = 4096;
/// 4 KiB slots × 2: slot 0 primary, slot 1 primary, slot 0 backup, slot 1 backup.
const SLOT0: usize = 12288;

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

type Check = fn(&LpError) -> bool;

#[test]
fn damaged_geometry_is_refused_by_name() {
    let good = small_super_image();
    let geometry = |image: &[u8]| Geometry::parse(&image[PRIMARY_GEOMETRY..], Which::Primary);
    assert!(geometry(&good).is_ok());
    let cases: Vec<(&str, usize, u32, bool, Check)> = vec![
        ("magic", 0, 0x616c_4468, false, |e| {
            matches!(e, LpError::GeometryMagic { .. })
        }),
        ("struct size", 4, 53, true, |e| {
            matches!(e, LpError::GeometryStructSize { size: 53, .. })
        }),
        ("checksum", 8, 0, false, |e| {
            matches!(e, LpError::GeometryChecksum { .. })
        }),
        ("max size not sectors", 40, 1000, true, |e| {
            matches!(e, LpError::GeometryMetadataSize { size: 1000, .. })
        }),
        ("max size huge", 40, 2 << 20, true, |e| {
            matches!(e, LpError::GeometryMetadataSize { .. })
        }),
        ("slot count", 44, 0, true, |e| {
            matches!(e, LpError::GeometrySlotCount { .. })
        }),
        ("block size", 48, 1000, true, |e| {
            matches!(e, LpError::GeometryBlockSize { size: 1000, .. })
        }),
    ];
    for (what, at, value, reseal, check) in cases {
        let mut image = good.clone();
        put_u32(&mut image, PRIMARY_GEOMETRY + at, value);
        if reseal {
            reseal_geometry(&mut image, PRIMARY_GEOMETRY);
        }
        let error = geometry(&image).unwrap_err();
        assert!(check(&error), "{what}: got {error:?}");
    }
    assert!(matches!(
        Geometry::parse(
            &good[PRIMARY_GEOMETRY..PRIMARY_GEOMETRY + 51],
            Which::Primary
        ),
        Err(LpError::GeometryShort { len: 51, .. })
    ));
}

/// Slot 0's primary metadata with one change, re-sealed (checksums recomputed) or not.
fn parse_changed(change: impl Fn(&mut [u8], &MetadataHeader), reseal: bool) -> LpError {
    let mut image = small_super_image();
    let header = MetadataHeader::parse(&image[SLOT0..], Which::Primary).unwrap();
    change(&mut image[SLOT0..], &header);
    if reseal {
        reseal_metadata(&mut image, SLOT0);
    }
    let geometry = small_metadata().geometry;
    Metadata::parse(&geometry, &image[SLOT0..SLOT0 + 4096], Which::Primary).unwrap_err()
}

/// Byte offset (in the slot) of entry `index` of a table.
fn entry(header: &MetadataHeader, table: TableDescriptor, index: u32) -> usize {
    (header.header_size + table.offset + index * table.entry_size) as usize
}

#[test]
fn damaged_headers_and_tables_are_refused_by_name() {
    type Change = fn(&mut [u8], &MetadataHeader);
    let cases: Vec<(&str, Change, bool, Check)> = vec![
        (
            "header magic",
            |s, _| s[0] ^= 1,
            true,
            |e| matches!(e, LpError::HeaderMagic { .. }),
        ),
        (
            "major version",
            |s, _| s[4] = 11,
            true,
            |e| matches!(e, LpError::HeaderVersion { major: 11, .. }),
        ),
        (
            "minor version",
            |s, _| s[6] = 3,
            true,
            |e| matches!(e, LpError::HeaderVersion { minor: 3, .. }),
        ),
        (
            "header size",
            |s, _| put_u32(s, 8, 256),
            true,
            |e| {
                matches!(
                    e,
                    LpError::HeaderSize {
                        size: 256,
                        expected: 128,
                        ..
                    }
                )
            },
        ),
        (
            "header checksum",
            |s, _| s[20] ^= 1,
            false,
            |e| matches!(e, LpError::HeaderChecksum { .. }),
        ),
        (
            "descriptor without reseal",
            |s, _| s[84] ^= 1,
            false,
            |e| matches!(e, LpError::HeaderChecksum { .. }),
        ),
        (
            "tables checksum",
            |s, h| s[entry(h, h.groups, 1)] ^= 1,
            false,
            |e| matches!(e, LpError::TablesChecksum { .. }),
        ),
        (
            "tables size past the slot",
            |s, _| put_u32(s, 44, 4000),
            true,
            |e| {
                matches!(
                    e,
                    LpError::TablesTooLarge {
                        size: 4128,
                        max: 4096,
                        ..
                    }
                )
            },
        ),
        (
            "partition count past tables",
            |s, _| put_u32(s, 84, 40),
            true,
            |e| {
                matches!(
                    e,
                    LpError::TableBounds {
                        table: "partition",
                        count: 40,
                        ..
                    }
                )
            },
        ),
        (
            "extent table offset past tables",
            |s, _| put_u32(s, 92, 1 << 31),
            true,
            |e| {
                matches!(
                    e,
                    LpError::TableBounds {
                        table: "extent",
                        ..
                    }
                )
            },
        ),
        (
            "group count overflowing",
            |s, _| put_u32(s, 108, u32::MAX),
            true,
            |e| matches!(e, LpError::TableBounds { table: "group", .. }),
        ),
        (
            "extent entry size",
            |s, _| put_u32(s, 100, 23),
            true,
            |e| {
                matches!(
                    e,
                    LpError::TableEntrySize {
                        table: "extent",
                        size: 23,
                        ..
                    }
                )
            },
        ),
        (
            "block device entry size",
            |s, _| put_u32(s, 124, 63),
            true,
            |e| {
                matches!(
                    e,
                    LpError::TableEntrySize {
                        table: "block device",
                        ..
                    }
                )
            },
        ),
    ];
    for (what, change, reseal, check) in cases {
        let error = parse_changed(change, reseal);
        assert!(check(&error), "{what}: got {error:?}");
    }
}

#[test]
fn inconsistent_entries_are_refused_by_name() {
    type Change = fn(&mut [u8], &MetadataHeader);
    let cases: Vec<(&str, Change, Check)> = vec![
        (
            "first extent past table",
            |s, h| put_u32(s, entry(h, h.partitions, 0) + 40, 3),
            |e| matches!(e, LpError::PartitionExtents { first: 3, .. }),
        ),
        (
            "extent count overflowing",
            |s, h| put_u32(s, entry(h, h.partitions, 1) + 44, u32::MAX),
            |e| matches!(e, LpError::PartitionExtents { .. }),
        ),
        (
            "group index",
            |s, h| put_u32(s, entry(h, h.partitions, 0) + 48, 2),
            |e| {
                matches!(
                    e,
                    LpError::PartitionGroup {
                        group_index: 2,
                        groups: 2,
                        ..
                    }
                )
            },
        ),
        (
            "unknown attribute",
            |s, h| put_u32(s, entry(h, h.partitions, 0) + 36, 0x10),
            |e| {
                matches!(
                    e,
                    LpError::PartitionAttributes {
                        attributes: 0x10,
                        ..
                    }
                )
            },
        ),
        (
            "UPDATED at version 10.0",
            |s, h| put_u32(s, entry(h, h.partitions, 0) + 36, attr::UPDATED),
            |e| matches!(e, LpError::PartitionAttributes { minor: 0, .. }),
        ),
        (
            "partition name not ASCII",
            |s, h| s[entry(h, h.partitions, 1) + 2] = 0xc3,
            |e| {
                matches!(
                    e,
                    LpError::Name {
                        table: "partition",
                        index: 1,
                        ..
                    }
                )
            },
        ),
        (
            "partition name empty",
            |s, h| s[entry(h, h.partitions, 2)] = 0,
            |e| {
                matches!(
                    e,
                    LpError::Name {
                        table: "partition",
                        index: 2,
                        ..
                    }
                )
            },
        ),
        (
            "group name with a space",
            |s, h| s[entry(h, h.groups, 1)] = b' ',
            |e| matches!(e, LpError::Name { table: "group", .. }),
        ),
        (
            "duplicate partition",
            |s, h| s[entry(h, h.partitions, 1) + 7] = b'a',
            |e| {
                matches!(
                    e,
                    LpError::DuplicateName {
                        table: "partition",
                        first: 0,
                        second: 1,
                        ..
                    }
                )
            },
        ),
        (
            "extent type",
            |s, h| put_u32(s, entry(h, h.extents, 0) + 8, 2),
            |e| {
                matches!(
                    e,
                    LpError::ExtentTargetType {
                        index: 0,
                        target_type: 2
                    }
                )
            },
        ),
        (
            "empty extent",
            |s, h| put_u64(s, entry(h, h.extents, 1), 0),
            |e| matches!(e, LpError::ExtentEmpty { index: 1 }),
        ),
        (
            "extent past the device",
            |s, h| put_u64(s, entry(h, h.extents, 0) + 12, 2040),
            |e| {
                matches!(
                    e,
                    LpError::ExtentOutsideDevice {
                        index: 0,
                        end: 2048,
                        ..
                    }
                )
            },
        ),
        (
            "extent over the metadata",
            |s, h| put_u64(s, entry(h, h.extents, 0) + 12, 8),
            |e| matches!(e, LpError::ExtentOutsideDevice { start: 8, .. }),
        ),
        (
            "extent on a missing device",
            |s, h| put_u32(s, entry(h, h.extents, 2) + 20, 1),
            |e| {
                matches!(
                    e,
                    LpError::ExtentBlockDevice {
                        index: 2,
                        device: 1,
                        devices: 1
                    }
                )
            },
        ),
        (
            "ZERO extent with a target",
            |s, h| put_u32(s, entry(h, h.extents, 0) + 8, 1),
            |e| matches!(e, LpError::ExtentZeroFields { index: 0, .. }),
        ),
        (
            "huge ZERO extent",
            |s, h| {
                let at = entry(h, h.extents, 0);
                put_u64(s, at, u64::MAX);
                put_u32(s, at + 8, 1);
                put_u64(s, at + 12, 0);
            },
            |e| matches!(e, LpError::PartitionTooLarge { .. }),
        ),
        (
            "no block device",
            |s, _| put_u32(s, 120, 0),
            |e| matches!(e, LpError::NoSuperDevice),
        ),
        (
            "data area over the metadata",
            |s, h| put_u64(s, entry(h, h.block_devices, 0), 1),
            |e| matches!(e, LpError::BlockDeviceLayout { index: 0, .. }),
        ),
        (
            "data area past the device",
            |s, h| put_u64(s, entry(h, h.block_devices, 0), 1 << 40),
            |e| matches!(e, LpError::BlockDeviceLayout { index: 0, .. }),
        ),
    ];
    for (what, change, check) in cases {
        let error = parse_changed(change, true);
        assert!(check(&error), "{what}: got {error:?}");
    }
}
