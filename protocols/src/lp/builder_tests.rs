//! The builder against the numbers liblp's own builder tests expect (metadata area, alignment,
//! first-fit allocation, tail extension, merging), plus the edits a fastbootd makes.

use super::*;

/// liblp's test helper: a `super` of `size` bytes, no alignment (so the 4096-byte block size),
/// 1 KiB metadata, 2 slots.
fn liblp_test_builder(size: u64) -> MetadataBuilder {
    let device = DeviceSpec {
        alignment: 0,
        ..DeviceSpec::super_partition(size)
    };
    MetadataBuilder::new(device, 1024, 2).unwrap()
}

fn extents_of(m: &Metadata, name: &str) -> Vec<(u64, u64)> {
    let p = m.find(name).unwrap();
    m.partition_extents(p)
        .iter()
        .map(|e| match e.target {
            ExtentTarget::Linear { sector, .. } => (sector, e.num_sectors),
            ExtentTarget::Zero => panic!("zero extent"),
        })
        .collect()
}

#[test]
fn resize_grows_shrinks_and_merges_like_liblp() {
    let mut b = liblp_test_builder(1 << 20);
    b.add_partition("system", DEFAULT_GROUP, attr::READONLY)
        .unwrap();
    b.resize_partition("system", 65536).unwrap();
    // Reserved 4096 + geometry 2 × 4096 + metadata 4 × 1024 = 16 KiB = sector 32.
    assert_eq!(extents_of(&b.export().unwrap(), "system"), [(32, 128)]);
    b.resize_partition("system", 65536).unwrap();
    b.resize_partition("system", 0).unwrap();
    assert!(extents_of(&b.export().unwrap(), "system").is_empty());
    b.resize_partition("system", 131072).unwrap();
    b.resize_partition("system", 256 << 10).unwrap();
    assert_eq!(extents_of(&b.export().unwrap(), "system"), [(32, 512)]);
    b.resize_partition("system", 32768).unwrap();
    assert_eq!(extents_of(&b.export().unwrap(), "system"), [(32, 64)]);
    // Sizes round up to the 4096-byte block.
    b.resize_partition("system", 10000).unwrap();
    assert_eq!(b.partition_size("system"), Some(12288));
    b.resize_partition("system", 7000).unwrap();
    assert_eq!(b.partition_size("system"), Some(8192));
}

#[test]
fn first_fit_allocation_like_liblp_build_complex() {
    let mut b = liblp_test_builder(1 << 20);
    b.add_partition("system", DEFAULT_GROUP, attr::READONLY)
        .unwrap();
    b.add_partition("vendor", DEFAULT_GROUP, attr::READONLY)
        .unwrap();
    b.resize_partition("system", 65536).unwrap();
    b.resize_partition("vendor", 32768).unwrap();
    b.resize_partition("system", 98304).unwrap();
    let m = b.export().unwrap();
    assert_eq!(extents_of(&m, "system"), [(32, 128), (224, 64)]);
    assert_eq!(extents_of(&m, "vendor"), [(160, 64)]);
    assert_eq!(m.block_devices[0].first_logical_sector, 32);
    assert_eq!(m.minor_version, 0);
    // Importing keeps every extent where it was.
    let again = MetadataBuilder::from_metadata(&m)
        .unwrap()
        .export()
        .unwrap();
    assert_eq!(again, m);
}

#[test]
fn metadata_area_alignment_like_liblp_internal_alignment() {
    let first_sector = |alignment: u32, offset: u32, metadata: u32| {
        let device = DeviceSpec {
            alignment,
            alignment_offset: offset,
            ..DeviceSpec::super_partition(1 << 20)
        };
        let b = MetadataBuilder::new(device, metadata, 2).unwrap();
        b.block_devices()[0].first_logical_sector
    };
    assert_eq!(first_sector(768 << 10, 0, 1024), 1536);
    assert_eq!(first_sector(768 << 10, 753664, 1024), 1536);
    assert_eq!(first_sector(12 << 10, 3 << 10, 16 << 10), 168);
    assert_eq!(first_sector(11 << 10, 3 << 10, 16 << 10), 154);
    // Metadata sizes round up to a sector.
    let b = MetadataBuilder::new(DeviceSpec::super_partition(8 << 20), 1000, 2).unwrap();
    assert_eq!(b.geometry().metadata_max_size, 1024);
    // A device whose size is not a whole number of blocks is refused.
    let odd = DeviceSpec {
        alignment: 0,
        ..DeviceSpec::super_partition(1_000_000)
    };
    assert!(MetadataBuilder::new(odd, 1024, 2).is_err());
}

