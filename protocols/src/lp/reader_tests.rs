//! Reading through damage: truncated files, a damaged primary copy (the backup is used),
//! slots that do not exist, lookups outside a partition, and writers refusing what a reader
//! would refuse.

use std::io::Cursor;

use super::test_support::{reader, small_metadata, small_super_image};
use super::*;

const PRIMARY_GEOMETRY: usize = 4096;
const BACKUP_GEOMETRY: usize = 8192;
/// 4 KiB slots × 2: slot 0 primary at 12288, its backup at 20480.
const SLOT0: usize = 12288;
const SLOT0_BACKUP: usize = 20480;

#[test]
fn truncated_metadata_is_refused() {
    let image = small_super_image();
    let geometry = small_metadata().geometry;
    let len = small_metadata().encoded_len() as usize;
    for cut in [0, 50, 127, 128, len - 1] {
        let error = Metadata::parse(&geometry, &image[SLOT0..SLOT0 + cut], Which::Only);
        assert!(
            matches!(
                error,
                Err(LpError::HeaderShort { .. } | LpError::TablesShort { .. })
            ),
            "cut at {cut}: {error:?}"
        );
    }
    // Through a reader, a file that ends inside the metadata is an I/O error in both copies.
    let cut = &image[..SLOT0 + 100];
    let g = read_geometry(&mut reader(cut)).unwrap();
    match read_metadata(&mut reader(cut), &g, 0) {
        Err(LpError::MetadataBothInvalid {
            slot: 0,
            primary,
            backup,
        }) => {
            assert!(matches!(*primary, LpError::Io { .. }), "{primary:?}");
            assert!(matches!(*backup, LpError::Io { .. }), "{backup:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read_geometry(&mut reader(&image[..5000])),
        Err(LpError::GeometryBothInvalid { .. })
    ));
}

#[test]
fn backups_are_used_when_primaries_are_damaged() {
    let good = small_super_image();
    let expected = small_metadata();
    let mut image = good.clone();
    image[PRIMARY_GEOMETRY + 30] ^= 1;
    image[SLOT0 + 200] ^= 1;
    let g = read_geometry(&mut reader(&image)).unwrap();
    assert_eq!(g, expected.geometry);
    assert_eq!(read_metadata(&mut reader(&image), &g, 0).unwrap(), expected);
    assert!(read_metadata_copy(&mut reader(&image), &g, SLOT0 as u64, Which::Primary).is_err());

    // Both copies of slot 0 damaged: slot 0 is unreadable, slot 1 still reads.
    image[SLOT0_BACKUP + 20] ^= 1;
    match read_metadata(&mut reader(&image), &g, 0) {
        Err(LpError::MetadataBothInvalid {
            slot: 0,
            primary,
            backup,
        }) => {
            assert!(matches!(
                *primary,
                LpError::TablesChecksum {
                    which: Which::Primary
                }
            ));
            assert!(matches!(
                *backup,
                LpError::HeaderChecksum {
                    which: Which::Backup
                }
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(read_metadata(&mut reader(&image), &g, 1).unwrap(), expected);

    // Both geometries damaged.
    image[BACKUP_GEOMETRY] ^= 1;
    let result = read_geometry(&mut reader(&image));
    match result {
        Err(LpError::GeometryBothInvalid { primary, backup }) => {
            assert!(matches!(*primary, LpError::GeometryChecksum { .. }));
            assert!(matches!(*backup, LpError::GeometryMagic { .. }));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn slots_past_the_geometry_are_refused() {
    let image = small_super_image();
    let g = read_geometry(&mut reader(&image)).unwrap();
    assert!(matches!(
        read_metadata(&mut reader(&image), &g, 2),
        Err(LpError::SlotOutOfRange {
            slot: 2,
            slot_count: 2
        })
    ));
    assert!(matches!(
        read_image(&mut reader(&image), u32::MAX),
        Err(LpError::SlotOutOfRange { .. })
    ));
    assert!(matches!(
        slot_update_writes(&small_metadata(), 2),
        Err(LpError::SlotOutOfRange { .. })
    ));
}

#[test]
fn lookups_outside_the_metadata_are_refused() {
    let m = small_metadata();
    assert!(matches!(
        m.find("odm_a"),
        Err(LpError::PartitionNotFound { .. })
    ));
    let p = m.find("vendor_a").unwrap();
    assert_eq!(m.partition_size(p), 12288);
    assert!(m.map_range(p, 12288, 0).unwrap().is_empty());
    for (offset, len) in [(12288, 1), (0, 12289), (u64::MAX, 1)] {
        assert!(matches!(
            m.map_range(p, offset, len),
            Err(LpError::RangeOutsidePartition { .. })
        ));
    }
}

#[test]
fn writers_refuse_what_readers_would() {
    let m = small_metadata();
    let mut too_big = vec![0u8; 70_000];
    let mut out = Cursor::new(Vec::new());
    let error = write_super_image(
        &m,
        &mut [PartitionImage {
            partition: "system_a",
            len: too_big.len() as u64,
            reader: &mut &too_big[..],
        }],
        &mut out,
    );
    assert!(matches!(
        error,
        Err(LpError::ImageTooLarge {
            len: 70_000,
            size: 65536,
            ..
        })
    ));
    assert!(matches!(
        SuperImagePlan::new(&m, &[("odm", 1)]),
        Err(LpError::ImageWithoutPartition { .. })
    ));
    assert!(SuperImagePlan::new(&m, &[("vendor_a", 1), ("vendor_a", 1)]).is_err());
    too_big.truncate(100);
    let error = write_super_image(
        &m,
        &mut [PartitionImage {
            partition: "system_a",
            len: 200,
            reader: &mut &too_big[..],
        }],
        &mut out,
    );
    assert!(matches!(error, Err(LpError::ImageShort { len: 200, .. })));

    let mut bad = m.clone();
    bad.partitions[0].name = "x".repeat(37);
    assert!(matches!(bad.encode(), Err(LpError::Name { .. })));
    let mut bad = m.clone();
    bad.header_flags = 1;
    assert!(matches!(bad.encode(), Err(LpError::HeaderFlags { .. })));
    let mut bad = m.clone();
    for i in 0..100 {
        bad.partitions.push(Partition {
            name: format!("p{i}"),
            ..bad.partitions[0].clone()
        });
    }
    assert!(matches!(
        bad.encode(),
        Err(LpError::TablesTooLarge { max: 4096, .. })
    ));
    let mut bad = m.clone();
    bad.block_devices.push(bad.block_devices[0].clone());
    assert!(matches!(
        SuperImagePlan::new(&bad, &[]),
        Err(LpError::Build(_))
    ));
}
