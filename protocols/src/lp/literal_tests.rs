//! Literal bytes derived by hand from `metadata_format.h` (field by field, little-endian; the
//! SHA-256 values were computed with Python's hashlib over these same bytes), decoded by our
//! reader and reproduced by our writer.

use std::io::Cursor;

use super::test_support::reader;
use super::*;

fn hex_bytes(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn name36(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.resize(36, 0);
    v
}

/// 64 KiB slots, 2 slots, 4096-byte blocks.
fn literal_geometry() -> Vec<u8> {
    let mut g = vec![
        0x67, 0x44, 0x6c, 0x61, // magic 0x616c4467
        0x34, 0x00, 0x00, 0x00, // struct_size 52
    ];
    g.extend(hex_bytes(
        "4e31cf64275442f40e25c772a18d1fccd8b1291232e593f65e522fc7ac07df03",
    ));
    g.extend([
        0x00, 0x00, 0x01, 0x00, // metadata_max_size 65536
        0x02, 0x00, 0x00, 0x00, // metadata_slot_count 2
        0x00, 0x10, 0x00, 0x00, // logical_block_size 4096
    ]);
    g
}

/// One partition (`system_a`, readonly, 1 MiB at sector 2048, group `main`), two groups, the
/// 8 MiB `super` block device: 52 + 24 + 96 + 64 = 236 bytes.
fn literal_tables() -> Vec<u8> {
    let mut t = name36("system_a");
    t.extend([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]); // attrs, first, count, group
    t.extend([0x00, 0x08, 0, 0, 0, 0, 0, 0]); // num_sectors 2048
    t.extend([0, 0, 0, 0]); // LINEAR
    t.extend([0x00, 0x08, 0, 0, 0, 0, 0, 0]); // target_data: sector 2048
    t.extend([0, 0, 0, 0]); // target_source: block device 0
    t.extend(name36("default"));
    t.extend([0; 12]); // flags 0, maximum_size 0
    t.extend(name36("main"));
    t.extend([0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0]); // flags 0, maximum_size 4 MiB
    t.extend([0x00, 0x08, 0, 0, 0, 0, 0, 0]); // first_logical_sector 2048
    t.extend([0, 0, 0x10, 0, 0, 0, 0, 0]); // alignment 1 MiB, alignment_offset 0
    t.extend([0, 0, 0x80, 0, 0, 0, 0, 0]); // size 8 MiB
    t.extend(name36("super"));
    t.extend([0, 0, 0, 0]); // flags
    assert_eq!(t.len(), 236);
    t
}

const TABLES_SHA256: &str = "12ddccab58440a4c78e65cac3e5f47fc91c51a56e9c7ba9c19bdff7e644d749c";

fn literal_header(minor: u8, header_checksum: &str) -> Vec<u8> {
    let mut h = vec![0x30, 0x50, 0x4c, 0x41]; // magic 0x414c5030
    h.extend([10, 0, minor, 0]); // major 10, minor
    h.extend(if minor >= 2 {
        [0, 1, 0, 0]
    } else {
        [0x80, 0, 0, 0]
    }); // header_size 256 or 128
    h.extend(hex_bytes(header_checksum));
    h.extend([236, 0, 0, 0]); // tables_size
    h.extend(hex_bytes(TABLES_SHA256));
    for (offset, count, size) in [(0u32, 1u32, 52u32), (52, 1, 24), (76, 2, 48), (172, 1, 64)] {
        h.extend(offset.to_le_bytes());
        h.extend(count.to_le_bytes());
        h.extend(size.to_le_bytes());
    }
    if minor >= 2 {
        h.extend([1, 0, 0, 0]); // flags: VIRTUAL_AB_DEVICE
        h.extend([0; 124]);
    }
    h
}

fn expected_metadata(minor_version: u16, header_flags: u32) -> Metadata {
    Metadata {
        geometry: Geometry {
            metadata_max_size: 65536,
            metadata_slot_count: 2,
            logical_block_size: 4096,
        },
        minor_version,
        header_flags,
        partitions: vec![Partition {
            name: "system_a".into(),
            attributes: attr::READONLY,
            first_extent_index: 0,
            num_extents: 1,
            group_index: 1,
        }],
        extents: vec![Extent {
            num_sectors: 2048,
            target: ExtentTarget::Linear {
                block_device: 0,
                sector: 2048,
            },
        }],
        groups: vec![
            Group {
                name: "default".into(),
                flags: 0,
                maximum_size: 0,
            },
            Group {
                name: "main".into(),
                flags: 0,
                maximum_size: 4 << 20,
            },
        ],
        block_devices: vec![BlockDevice {
            first_logical_sector: 2048,
            alignment: 1 << 20,
            alignment_offset: 0,
            size: 8 << 20,
            partition_name: "super".into(),
            flags: 0,
        }],
    }
}

fn literal_blob_v10_0() -> Vec<u8> {
    let mut blob = literal_header(
        0,
        "2952fbec889f37ecc9c83ce1e7d6600545c662b078b2cbe37910a1f0696b502f",
    );
    assert_eq!(blob.len(), 128);
    blob.extend(literal_tables());
    blob
}

#[test]
fn geometry_decodes_and_encodes_literally() {
    let g = Geometry::parse(&literal_geometry(), Which::Primary).unwrap();
    assert_eq!(g, expected_metadata(0, 0).geometry);
    let block = g.encode();
    assert_eq!(block.len(), 4096);
    assert_eq!(&block[..52], &literal_geometry()[..]);
    assert!(block[52..].iter().all(|&b| b == 0));
}

#[test]
fn metadata_10_0_decodes_and_encodes_literally() {
    let geometry = expected_metadata(0, 0).geometry;
    let blob = literal_blob_v10_0();
    let m = Metadata::parse(&geometry, &blob, Which::Primary).unwrap();
    assert_eq!(m, expected_metadata(0, 0));
    assert_eq!(m.encode().unwrap(), blob);
    let p = m.find("system_a").unwrap();
    assert!(p.is_readonly() && !p.is_slot_suffixed());
    assert_eq!(m.partition_size(p), 1 << 20);
    assert_eq!(m.group_of(p).unwrap().name, "main");
    assert_eq!(
        m.map_range(p, 4096, 100).unwrap(),
        vec![MappedRange::Device {
            block_device: 0,
            offset: (1 << 20) + 4096,
            len: 100
        }]
    );
}

#[test]
fn metadata_10_2_header_with_flags_decodes_and_encodes_literally() {
    let geometry = expected_metadata(2, 1).geometry;
    let mut blob = literal_header(
        2,
        "d43bdd6d220272cee8ad72a682c76519a423d5e75dd848be897b0229e38f4812",
    );
    assert_eq!(blob.len(), 256);
    blob.extend(literal_tables());
    let m = Metadata::parse(&geometry, &blob, Which::Primary).unwrap();
    assert_eq!(m, expected_metadata(2, header_flag::VIRTUAL_AB_DEVICE));
    assert_eq!(m.encode().unwrap(), blob);
}

#[test]
fn super_empty_is_geometry_then_one_unpadded_metadata() {
    let m = expected_metadata(0, 0);
    let image = super_empty_image(&m).unwrap();
    let mut expected = literal_geometry();
    expected.resize(4096, 0);
    expected.extend(literal_blob_v10_0());
    assert_eq!(image, expected);
    assert_eq!(
        ImageLayout::detect(&mut reader(&image)).unwrap(),
        ImageLayout::SuperEmpty
    );
    assert_eq!(read_super_empty(&mut reader(&image)).unwrap(), m);
    assert_eq!(read_image(&mut reader(&image), 0).unwrap().1, m);
}

#[test]
fn super_img_is_reserved_geometries_then_primary_and_backup_slots() {
    let m = expected_metadata(0, 0);
    let mut out = Cursor::new(Vec::new());
    assert_eq!(write_super_image(&m, &mut [], &mut out).unwrap(), 8 << 20);
    let image = out.into_inner();
    assert_eq!(image.len(), 8 << 20);
    assert!(image[..4096].iter().all(|&b| b == 0));
    for at in [4096, 8192] {
        assert_eq!(&image[at..at + 52], &literal_geometry()[..]);
        assert!(image[at + 52..at + 4096].iter().all(|&b| b == 0));
    }
    let blob = literal_blob_v10_0();
    for slot_at in [12288, 12288 + 65536, 12288 + 2 * 65536, 12288 + 3 * 65536] {
        assert_eq!(&image[slot_at..slot_at + blob.len()], &blob[..]);
        assert!(image[slot_at + blob.len()..slot_at + 65536]
            .iter()
            .all(|&b| b == 0));
    }
    assert!(image[12288 + 4 * 65536..].iter().all(|&b| b == 0));
    assert_eq!(
        ImageLayout::detect(&mut reader(&image)).unwrap(),
        ImageLayout::Super
    );
    assert_eq!(read_image(&mut reader(&image), 1).unwrap().1, m);
}