#[test]
fn unaligned_tails_are_extended_in_place_like_liblp() {
    let device = DeviceSpec {
        alignment: 768 << 10,
        alignment_offset: 753664,
        ..DeviceSpec::super_partition(512 << 20)
    };
    let mut b = MetadataBuilder::new(device, 32 << 10, 2).unwrap();
    b.add_partition("a", DEFAULT_GROUP, 0).unwrap();
    b.add_partition("b", DEFAULT_GROUP, 0).unwrap();
    for _ in 0..10 {
        let a = b.partition_size("a").unwrap();
        b.resize_partition("a", a + 4096).unwrap();
        let size = b.partition_size("b").unwrap();
        b.resize_partition("b", size + 4096).unwrap();
    }
    let m = b.export().unwrap();
    assert_eq!(extents_of(&m, "a"), [(1536, 80)]);
    assert_eq!(extents_of(&m, "b"), [(3072, 80)]);
}

#[test]
fn the_whole_device_is_allocatable() {
    let mut b = liblp_test_builder(1 << 20);
    let allocatable = (1 << 20) - (1024 * 2 + 4096) * 2 - 4096;
    assert_eq!(b.allocatable_space(), allocatable);
    b.add_partition("system", DEFAULT_GROUP, 0).unwrap();
    b.resize_partition("system", allocatable).unwrap();
    assert_eq!(b.used_space(), allocatable);
    assert!(matches!(
        b.resize_partition("system", allocatable + 1),
        Err(LpError::NoSpace { .. })
    ));
    assert_eq!(b.partition_size("system"), Some(allocatable));
    let m = b.export().unwrap();
    let end = extents_of(&m, "system").last().map(|&(s, n)| s + n);
    assert_eq!(end, Some((1 << 20) / 512));
}

#[test]
fn lpmake_defaults_and_a_fastbootd_session() {
    // lpmake --device-size 100M --metadata-size 65536 --metadata-slots 2 (1 MiB alignment).
    let mut b = MetadataBuilder::new(DeviceSpec::super_partition(100 << 20), 65536, 2).unwrap();
    assert_eq!(b.block_devices()[0].first_logical_sector, 2048);
    b.add_group("main_a", 40 << 20).unwrap();
    b.add_partition("system_a", "main_a", attr::READONLY)
        .unwrap();
    b.resize_partition("system_a", 10 << 20).unwrap();
    b.add_partition("vendor_a", "main_a", attr::READONLY)
        .unwrap();
    b.resize_partition("vendor_a", (3 << 20) + 1).unwrap();
    b.add_partition("product_a", "main_a", 0).unwrap();
    b.resize_partition("product_a", 1 << 20).unwrap();
    let m = b.export().unwrap();
    assert_eq!(extents_of(&m, "system_a"), [(2048, 20480)]);
    assert_eq!(extents_of(&m, "vendor_a"), [(22528, 6152)]);
    // The next partition starts on the next 1 MiB boundary.
    assert_eq!(extents_of(&m, "product_a"), [(30720, 2048)]);

    // resize-logical-partition vendor_a: the unaligned tail first, then the next free region.
    let mut b = MetadataBuilder::from_metadata(&m).unwrap();
    b.resize_partition("vendor_a", (5 << 20) + 4096).unwrap();
    let m = b.export().unwrap();
    assert_eq!(extents_of(&m, "vendor_a"), [(22528, 8192), (32768, 2056)]);
    assert_eq!(
        m.partition_size(m.find("vendor_a").unwrap()),
        (5 << 20) + 4096
    );
    b.resize_partition("vendor_a", 1 << 20).unwrap();
    assert_eq!(
        extents_of(&b.export().unwrap(), "vendor_a"),
        [(22528, 2048)]
    );

    // The group's maximum holds.
    assert!(matches!(
        b.resize_partition("product_a", 40 << 20),
        Err(LpError::GroupFull { ref group, .. }) if group == "main_a"
    ));
    // delete-logical-partition, create-logical-partition: freed space is reused first.
    b.remove_partition("system_a").unwrap();
    b.add_partition("scratch", DEFAULT_GROUP, 0).unwrap();
    b.resize_partition("scratch", 4 << 20).unwrap();
    assert_eq!(extents_of(&b.export().unwrap(), "scratch"), [(2048, 8192)]);
    assert!(matches!(
        b.remove_partition("system_a"),
        Err(LpError::PartitionNotFound { .. })
    ));
    b.remove_group("main_a").unwrap();
    assert_eq!(b.partition_names(), ["scratch"]);
}

