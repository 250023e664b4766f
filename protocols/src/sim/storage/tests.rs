use super::*;
use crate::gpt::Which;

fn spec(sector_size: u32) -> Vec<LunSpec> {
    let p = |name: &str, size: u64| PartitionSpec {
        name: name.into(),
        size_bytes: size,
        type_guid: None,
    };
    vec![
        LunSpec {
            sector_size,
            size_bytes: None,
            partitions: vec![
                p("boot_a", 2 << 20),
                p("boot_b", (2 << 20) - 65536), // leaves a gap before system_a
                p("system_a", 3 << 20),
            ],
        },
        LunSpec {
            sector_size,
            size_bytes: Some(8 << 20),
            partitions: vec![p("xbl_a", 1 << 20)],
        },
    ]
}

fn gpt_from_lun(s: &mut Storage, lun: u32) -> Gpt {
    let (ss, sectors) = (
        s.lun(lun).unwrap().sector_size(),
        s.lun(lun).unwrap().sectors(),
    );
    Gpt::read(
        |off, buf| {
            s.read_lun(lun, off, buf)
                .map_err(|e| std::io::Error::other(e.to_string()))
        },
        ss,
        sectors,
    )
    .unwrap()
}

#[test]
fn lun_bytes_carry_a_valid_gpt_for_both_sector_sizes() {
    for ss in [512, 4096] {
        let mut s = Storage::create("t", &spec(ss), StorageMode::Memory).unwrap();
        let table = gpt_from_lun(&mut s, 0);
        assert_eq!(&table, s.lun(0).unwrap().gpt());
        assert_eq!(table.find("system_a").unwrap().size_bytes(ss), 3 << 20);
        assert_eq!(gpt_from_lun(&mut s, 1).partitions.len(), 1);
        let info = s.partition("xbl_a").unwrap();
        assert_eq!((info.lun, info.sector_size), (1, ss));
    }
}

#[test]
fn edl_sector_writes_land_in_partition_files_and_fastboot_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Storage::create("t", &spec(4096), StorageMode::Files(dir.path().into())).unwrap();
    let boot_b = s.partition("boot_b").unwrap();
    let system = s.partition("system_a").unwrap();
    assert_eq!(
        boot_b.path.as_deref(),
        Some(dir.path().join("boot_b.img").as_path())
    );
    // One LUN write spanning the end of boot_b, the alignment gap and the start of system_a.
    let start = (boot_b.last_lba + 1) * 4096 - 8192;
    let end = system.first_lba * 4096 + 8192;
    let data: Vec<u8> = (0..end - start).map(|i| (i % 253) as u8 + 1).collect();
    s.write_lun(0, start, &data).unwrap();
    let boot_file = std::fs::read(dir.path().join("boot_b.img")).unwrap();
    assert_eq!(boot_file.len() as u64, (2 << 20) - 65536);
    assert!(boot_file[boot_file.len() - 8192..] == data[..8192]);
    let sys_file = std::fs::read(dir.path().join("system_a.img")).unwrap();
    assert!(sys_file[..8192] == data[data.len() - 8192..]);
    // The gap went to the LUN's own file.
    let lun_file = std::fs::read(dir.path().join("lun0.img")).unwrap();
    let gap = (boot_b.last_lba + 1) * 4096;
    assert!(lun_file[gap as usize..gap as usize + 100] == data[8192..8192 + 100]);
    // Fastboot's view.
    let mut buf = vec![0u8; 8192];
    s.read_partition("system_a", 0, &mut buf).unwrap();
    assert!(buf == data[data.len() - 8192..]);
    // And back: a partition write is visible to LUN reads.
    s.write_partition("boot_a", 4096, b"fastboot").unwrap();
    let boot_a = s.partition("boot_a").unwrap();
    let mut buf = [0u8; 8];
    s.read_lun(0, boot_a.first_lba * 4096 + 4096, &mut buf)
        .unwrap();
    assert_eq!(&buf, b"fastboot");
}

