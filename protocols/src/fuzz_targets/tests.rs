//! Corpus replay on stable: every seed and every kept crash of every target, through the same
//! bodies the fuzzer runs. A crash input lives in `fuzz/regressions/TARGET/` once its cause is
//! fixed; replaying it here is its regression test.
//!
//! `cargo test -p flashgate-protocols fuzz_targets::tests::write_seeds -- --ignored` rewrites
//! `fuzz/seeds/` from the project's own encoders (run it when a format's seeds should change).

use std::path::{Path, PathBuf};

use super::*;
use crate::fuzz_replay::{self, corpus_files};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn every_seed_and_regression_replays_cleanly() {
    fuzz_replay::assert_corpora_replay(&fuzz_dir(), TARGETS);
}

#[test]
fn every_fuzz_target_file_has_a_body_here() {
    fuzz_replay::assert_target_files_match(&fuzz_dir(), TARGETS);
}

#[test]
fn the_scripted_link_reads_in_the_given_sizes_then_disconnects() {
    let mut link = ScriptedLink {
        rest: b"abcdefg",
        read_len: 3,
    };
    let mut buf = [0u8; 16];
    assert_eq!(link.read_packet(&mut buf, Duration::ZERO).unwrap(), 3);
    assert_eq!(link.read_packet(&mut buf, Duration::ZERO).unwrap(), 3);
    assert_eq!(link.read_packet(&mut buf, Duration::ZERO).unwrap(), 1);
    assert_eq!(&buf[..1], b"g");
    assert!(matches!(
        link.read_packet(&mut buf, Duration::ZERO),
        Err(TransportError::Disconnected)
    ));
}

#[test]
fn the_gpt_body_can_make_a_changed_header_pass_its_crcs() {
    use crate::gpt::test_support::small_table;
    use crate::gpt::{GptHeader, Which};
    let table = small_table(512);
    let mut disk = table.encode().unwrap().primary;
    disk[512 + 40] ^= 1; // first usable LBA: both header and (after this) array CRCs are stale
    disk[1024 + 200] ^= 1;
    assert!(GptHeader::parse(&disk[512..1024], 512, Which::Primary).is_err());
    let fixed = with_primary_crcs(&disk, 512);
    let header = GptHeader::parse(&fixed[512..1024], 512, Which::Primary).unwrap();
    assert_eq!(header.first_usable_lba, table.first_usable_lba ^ 1);
    assert!(header.parse_entries(&fixed[1024..], Which::Primary).is_ok());
}

// ---- seeds -------------------------------------------------------------------------------

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn trim_trailing_zeros(bytes: &mut Vec<u8>) {
    let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes.truncate(used);
}

/// The seeds of the newer targets reach past the first check: every command seed is a command
/// the simulator takes, and both LP seeds hold metadata with the system partition of each slot.
#[test]
fn the_command_and_lp_seeds_parse() {
    for file in corpus_files(&fuzz_dir().join("seeds/fastboot_command")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            fastboot::Command::parse(&bytes).is_ok(),
            "{}",
            file.display()
        );
    }
    for name in ["super-empty", "super-metadata"] {
        let bytes = std::fs::read(fuzz_dir().join("seeds/lp_metadata").join(name)).unwrap();
        let mut read_at = |offset: u64, buf: &mut [u8]| -> std::io::Result<()> {
            let start = usize::try_from(offset).unwrap();
            let src = bytes
                .get(start..start + buf.len())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        };
        let (_, metadata) =
            crate::lp::read_image(&mut read_at, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
        for slot in [0, 1] {
            assert!(
                metadata.partition_for_slot("system", slot).is_some(),
                "{name}"
            );
        }
    }
}

#[test]
#[ignore = "writes fuzz/seeds/; run by hand when the seeds should change"]
fn write_seeds() {
    gpt_seeds();
    sparse_seeds();
    sahara_seeds();
    firehose_seeds();
    fastboot_seeds();
    fastboot_command_seeds();
    lp_seeds();
}

