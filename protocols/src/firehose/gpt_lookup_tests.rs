//! GPT lookup against a scripted programmer, on a GPT written out byte by byte (not by our
//! encoder): a 100-sector eMMC LUN (512-byte sectors), entry arrays of 128 × 128 bytes at LBA 2
//! (primary) and LBA 67 (backup), header copies at LBA 1 and LBA 99, one partition `system_a`
//! at LBAs 40..=49.

use super::gpt_lookup::LunGpt;
use super::scripted_device::{configured_with, quick, Device};
use super::*;
use crate::gpt::Which;

const DISK_SECTORS: u64 = 100;
const BACKUP_HEADER_LBA: u64 = 99;
const BACKUP_ENTRIES_LBA: u64 = 67;
const ENTRY_SECTORS: u64 = 32;

fn emmc() -> FirehoseConfig {
    FirehoseConfig {
        storage: StorageKind::Emmc,
        ..quick()
    }
}

/// The entry array: entry 0 is `system_a` (Linux filesystem data type), the other 127 empty.
fn entries() -> Vec<u8> {
    let mut a = vec![0u8; 128 * 128];
    // Type GUID 0FC63DAF-8483-4772-8E79-3D69D8477DE4, mixed-endian as GPT stores it.
    a[..16].copy_from_slice(&[
        0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D,
        0xE4,
    ]);
    a[16..32].copy_from_slice(&[0x11; 16]); // unique GUID
    a[32..40].copy_from_slice(&[40, 0, 0, 0, 0, 0, 0, 0]); // first LBA
    a[40..48].copy_from_slice(&[49, 0, 0, 0, 0, 0, 0, 0]); // last LBA (inclusive)
    for (i, unit) in "system_a".encode_utf16().enumerate() {
        a[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
    }
    a
}

/// One header sector: `my_lba`, `alternate_lba`, entries at `entries_lba`, CRCs as the spec
/// computes them (header CRC over its 92 bytes with the CRC field zero).
fn header(my_lba: u8, alternate_lba: u8, entries_lba: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&[0x00, 0x00, 0x01, 0x00]); // revision 1.0
    h[12..16].copy_from_slice(&[92, 0, 0, 0]); // header size
    h[24] = my_lba;
    h[32] = alternate_lba;
    h[40] = 34; // first usable LBA
    h[48] = 66; // last usable LBA
    h[56..72].copy_from_slice(&[0x22; 16]); // disk GUID
    h[72] = entries_lba;
    h[80..84].copy_from_slice(&[128, 0, 0, 0]); // entry count
    h[84..88].copy_from_slice(&[128, 0, 0, 0]); // entry size
    h[88..92].copy_from_slice(&crc32fast::hash(&entries()).to_le_bytes());
    let crc = crc32fast::hash(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

fn primary_with_bad_crc() -> Vec<u8> {
    let mut h = header(1, 99, 2);
    h[16..20].copy_from_slice(&[0xEF, 0xBE, 0xAD, 0xDE]);
    h
}

fn storage_info(d: &mut Device, total_blocks: Option<u64>) {
    let g = d.expect("getstorageinfo");
    assert_eq!(g.attr("physical_partition_number"), Some("0"));
    let total = total_blocks.map_or(String::new(), |t| format!("\"total_blocks\":{t}, "));
    d.log(&format!(
        r#"INFO: {{"storage_info": {{{total}"block_size":512, "page_size":512, "num_physical":1, "mem_type":"eMMC"}}}}"#
    ));
    d.respond("ACK", false);
}

#[test]
fn a_valid_primary_is_used_without_asking_for_the_disk_size() {
    let (mut fh, dev) = configured_with(emmc(), 512 * 1024, |d| {
        d.serve_read(0, 1, 1, &header(1, 99, 2));
        d.serve_read(0, 2, ENTRY_SECTORS, &entries());
    });
    let table = fh.read_lun_gpt(0).unwrap();
    assert_eq!(table.copy(), Which::Primary);
    assert_eq!(table.partitions.len(), 1);
    dev.join().unwrap();
}

#[test]
fn a_primary_with_a_bad_crc_falls_back_to_the_backup_in_the_last_sector() {
    let (mut fh, dev) = configured_with(emmc(), 512 * 1024, |d| {
        d.serve_read(0, 1, 1, &primary_with_bad_crc());
        storage_info(d, Some(DISK_SECTORS));
        d.serve_read(0, BACKUP_HEADER_LBA, 1, &header(99, 1, 67));
        d.serve_read(0, BACKUP_ENTRIES_LBA, ENTRY_SECTORS, &entries());
    });
    let found = fh.find_partition("system_a", 0..1).unwrap();
    assert_eq!(found.lun, 0);
    assert_eq!((found.first_sector(), found.num_sectors()), (40, 10));
    assert_eq!(found.size_bytes(), 10 * 512);
    let damage = found.primary_gpt_damage.expect("primary reported damaged");
    assert!(
        damage.contains("primary GPT header: CRC32 0xdeadbeef"),
        "{damage}"
    );
    dev.join().unwrap();
}

#[test]
fn a_primary_without_a_signature_falls_back_too() {
    let (mut fh, dev) = configured_with(emmc(), 512 * 1024, |d| {
        d.serve_read(0, 1, 1, &[0u8; 512]);
        storage_info(d, Some(DISK_SECTORS));
        d.serve_read(0, BACKUP_HEADER_LBA, 1, &header(99, 1, 67));
        d.serve_read(0, BACKUP_ENTRIES_LBA, ENTRY_SECTORS, &entries());
    });
    let LunGpt {
        header,
        partitions,
        primary_damage,
        ..
    } = fh.read_lun_gpt(0).unwrap();
    assert_eq!(header.my_lba, 99);
    assert_eq!(header.entries_lba, 67);
    assert_eq!(partitions[0].name, "system_a");
    assert!(primary_damage.unwrap().contains("signature"));
    dev.join().unwrap();
}

#[test]
fn both_copies_bad_is_an_error_naming_the_lun_and_both_reasons() {
    let (mut fh, dev) = configured_with(emmc(), 512 * 1024, |d| {
        d.serve_read(0, 1, 1, &primary_with_bad_crc());
        storage_info(d, Some(DISK_SECTORS));
        // A backup header that claims another LBA (a LUN resized after the table was made).
        d.serve_read(0, BACKUP_HEADER_LBA, 1, &header(98, 1, 67));
    });
    let err = fh.read_lun_gpt(0).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FirehoseError::Gpt { lun: 0, .. }), "{err:?}");
    assert!(text.starts_with("LUN 0: no valid GPT: primary: "), "{text}");
    assert!(
        text.contains(
            "backup GPT header: inconsistent layout: header at LBA 99 says it is at LBA 98"
        ),
        "{text}"
    );
    dev.join().unwrap();
}