#[test]
fn versions_follow_attributes_and_flags() {
    let mut b = liblp_test_builder(1 << 20);
    b.add_partition("system", DEFAULT_GROUP, attr::READONLY)
        .unwrap();
    assert_eq!(b.export().unwrap().minor_version, 0);
    b.add_partition("cow", DEFAULT_GROUP, attr::UPDATED)
        .unwrap();
    assert_eq!(b.export().unwrap().minor_version, 1);
    b.set_header_flags(header_flag::VIRTUAL_AB_DEVICE);
    let m = b.export().unwrap();
    assert_eq!((m.minor_version, m.header_flags), (2, 1));
    assert_eq!(m.encode().unwrap()[8..12], 256u32.to_le_bytes());
    // Importing 10.2 metadata keeps the expanded header.
    let again = MetadataBuilder::from_metadata(&m)
        .unwrap()
        .export()
        .unwrap();
    assert_eq!(again.minor_version, 2);
}

#[test]
fn bad_requests_are_refused() {
    let mut b = liblp_test_builder(1 << 20);
    b.add_partition("system", DEFAULT_GROUP, 0).unwrap();
    for bad in ["system", "", &"x".repeat(37), "has space", "ünicode"] {
        assert!(b.add_partition(bad, DEFAULT_GROUP, 0).is_err(), "{bad:?}");
    }
    assert!(b.add_partition(&"x".repeat(36), DEFAULT_GROUP, 0).is_ok());
    assert!(b.add_partition("other", "nogroup", 0).is_err());
    assert!(b.add_partition("other", DEFAULT_GROUP, 1 << 9).is_err());
    assert!(b.add_group(DEFAULT_GROUP, 0).is_err());
    assert!(b.remove_group(DEFAULT_GROUP).is_err());
    assert!(b.resize_group(DEFAULT_GROUP, 5).is_err());
    assert!(b.resize_partition("system", u64::MAX).is_err());
    assert!(matches!(
        b.resize_partition("nothing", 4096),
        Err(LpError::PartitionNotFound { .. })
    ));
    let small = DeviceSpec {
        alignment: 0,
        ..DeviceSpec::super_partition(16 << 10)
    };
    assert!(MetadataBuilder::new(small, 1024, 2).is_err());
    let spec = DeviceSpec::super_partition(8 << 20);
    assert!(MetadataBuilder::new(spec.clone(), 100, 2).is_err());
    assert!(MetadataBuilder::new(spec.clone(), 2 << 20, 2).is_err());
    assert!(MetadataBuilder::new(spec, 4096, 0).is_err());
    // A group shrunk below what its partitions use cannot be exported.
    b.add_group("g", 0).unwrap();
    b.add_partition("in_g", "g", 0).unwrap();
    b.resize_partition("in_g", 8192).unwrap();
    b.resize_group("g", 4096).unwrap();
    assert!(b.export().is_err());
}

/// `update-super` keeps the other slot's partitions: liblp's ImportPartitions takes them with
/// their extents into the new table, when the devices match and the groups have room.
#[test]
fn import_partitions_keeps_extents_into_a_new_table() {
    let mut old = liblp_test_builder(1 << 20);
    old.add_group("main_b", 128 << 10).unwrap();
    old.add_partition("system_a", DEFAULT_GROUP, 0).unwrap();
    old.resize_partition("system_a", 64 << 10).unwrap();
    old.add_partition("system_b", "main_b", attr::READONLY)
        .unwrap();
    old.resize_partition("system_b", 96 << 10).unwrap();
    let old = old.export().unwrap();
    let mut new = liblp_test_builder(1 << 20);
    new.add_group("main_b", 128 << 10).unwrap();
    new.add_partition("system_a", DEFAULT_GROUP, 0).unwrap();
    let fresh = new.clone();
    new.import_partitions(&old, &["system_b"]).unwrap();
    let merged = new.export().unwrap();
    assert_eq!(
        extents_of(&merged, "system_b"),
        extents_of(&old, "system_b")
    );
    assert_eq!(merged.find("system_b").unwrap().attributes, attr::READONLY);
    assert!(extents_of(&merged, "system_a").is_empty(), "not imported");
    // A group too small for what is imported, another device, a non-empty target: refused.
    let mut small = liblp_test_builder(1 << 20);
    small.add_group("main_b", 64 << 10).unwrap();
    assert!(matches!(
        small.import_partitions(&old, &["system_b"]),
        Err(LpError::GroupFull { .. })
    ));
    let mut other = liblp_test_builder(2 << 20);
    other.add_group("main_b", 0).unwrap();
    assert!(other.import_partitions(&old, &["system_b"]).is_err());
    let mut full = fresh;
    full.resize_partition("system_a", 4096).unwrap();
    assert!(full.import_partitions(&old, &["system_a"]).is_err());
    // A group the new table lacks.
    let mut no_group = liblp_test_builder(1 << 20);
    assert!(no_group.import_partitions(&old, &["system_b"]).is_err());
}
