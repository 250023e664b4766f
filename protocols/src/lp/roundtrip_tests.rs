//! Writer → reader round trips: images written with our writer read back identically, data
//! found through the extents, and in-place metadata updates as fastbootd makes them.

use std::io::Cursor;

use super::test_support::{pattern, reader, small_metadata, small_super_image};
use super::*;

#[test]
fn every_slot_of_a_written_image_reads_back() {
    let image = small_super_image();
    let expected = small_metadata();
    let g = read_geometry(&mut reader(&image)).unwrap();
    assert_eq!(g, expected.geometry);
    for slot in 0..2 {
        assert_eq!(
            read_metadata(&mut reader(&image), &g, slot).unwrap(),
            expected
        );
    }
    let summaries = expected.summaries();
    let listed: Vec<(&str, u64, &str)> = summaries
        .iter()
        .map(|s| (s.name.as_str(), s.size, s.group.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("system_a", 65536, "main"),
            ("system_b", 32768, "main"),
            ("vendor_a", 12288, "default")
        ]
    );
    let system = expected.partition_for_slot("system", 0).unwrap();
    assert_eq!(system.name, "system_a");
    assert_eq!(
        expected.partition_for_slot("system", 1).unwrap().name,
        "system_b"
    );
    assert_eq!(
        expected.partition_for_slot("vendor_a", 1).unwrap().name,
        "vendor_a"
    );
    assert!(expected.partition_for_slot("vendor", 1).is_none());

    // The data is where the extents say; past the image the partition reads as zeros.
    let mut data = vec![0u8; 65536];
    expected
        .read_partition_at(system, &mut reader(&image), 0, &mut data)
        .unwrap();
    assert_eq!(&data[..60_000], &pattern(1, 60_000)[..]);
    assert!(data[60_000..].iter().all(|&b| b == 0));
    let vendor = expected.find("vendor_a").unwrap();
    let mut data = vec![0u8; 100];
    expected
        .read_partition_at(vendor, &mut reader(&image), 9_950, &mut data)
        .unwrap();
    assert_eq!(&data[..50], &pattern(2, 10_000)[9_950..]);
}

/// Two partitions grown in turns end up in interleaved extents; a read across an extent
/// boundary stitches them together.
#[test]
fn fragmented_partitions_stream_in_and_read_across_extents() {
    let device = DeviceSpec {
        alignment: 0,
        ..DeviceSpec::super_partition(2 << 20)
    };
    let mut b = MetadataBuilder::new(device, 4096, 2).unwrap();
    b.add_partition("a", DEFAULT_GROUP, 0).unwrap();
    b.add_partition("b", DEFAULT_GROUP, 0).unwrap();
    for round in 1..=3u64 {
        b.resize_partition("a", round * 40960).unwrap();
        b.resize_partition("b", round * 8192).unwrap();
    }
    let m = b.export().unwrap();
    let a = m.find("a").unwrap();
    assert_eq!(a.num_extents, 3);
    let a_data = pattern(7, 3 * 40960);
    let b_data = pattern(9, 3 * 8192 - 5);
    let mut out = Cursor::new(Vec::new());
    write_super_image(
        &m,
        &mut [
            PartitionImage {
                partition: "b",
                len: b_data.len() as u64,
                reader: &mut &b_data[..],
            },
            PartitionImage {
                partition: "a",
                len: a_data.len() as u64,
                reader: &mut &a_data[..],
            },
        ],
        &mut out,
    )
    .unwrap();
    let image = out.into_inner();
    assert_eq!(image.len(), 2 << 20);
    let back = read_image(&mut reader(&image), 0).unwrap().1;
    assert_eq!(back, m);
    let pieces = back.map_range(a, 40960 - 100, 200).unwrap();
    assert_eq!(pieces.len(), 2, "{pieces:?}");
    let mut buf = vec![0u8; 200];
    back.read_partition_at(a, &mut reader(&image), 40960 - 100, &mut buf)
        .unwrap();
    assert_eq!(buf, a_data[40960 - 100..40960 + 100]);
    let mut whole = vec![0u8; b_data.len()];
    let bp = back.find("b").unwrap();
    back.read_partition_at(bp, &mut reader(&image), 0, &mut whole)
        .unwrap();
    assert_eq!(whole, b_data);

    // The plan sorted by offset covers each byte at most once.
    let plan = SuperImagePlan::new(&m, &[("a", 3 * 40960), ("b", 100)]).unwrap();
    let sorted = plan.pieces_by_offset();
    for pair in sorted.windows(2) {
        assert!(pair[0].offset + pair[0].len <= pair[1].offset);
    }
}

