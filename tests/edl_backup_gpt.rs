//! Backup-GPT fallback against the simulated programmer: the primary table of a LUN is
//! damaged on the phone's storage (as an interrupted table write leaves it), and the host still
//! resolves partitions by label through the backup copy in the LUN's last sector.

use protocols::firehose::FirehoseError;
use protocols::firehose::PartitionReader;
use protocols::gpt::Which;
use protocols::sim::firehose::{FirehoseOutcome, FirehoseSimConfig};
use protocols::sim::Phone;

use crate::edl::firehose_session;
use crate::edl::fixture::{noise, test_phone};

/// Overwrite bytes of LUN 0 on the phone's storage, bypassing any protocol.
fn damage(phone: &Phone, byte_offset: u64, bytes: &[u8]) {
    phone
        .lock()
        .storage
        .write_lun(0, byte_offset, bytes)
        .unwrap();
}

#[test]
fn a_damaged_primary_gpt_is_read_through_the_backup_and_both_damaged_names_the_lun() {
    let phone = test_phone(None);
    let (system, sector, last_lba) = {
        let s = phone.lock();
        let lun = s.storage.lun(0).unwrap();
        (
            s.storage.partition("system_a").unwrap(),
            u64::from(lun.sector_size()),
            lun.sectors() - 1,
        )
    };
    let content = noise(7, 3 * 4096);
    phone.write_partition("system_a", 0, &content).unwrap();
    // The header CRC of the primary copy (LBA 1, bytes 16..20) no longer matches.
    damage(&phone, sector + 16, &[0xEF, 0xBE, 0xAD, 0xDE]);

    let (mut fh, device) = firehose_session(&phone, FirehoseSimConfig::default());
    fh.configure().unwrap();
    let luns = fh.lun_count();
    let found = fh.find_partition("system_a", 0..luns).unwrap();
    assert_eq!(found.lun, 0);
    assert_eq!(found.first_sector(), system.first_lba);
    assert_eq!(found.partition.last_lba, system.last_lba);
    let damage_text = found.primary_gpt_damage.clone().expect("primary reported");
    assert!(damage_text.contains("CRC32 0xdeadbeef"), "{damage_text}");
    let table = fh.read_lun_gpt(0).unwrap();
    assert_eq!(table.copy(), Which::Backup);
    assert_eq!(table.header.my_lba, last_lba);
    // The partition found through the backup reads back what the phone holds.
    let mut reader = PartitionReader::new(&mut fh, found);
    let mut back = vec![0u8; content.len()];
    reader.read_at(0, &mut back).unwrap();
    assert!(back == content, "read through the backup GPT's location");

    // Now the backup loses its signature too: the LUN has no valid GPT, and the error says
    // which LUN and why each copy was refused.
    damage(&phone, last_lba * sector, b"NOT PART");
    let err = fh.read_lun_gpt(0).unwrap_err();
    assert!(matches!(err, FirehoseError::Gpt { lun: 0, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("LUN 0: no valid GPT: primary: "), "{text}");
    assert!(
        text.contains("backup GPT header: no \"EFI PART\""),
        "{text}"
    );
    let err = fh.find_partition("system_a", 0..luns).unwrap_err();
    assert!(
        err.to_string().contains("0 (no valid GPT: primary: "),
        "{err}"
    );

    fh.power(protocols::firehose::PowerMode::Off, 0).unwrap();
    assert_eq!(device.join().unwrap(), Ok(FirehoseOutcome::PowerOff));
}

#[test]
fn a_programmer_without_getstorageinfo_is_asked_for_the_last_sector_by_expression() {
    let phone = test_phone(None);
    let system = phone.lock().storage.partition("system_a").unwrap();
    // Signature gone from the primary header; and this programmer refuses getstorageinfo, so
    // the LUN size must come from its own NUM_DISK_SECTORS.
    damage(&phone, 4096, b"NOT PART");
    phone.fail("getstorageinfo", "Unrecognized tag <getstorageinfo>");

    let (mut fh, device) = firehose_session(&phone, FirehoseSimConfig::default());
    fh.configure().unwrap();
    let found = fh.find_partition("system_a", 0..1).unwrap();
    assert_eq!(found.first_sector(), system.first_lba);
    assert_eq!(found.partition.last_lba, system.last_lba);
    assert!(found
        .primary_gpt_damage
        .as_deref()
        .is_some_and(|d| d.contains("signature")));

    fh.power(protocols::firehose::PowerMode::Off, 0).unwrap();
    assert_eq!(device.join().unwrap(), Ok(FirehoseOutcome::PowerOff));
}