#[test]
fn without_a_disk_size_the_last_sector_is_asked_for_as_num_disk_sectors_minus_one() {
    let (mut fh, dev) = configured_with(emmc(), 512 * 1024, |d| {
        d.serve_read(0, 1, 1, &primary_with_bad_crc());
        storage_info(d, None);
        d.serve_read_from(0, "NUM_DISK_SECTORS-1.", 1, &header(99, 1, 67));
        d.serve_read(0, BACKUP_HEADER_LBA, 1, &header(99, 1, 67));
        d.serve_read(0, BACKUP_ENTRIES_LBA, ENTRY_SECTORS, &entries());
    });
    let found = fh.find_partition("system_a", 0..1).unwrap();
    assert_eq!((found.first_sector(), found.num_sectors()), (40, 10));
    assert!(found.primary_gpt_damage.is_some());
    dev.join().unwrap();
}

#[test]
fn without_a_disk_size_or_a_backup_at_the_end_the_error_says_why() {
    let (mut fh, dev) = configured_with(emmc(), 512 * 1024, |d| {
        d.serve_read(0, 1, 1, &primary_with_bad_crc());
        storage_info(d, None);
        d.serve_read_from(0, "NUM_DISK_SECTORS-1.", 1, &[0u8; 512]);
    });
    let err = fh.find_partition("system_a", 0..1).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, FirehoseError::PartitionNotFound { .. }),
        "{err:?}"
    );
    assert!(text.contains("0 (no valid GPT: primary: "), "{text}");
    assert!(text.contains("no total_blocks"), "{text}");
    assert!(
        text.contains(
            "NUM_DISK_SECTORS-1 gave no backup header: backup GPT header: no \"EFI PART\""
        ),
        "{text}"
    );
    dev.join().unwrap();
}

#[test]
fn several_labels_are_found_reading_each_lun_once_and_no_lun_past_the_last_one_needed() {
    let (mut fh, dev) = configured_with(emmc(), 512 * 1024, |d| {
        d.serve_read(0, 1, 1, &header(1, 99, 2));
        d.serve_read(0, 2, ENTRY_SECTORS, &entries());
        // LUN 1 is not there: the programmer refuses the read.
        d.expect("read");
        d.respond("NAK", false);
        // The second lookup needs LUN 0 only.
        d.serve_read(0, 1, 1, &header(1, 99, 2));
        d.serve_read(0, 2, ENTRY_SECTORS, &entries());
    });
    let found = fh.find_partitions(&["system_a", "boot_a"], 0..2).unwrap();
    assert_eq!(found.get("system_a").map(|p| p.first_sector()), Some(40));
    assert!(found.get("boot_a").is_none());
    assert_eq!(found.searched, vec!["0".to_string()]);
    let err = found.require("boot_a").unwrap_err();
    assert_eq!(
        err.to_string(),
        "partition `boot_a` is in none of the GPTs of LUNs 0"
    );
    let found = fh.find_partitions(&["system_a"], 0..8).unwrap();
    assert_eq!(found.partitions.len(), 1);
    dev.join().unwrap();
}