#[test]
fn zero_extents_read_as_zeros_and_take_no_space() {
    let mut m = small_metadata();
    let extent_count = m.extents.len() as u32;
    m.extents.push(Extent {
        num_sectors: 16,
        target: ExtentTarget::Zero,
    });
    m.partitions.push(Partition {
        name: "zeros".into(),
        attributes: 0,
        first_extent_index: extent_count,
        num_extents: 1,
        group_index: 0,
    });
    let blob = m.encode().unwrap();
    let back = Metadata::parse(&m.geometry, &blob, Which::Only).unwrap();
    assert_eq!(back, m);
    let p = back.find("zeros").unwrap();
    assert_eq!(
        back.map_range(p, 100, 50).unwrap(),
        [MappedRange::Zero { len: 50 }]
    );
    let mut buf = [7u8; 50];
    let mut no_reads =
        |_: u64, _: &mut [u8]| -> std::io::Result<()> { panic!("read a zero extent") };
    back.read_partition_at(p, &mut no_reads, 100, &mut buf)
        .unwrap();
    assert_eq!(buf, [0u8; 50]);
    assert!(SuperImagePlan::new(&back, &[("zeros", 1)]).is_err());
}

/// Retrofit images mark names to be suffixed with the slot they land in.
#[test]
fn slot_suffixed_names_take_the_slot_they_are_read_for() {
    let mut m = small_metadata();
    m.partitions[2].name = "vendor".into();
    m.partitions[2].attributes |= attr::SLOT_SUFFIXED;
    m.groups[1].flags = GROUP_SLOT_SUFFIXED;
    m.block_devices[0].flags = BLOCK_DEVICE_SLOT_SUFFIXED;
    let mut out = Cursor::new(Vec::new());
    write_super_image(&m, &mut [], &mut out).unwrap();
    let image = out.into_inner();
    let g = read_geometry(&mut reader(&image)).unwrap();
    let b = read_metadata(&mut reader(&image), &g, 1).unwrap();
    assert_eq!(b.partitions[2].name, "vendor_b");
    assert_eq!(b.partitions[2].attributes, 0);
    assert_eq!(b.groups[1].name, "main_b");
    assert_eq!(b.block_devices[0].partition_name, "super_b");
    assert_eq!(b.partition_for_slot("vendor", 1).unwrap().name, "vendor_b");
    let a = read_metadata(&mut reader(&image), &g, 0).unwrap();
    assert_eq!(a.partitions[2].name, "vendor_a");
    // A super_empty.img keeps the names as stored.
    let empty = super_empty_image(&m).unwrap();
    assert_eq!(read_super_empty(&mut reader(&empty)).unwrap(), m);
    // A suffix that makes a name too long, or two names equal, is refused.
    let mut long = m.clone();
    long.partitions[2].name = "v".repeat(35);
    assert!(matches!(
        long.apply_slot_suffixes(0),
        Err(LpError::Name { .. })
    ));
    let mut clash = m.clone();
    clash.partitions[0].name = "vendor_a".into();
    assert!(matches!(
        clash.apply_slot_suffixes(0),
        Err(LpError::DuplicateName { .. })
    ));
}

#[test]
fn in_place_updates_touch_only_their_slot() {
    let mut image = small_super_image();
    let old = small_metadata();
    let mut b = MetadataBuilder::from_metadata(&old).unwrap();
    b.remove_partition("system_b").unwrap();
    b.add_partition("odm_b", DEFAULT_GROUP, 0).unwrap();
    b.resize_partition("odm_b", 4096).unwrap();
    let new = b.export().unwrap();
    let writes = slot_update_writes(&new, 1).unwrap();
    assert_eq!(
        writes.iter().map(|w| w.offset).collect::<Vec<_>>(),
        [12288 + 4096, 12288 + 3 * 4096]
    );
    for w in &writes {
        image[w.offset as usize..w.offset as usize + w.bytes.len()].copy_from_slice(&w.bytes);
    }
    let g = read_geometry(&mut reader(&image)).unwrap();
    assert_eq!(read_metadata(&mut reader(&image), &g, 1).unwrap(), new);
    assert_eq!(read_metadata(&mut reader(&image), &g, 0).unwrap(), old);

    // Flashing a whole table writes the reserved zeros, both geometries and every slot.
    let mut blank = vec![0xa5u8; 1 << 20];
    for w in flash_table_writes(&new).unwrap() {
        blank[w.offset as usize..w.offset as usize + w.bytes.len()].copy_from_slice(&w.bytes);
    }
    assert!(blank[..4096].iter().all(|&b| b == 0));
    for slot in 0..2 {
        let (layout, m) = read_image(&mut reader(&blank), slot).unwrap();
        assert_eq!((layout, m), (ImageLayout::Super, new.clone()));
    }
}