#[test]
fn out_of_range_and_unknown_names_are_errors() {
    let mut s = Storage::create("t", &spec(512), StorageMode::Memory).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(
        s.read_partition("nope", 0, &mut buf),
        Err(StorageError::NoSuchPartition(_))
    ));
    assert!(matches!(
        s.write_partition("boot_a", (2 << 20) - 8, &buf),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(
        s.read_partition("boot_a", u64::MAX, &mut buf),
        Err(StorageError::OutOfRange { .. })
    ));
    let size = s.lun(0).unwrap().size_bytes();
    assert!(s.read_lun(0, size - 8, &mut buf).is_err());
    assert!(matches!(
        s.read_lun(7, 0, &mut buf),
        Err(StorageError::NoSuchLun { lun: 7, count: 2 })
    ));
    let dup = vec![LunSpec {
        sector_size: 512,
        size_bytes: None,
        partitions: vec![
            PartitionSpec {
                name: "x".into(),
                size_bytes: 512,
                type_guid: None,
            },
            PartitionSpec {
                name: "x".into(),
                size_bytes: 512,
                type_guid: None,
            },
        ],
    }];
    assert!(Storage::create("t", &dup, StorageMode::Memory).is_err());
}

#[test]
fn dropped_writes_answer_ok_and_store_nothing() {
    let mut s = Storage::create("t", &spec(4096), StorageMode::Memory).unwrap();
    s.set_drop_writes(DropWrites::Partitions(vec!["boot_a".into()]));
    s.write_partition("boot_a", 0, &[7u8; 4096]).unwrap();
    s.write_partition("boot_b", 0, &[7u8; 4096]).unwrap();
    let mut buf = [1u8; 4096];
    s.read_partition("boot_a", 0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    s.read_partition("boot_b", 0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 7));
    s.set_drop_writes(DropWrites::All);
    s.discard_partition("boot_b", 0, 4096).unwrap();
    s.read_partition("boot_b", 0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 7), "discard dropped too");
    s.set_drop_writes(DropWrites::None);
    s.discard_partition("boot_b", 0, 4096).unwrap();
    s.read_partition("boot_b", 0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn slot_state_lives_in_the_gpt_both_personalities_see() {
    let mut s = Storage::create("t", &spec(4096), StorageMode::Memory).unwrap();
    assert_eq!(s.slot_suffixes(), ["a", "b"]);
    assert_eq!(s.current_slot().as_deref(), Some("a"));
    s.set_active_slot("b").unwrap();
    assert_eq!(s.current_slot().as_deref(), Some("b"));
    let b = s.slot("b").unwrap();
    assert!(b.active && !b.successful && !b.unbootable);
    assert_eq!((b.priority, b.retry_count), (3, 7));
    assert!(!s.slot("a").unwrap().active);
    // What EDL reads from the LUN says the same.
    let table = gpt_from_lun(&mut s, 0);
    assert_ne!(
        table.find("boot_b").unwrap().attributes & SLOT_ATTR_ACTIVE,
        0
    );
    assert_eq!(
        table.find("boot_a").unwrap().attributes & SLOT_ATTR_ACTIVE,
        0
    );
    // EDL programs a table (same layout) with slot a active again: the phone adopts it.
    let mut edl_table = table.clone();
    edl_table.find_mut("boot_a").unwrap().attributes = SLOT_ATTR_ACTIVE | 3 << 48;
    edl_table.find_mut("boot_b").unwrap().attributes = 0;
    let enc = edl_table.encode().unwrap();
    s.write_lun(0, 0, &enc.primary).unwrap();
    s.write_lun(0, enc.backup_lba * 4096, &enc.backup).unwrap();
    assert_eq!(s.current_slot().as_deref(), Some("a"));
    assert!(matches!(
        s.set_active_slot("c"),
        Err(StorageError::NoSuchSlot(_))
    ));
    // A corrupted table write keeps the last good one.
    s.write_lun(0, 4096, &[0u8; 4096]).unwrap();
    assert_eq!(s.current_slot().as_deref(), Some("a"));
    let header = {
        let mut h = vec![0u8; 4096];
        s.read_lun(0, 4096, &mut h).unwrap();
        h
    };
    assert!(crate::gpt::GptHeader::parse(&header, 4096, Which::Primary).is_err());
}

#[test]
fn file_storage_survives_restart_with_contents_and_slot_state() {
    let dir = tempfile::tempdir().unwrap();
    let mode = StorageMode::Files(dir.path().into());
    {
        let mut s = Storage::create("t", &spec(4096), mode.clone()).unwrap();
        s.write_partition("system_a", 1 << 20, b"persisted")
            .unwrap();
        s.set_active_slot("b").unwrap();
    }
    let mut s = Storage::create("t", &spec(4096), mode).unwrap();
    let mut buf = [0u8; 9];
    s.read_partition("system_a", 1 << 20, &mut buf).unwrap();
    assert_eq!(&buf, b"persisted");
    assert_eq!(s.current_slot().as_deref(), Some("b"));
    assert_eq!(s.memory_in_use(), 0);
}