fn gpt_seeds() {
    use crate::gpt::test_support::small_table;
    use crate::gpt::{types, Guid, Partition};
    for ss in [512u32, 4096] {
        let table = small_table(ss);
        let mut seed = table.disk_sectors.to_le_bytes().to_vec();
        seed.extend_from_slice(&table.encode().unwrap().primary);
        trim_trailing_zeros(&mut seed);
        write_seed("gpt", &format!("primary-{ss}"), &seed);
        seed[7] |= 0x80; // the body rewrites the CRCs: mutations get past them
        write_seed("gpt", &format!("primary-{ss}-crcs-fixed"), &seed);
    }
    // An 8-sector disk with a 4-entry array, both copies present: the backup can be reached.
    let tiny = Gpt {
        sector_size: 512,
        disk_sectors: 8,
        disk_guid: Guid::derived("tiny"),
        first_usable_lba: 3,
        last_usable_lba: 5,
        entry_count: 4,
        partitions: vec![Partition {
            index: 0,
            type_guid: types::for_name("boot_a"),
            unique_guid: Guid::derived("boot_a"),
            first_lba: 3,
            last_lba: 5,
            attributes: 0x003f_0000_0000_0000,
            name: "boot_a".into(),
        }],
    };
    let encoded = tiny.encode().unwrap();
    let mut disk = vec![0u8; 8 * 512];
    disk[..encoded.primary.len()].copy_from_slice(&encoded.primary);
    let at = encoded.backup_lba as usize * 512;
    disk[at..at + encoded.backup.len()].copy_from_slice(&encoded.backup);
    let mut seed = 8u64.to_le_bytes().to_vec();
    seed.extend_from_slice(&disk);
    write_seed("gpt", "tiny-both-copies-512", &seed);
    seed[8 + 512 + 16] ^= 0xff; // primary header CRC
    write_seed("gpt", "tiny-primary-damaged-512", &seed);
}

fn sparse_seeds() {
    use crate::sparse::SparseWriter;
    let noise: Vec<u8> = (0..256u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut w = SparseWriter::with_crc(Vec::new(), 64, 10, 7).unwrap();
    w.write_dont_care(2).unwrap();
    w.write_raw(&noise[..192]).unwrap();
    w.write_fill(0xa1b2_c3d4, 2).unwrap();
    w.write_crc32().unwrap();
    w.write_raw(&noise[192..]).unwrap();
    w.write_dont_care(1).unwrap();
    w.write_fill(0, 1).unwrap();
    write_seed("sparse", "every-chunk-type-64", &w.finish().unwrap());

    let mut w = SparseWriter::new(Vec::new(), 4096, 1 << 20, 3).unwrap();
    w.write_raw(&[0x5a; 4096]).unwrap();
    w.write_fill(0xdead_beef, 1000).unwrap();
    w.write_dont_care((1 << 20) - 1001).unwrap();
    write_seed(
        "sparse",
        "4-gib-mostly-dont-care-4096",
        &w.finish().unwrap(),
    );
}

fn sahara_seeds() {
    use crate::sahara::packet::{ExecCommand, Hello, HelloResp, Mode};
    use crate::sahara::Status;
    let packets = [
        Packet::Hello(Hello {
            version: 2,
            version_compatible: 1,
            max_packet_len: 1024,
            mode: Mode::ImageTxPending,
        }),
        Packet::HelloResp(HelloResp {
            version: 3,
            version_compatible: 1,
            status: Status::SUCCESS,
            mode: Mode::Command,
        }),
        Packet::ReadData {
            image: 13,
            offset: 0x40,
            length: 0x2d8,
        },
        Packet::EndOfImage {
            image: 13,
            status: Status::IMAGE_AUTH_FAILURE,
        },
        Packet::Done,
        Packet::DoneResp {
            status: Mode::ImageTxComplete,
        },
        Packet::Reset,
        Packet::ResetResp,
        Packet::MemoryDebug {
            table_address: 0x8600_0000,
            table_length: 104,
        },
        Packet::MemoryRead {
            address: 0x0800_0000,
            length: 0x100,
        },
        Packet::CmdReady,
        Packet::SwitchMode {
            mode: Mode::Command,
        },
        Packet::Execute {
            command: ExecCommand::ReadChipIdV3,
        },
        Packet::ExecuteResp {
            command: ExecCommand::OemPkHashRead,
            data_length: 96,
        },
        Packet::ExecuteData {
            command: ExecCommand::SerialNumRead,
        },
        Packet::MemoryDebug64 {
            table_address: 0x1_4600_0000,
            table_length: 128,
        },
        Packet::MemoryRead64 {
            address: 0x8000_0000,
            length: 0x2000,
        },
        Packet::ReadData64 {
            image: 13,
            offset: 0x1000,
            length: 0x10_0000,
        },
        Packet::ResetStateMachine,
    ];
    for packet in packets {
        write_seed(
            "sahara_packet",
            &packet.name().to_ascii_lowercase(),
            &packet.encode(),
        );
    }
    let chip = identity::ChipIdV3 {
        chip_identifier: 0x1234_5678,
        hw_id: identity::HwId {
            msm_id: 0x0009_60e1,
            oem_id: 0,
            model_id: 0,
        },
    };
    write_seed(
        "sahara_packet",
        "answer-chip-id-v3",
        &identity::encode_chip_id_v3(chip),
    );
    let digest: Vec<u8> = (0..48u8).collect();
    write_seed(
        "sahara_packet",
        "answer-pk-hash-sha384-twice",
        &digest.repeat(2),
    );

    let regions = [
        memory_table::MemoryRegion {
            save_preferred: true,
            address: 0x8000_0000,
            length: 0x2000,
            description: "DDR CS0".into(),
            filename: "DDRCS0.BIN".into(),
        },
        memory_table::MemoryRegion {
            save_preferred: false,
            address: 0x0800_0000,
            length: 0x100,
            description: "OCIMEM".into(),
            filename: "OCIMEM.BIN".into(),
        },
    ];
    for (layout, format, name) in [
        (0u8, TableFormat::Bits32, "two-regions-32"),
        (1, TableFormat::Bits64, "two-regions-64"),
    ] {
        let mut seed = vec![layout];
        seed.extend_from_slice(&memory_table::encode_table(&regions, format));
        write_seed("sahara_memory_table", name, &seed);
    }
}

fn firehose_seeds() {
    use crate::firehose::xml::Document;
    let prolog = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n";
    let log = |text: &str| Document::new("log").attr("value", text).to_bytes();
    let mut start_up = vec![0u8];
    start_up.extend(log("INFO: Binary build date: Jun 25 2021 @ 23:36:59"));
    start_up.extend(log(firehose::END_OF_SUPPORTED_FUNCTIONS));
    start_up.extend(format!("{prolog}<data><response value=\"ACK\" MinVersionSupported=\"1\" MemoryName=\"UFS\" MaxPayloadSizeToTargetInBytes=\"1048576\" MaxXMLSizeInBytes=\"4096\" Version=\"1\" TargetName=\"8180\" /></data>").into_bytes());
    write_seed("firehose_reader", "start-up-and-configure", &start_up);

    let mut read = vec![7u8];
    read.extend(
        Document::new("response")
            .attr("value", "ACK")
            .attr("rawmode", "true")
            .to_bytes(),
    );
    read.extend_from_slice(&[0xAA; 16]);
    read.extend(
        Document::new("response")
            .attr("value", "ACK")
            .attr("rawmode", "false")
            .to_bytes(),
    );
    write_seed("firehose_reader", "read-with-raw-data", &read);

    let mut info = vec![64u8];
    info.extend(log(r#"INFO: {"storage_info": {"total_blocks":7805952, "block_size":4096, "page_size":4096, "num_physical":6, "mem_type":"UFS", "prod_name":"KLUDG4UHDB-B2D1"}}"#));
    info.extend(log(
        "INFO: Digest 0x00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF",
    ));
    info.extend(
        format!("\r\n{prolog}<data>\n  <response value=\"NAK\" rawmode=\"false\"/>\n</data>\n")
            .into_bytes(),
    );
    write_seed("firehose_reader", "storage-info-digest-nak", &info);

    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo/images/00WW");
    for name in ["rawprogram0.xml", "patch0.xml"] {
        let text = std::fs::read(demo.join(name)).unwrap();
        write_seed("firehose_package", &format!("demo-{name}"), &text);
    }
    write_seed(
        "firehose_package",
        "sparse-erase-single-image.xml",
        br#"<?xml version="1.0" ?>
<data>
  <program start_sector="8" physical_partition_number="0" file_sector_offset="0" num_partition_sectors="0" filename="system.img" sparse="true" SECTOR_SIZE_IN_BYTES="4096" label="system_a"/>
  <program start_sector="NUM_DISK_SECTORS-5." physical_partition_number="0" partofsingleimage="true" file_sector_offset="6" num_partition_sectors="5" filename="gpt_both0.bin" sparse="false" SECTOR_SIZE_IN_BYTES="4096" label="BackupGPT"/>
  <erase start_sector="316" physical_partition_number="0" num_partition_sectors="4" SECTOR_SIZE_IN_BYTES="4096"/>
  <program start_sector="300" physical_partition_number="0" num_partition_sectors="16" filename="huge.img" sparse="true" SECTOR_SIZE_IN_BYTES="4096" label="userdata"/>
</data>
"#,
    );
    write_seed(
        "firehose_package",
        "patch-disk-and-host.xml",
        br#"<?xml version="1.0" ?>
<patches>
  <patch start_sector="2" byte_offset="168" physical_partition_number="0" size_in_bytes="8" value="NUM_DISK_SECTORS-6." filename="gpt_main0.bin" SECTOR_SIZE_IN_BYTES="4096" what="host file"/>
  <patch start_sector="NUM_DISK_SECTORS-1." byte_offset="88" physical_partition_number="0" size_in_bytes="4" value="CRC32(NUM_DISK_SECTORS-5.,4096)" filename="DISK" SECTOR_SIZE_IN_BYTES="4096" what="Update Backup Header with CRC of Partition Array."/>
</patches>
"#,
    );
}

fn fastboot_seeds() {
    for (name, bytes) in [
        ("okay-size", &b"OKAY0x10000000"[..]),
        ("okay-slot", b"OKAY_a"),
        ("data", b"DATA00a00000"),
        ("data-nul", b"DATA00001000\0"),
        ("info-variable", b"INFOpartition-size:system_a: 0x4000"),
        ("fail", b"FAILUnknown variable"),
        ("text", b"TEXThello\0garbage"),
    ] {
        write_seed("fastboot_response", name, bytes);
    }
}

fn fastboot_command_seeds() {
    for (name, bytes) in [
        ("getvar", &b"getvar:max-download-size"[..]),
        ("download", b"download:00a00000"),
        ("flash", b"flash:system_a"),
        ("fetch", b"fetch:vendor_boot_a:0x1000:0x2000"),
        ("set-active", b"set_active:b"),
        ("oem", b"oem device-info"),
        ("flashing", b"flashing unlock"),
        ("update-super", b"update-super:super:wipe"),
        ("create-logical", b"create-logical-partition:system_b:4096"),
        ("reboot-fastboot", b"reboot-fastboot"),
    ] {
        write_seed("fastboot_command", name, bytes);
    }
}

/// LP metadata as lpmake writes it for a retrofit-free A/B phone: a `super_empty.img`, and the
/// start of a `super` partition up to its last backup metadata slot (what a phone reads back
/// before the logical partitions' data).
fn lp_seeds() {
    use crate::lp::{self, DeviceSpec, MetadataBuilder};
    let mut builder = MetadataBuilder::new(DeviceSpec::super_partition(64 << 20), 4096, 2).unwrap();
    builder.add_group("main_a", 24 << 20).unwrap();
    builder.add_group("main_b", 24 << 20).unwrap();
    for (name, group, size) in [
        ("system_a", "main_a", 12 << 20),
        ("vendor_a", "main_a", 4 << 20),
        ("system_b", "main_b", 12 << 20),
        ("vendor_b", "main_b", 0),
    ] {
        builder
            .add_partition(name, group, lp::attr::READONLY)
            .unwrap();
        builder.resize_partition(name, size).unwrap();
    }
    let metadata = builder.export().unwrap();
    write_seed(
        "lp_metadata",
        "super-empty",
        &lp::super_empty_image(&metadata).unwrap(),
    );
    let mut super_start = Vec::new();
    for write in lp::flash_table_writes(&metadata).unwrap() {
        let offset = usize::try_from(write.offset).unwrap();
        let end = offset + write.bytes.len();
        if super_start.len() < end {
            super_start.resize(end, 0);
        }
        super_start[offset..end].copy_from_slice(&write.bytes);
    }
    write_seed("lp_metadata", "super-metadata", &super_start);
}
