//! fastbootd on a dynamic-partition phone, and the bootloader refusing what belongs to it:
//! literal commands over an in-memory link, what they wrote read back through the LP metadata.

use super::tests::{cmd, download, one, start, T};
use super::*;
use crate::lp::{self, attr, Metadata, MetadataBuilder};
use crate::sim::dynamic;
use crate::sim::phone::{Phone, PhoneMode};
use crate::sparse::SparseWriter;
use crate::transport::memory::MemoryLink;

const SUPER_SIZE: u64 = 64 << 20;

fn dynamic_phone(mode: PhoneMode) -> Phone {
    Phone::builder()
        .serial("SIMDYN01")
        .dynamic_partitions(SUPER_SIZE)
        .mode(mode)
        .build()
        .unwrap()
}

fn metadata(phone: &Phone, slot: u32) -> Metadata {
    dynamic::read_slot(&mut phone.lock().storage, slot).unwrap()
}

/// `len` bytes of a logical partition, read through the metadata of slot 0.
fn logical_bytes(phone: &Phone, name: &str, len: usize) -> Vec<u8> {
    let m = metadata(phone, 0);
    let mut out = vec![0u8; len];
    let mut read_at = |offset: u64, buf: &mut [u8]| {
        phone
            .read_partition(dynamic::SUPER, offset, buf)
            .map_err(std::io::Error::other)
    };
    m.read_partition_at(m.find(name).unwrap(), &mut read_at, 0, &mut out)
        .unwrap();
    out
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

fn fastbootd(phone: &Phone) -> MemoryLink {
    phone.set_mode(PhoneMode::Fastbootd);
    start(phone.clone(), FastbootConfig::default()).0
}

#[test]
fn the_bootloader_refuses_logical_partitions_and_flashes_super_whole() {
    let phone = dynamic_phone(PhoneMode::Bootloader);
    let (mut host, _dev) = start(phone.clone(), FastbootConfig::default());
    assert_eq!(one(&mut host, "getvar:is-userspace"), "OKAYno");
    assert_eq!(
        one(&mut host, "getvar:is-logical:system_a"),
        "FAILGetVar Variable Not found"
    );
    assert_eq!(one(&mut host, "getvar:is-logical:boot_a"), "OKAYno");
    assert_eq!(
        one(&mut host, "getvar:super-partition-name"),
        "FAILGetVar Variable Not found"
    );
    assert_eq!(one(&mut host, "getvar:has-slot:system"), "OKAYno");
    download(&mut host, &[7u8; 4096]);
    for name in ["flash:system_a", "flash:system", "erase:vendor_b"] {
        assert_eq!(
            one(&mut host, name),
            "FAILPartition should be flashed in fastbootd",
            "{name}"
        );
    }
    assert_eq!(
        one(&mut host, "create-logical-partition:x:4096"),
        "FAILunknown command"
    );
    // A whole super image (here: a fresh table from a factory super.img) goes to `super`.
    let mut b = MetadataBuilder::from_metadata(&metadata(&phone, 0)).unwrap();
    b.remove_partition("odm_a").unwrap();
    let table = b.export().unwrap();
    let mut image = vec![0u8; 2 << 20];
    for w in lp::flash_table_writes(&table).unwrap() {
        image[w.offset as usize..w.offset as usize + w.bytes.len()].copy_from_slice(&w.bytes);
    }
    download(&mut host, &image);
    assert_eq!(one(&mut host, "flash:super"), "OKAY");
    assert_eq!(metadata(&phone, 1), table);
}

#[test]
fn fastbootd_answers_the_logical_variables() {
    let phone = dynamic_phone(PhoneMode::Bootloader);
    let mut host = fastbootd(&phone);
    let m = metadata(&phone, 0);
    let system_a = m.partition_size(m.find("system_a").unwrap());
    assert_eq!(one(&mut host, "getvar:is-userspace"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:is-logical:system_a"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:is-logical:boot_a"), "OKAYno");
    assert_eq!(
        one(&mut host, "getvar:is-logical:nope"),
        "FAILPartition not found"
    );
    assert_eq!(one(&mut host, "getvar:super-partition-name"), "OKAYsuper");
    assert_eq!(
        one(&mut host, "getvar:partition-size:system_a"),
        format!("OKAY0x{system_a:X}")
    );
    assert_eq!(one(&mut host, "getvar:partition-size:vendor_b"), "OKAY0x0");
    assert_eq!(one(&mut host, "getvar:partition-type:system_a"), "OKAYraw");
    assert_eq!(
        one(&mut host, "getvar:partition-size:nope"),
        "FAILCould not open partition"
    );
    assert_eq!(one(&mut host, "getvar:has-slot:system"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:has-slot:boot"), "OKAYyes");
    assert_eq!(one(&mut host, "getvar:max-download-size"), "OKAY0x10000000");
    assert_eq!(one(&mut host, "getvar:nonexistent"), "FAILUnknown variable");
    let all = cmd(&mut host, "getvar:all");
    assert_eq!(all.last().unwrap(), "OKAY");
    for line in [
        format!("INFOpartition-size:system_a:0x{system_a:X}"),
        "INFOis-logical:system_a:yes".to_string(),
        "INFOis-logical:super:no".to_string(),
    ] {
        assert!(all.contains(&line), "{line} in {all:?}");
    }
}

#[test]
fn create_resize_flash_and_delete_edit_every_slot_and_write_through_the_extents() {
    let phone = dynamic_phone(PhoneMode::Bootloader);
    let mut host = fastbootd(&phone);
    assert_eq!(
        one(&mut host, "create-logical-partition:extra_a:8192"),
        "OKAYPartition created"
    );
    assert_eq!(
        one(&mut host, "create-logical-partition:extra_a:8192"),
        "FAILPartition already exists"
    );
    // Interleave two partitions so `extra_a` ends up in two extents.
    assert_eq!(
        one(&mut host, "create-logical-partition:spacer_a:4096"),
        "OKAYPartition created"
    );
    assert_eq!(
        one(&mut host, "resize-logical-partition:extra_a:3000000"),
        "OKAYPartition resized"
    );
    let m = metadata(&phone, 0);
    assert_eq!(m, metadata(&phone, 1), "both slots hold the edit");
    let extra = m.find("extra_a").unwrap();
    assert_eq!(extra.num_extents, 2);
    assert_eq!(m.partition_size(extra), 3_002_368, "rounded up to 4 KiB");
    assert_eq!(extra.attributes, 0);
    assert_eq!(m.group_of(extra).unwrap().name, "default");
    // A sparse image whose RAW chunk spans both extents.
    let raw = pattern(9, 700 * 4096);
    let blocks = (raw.len() / 4096) as u32;
    let mut w = SparseWriter::new(Vec::new(), 4096, blocks, 2).unwrap();
    w.write_raw(&raw[..(blocks as usize - 16) * 4096]).unwrap();
    w.write_fill(0x0102_0304, 16).unwrap();
    let sparse = w.finish().unwrap();
    download(&mut host, &sparse);
    assert_eq!(one(&mut host, "flash:extra_a"), "OKAY");
    let back = logical_bytes(&phone, "extra_a", raw.len());
    let fill_at = (blocks as usize - 16) * 4096;
    assert!(back[..fill_at] == raw[..fill_at]);
    assert!(back[fill_at..].chunks(4).all(|c| c == [4, 3, 2, 1]));
    // Unsuffixed names resolve to the current slot; a raw image larger than it is refused.
    download(&mut host, &raw[..5000]);
    assert_eq!(one(&mut host, "flash:extra"), "OKAY");
    assert_eq!(logical_bytes(&phone, "extra_a", 5000), raw[..5000]);
    download(&mut host, &vec![1u8; 3_100_000]);
    assert!(one(&mut host, "flash:extra_a").starts_with("FAILImage size 3100000 exceeds"));
    assert_eq!(one(&mut host, "erase:extra_a"), "OKAY");
    assert!(logical_bytes(&phone, "extra_a", raw.len())
        .iter()
        .all(|&b| b == 0));
    assert_eq!(
        one(&mut host, "resize-logical-partition:extra_a:1000000000"),
        "FAILNot enough space to resize partition"
    );
    assert_eq!(
        one(&mut host, "resize-logical-partition:nope:0"),
        "FAILPartition does not exist"
    );
    assert_eq!(
        one(&mut host, "create-logical-partition:huge:1000000000"),
        "FAILNot enough space for partition"
    );
    assert_eq!(
        one(
            &mut host,
            &format!("create-logical-partition:{}:0", "n".repeat(37))
        ),
        "FAILFailed to add partition"
    );
    assert_eq!(
        one(&mut host, "delete-logical-partition:extra_a"),
        "OKAYPartition deleted"
    );
    assert_eq!(
        one(&mut host, "delete-logical-partition:extra_a"),
        "OKAYPartition deleted",
        "fastbootd deletes a missing partition without complaint"
    );
    assert!(metadata(&phone, 1).partition("extra_a").is_none());
    phone.lock().identity.unlocked = false;
    assert_eq!(
        one(&mut host, "create-logical-partition:x:0"),
        "FAILCommand not available on locked devices"
    );
    assert_eq!(
        one(&mut host, "flash:system_a"),
        "FAILFlashing is not allowed on locked devices"
    );
}

#[test]
fn flashing_cancels_a_snapshot_of_the_partition() {
    let phone = dynamic_phone(PhoneMode::Bootloader);
    let mut m = metadata(&phone, 0);
    let i = m
        .partitions
        .iter()
        .position(|p| p.name == "vendor_a")
        .unwrap();
    m.partitions[i].attributes |= attr::UPDATED;
    m.minor_version = m.minor_version.max(lp::VERSION_FOR_UPDATED_ATTR);
    dynamic::write_slots(&mut phone.lock().storage, &m, 2).unwrap();
    let mut host = fastbootd(&phone);
    download(&mut host, &[5u8; 4096]);
    assert_eq!(one(&mut host, "flash:vendor_a"), "OKAY");
    let after = metadata(&phone, 1);
    assert_eq!(after.find("vendor_a").unwrap().attributes, attr::READONLY);
}

/// A `super_empty.img` as an AOSP build makes it for this phone: the same device and groups,
/// the partitions without extents.
fn super_empty_for(phone: &Phone, drop: &str) -> Vec<u8> {
    let m = metadata(phone, 0);
    let mut b = MetadataBuilder::from_metadata(&m).unwrap();
    for p in &m.partitions {
        b.resize_partition(&p.name, 0).unwrap();
    }
    b.remove_partition(drop).unwrap();
    lp::super_empty_image(&b.export().unwrap()).unwrap()
}

#[test]
fn update_super_keeps_the_other_slot_and_wipe_replaces_everything() {
    let phone = dynamic_phone(PhoneMode::Bootloader);
    let mut host = fastbootd(&phone);
    // Give slot b something to keep.
    assert_eq!(
        one(&mut host, "resize-logical-partition:system_b:1048576"),
        "OKAYPartition resized"
    );
    let before = metadata(&phone, 0);
    let empty = super_empty_for(&phone, "odm_a");
    download(&mut host, &empty);
    assert_eq!(
        one(&mut host, "update-super:super"),
        "OKAYSuccessfully updated partition table"
    );
    let after = metadata(&phone, 0);
    assert_eq!(after, metadata(&phone, 1));
    assert!(after.partition("odm_a").is_none());
    assert_eq!(after.partition_size(after.find("system_a").unwrap()), 0);
    let extents = |m: &Metadata, name: &str| m.partition_extents(m.find(name).unwrap()).to_vec();
    assert_eq!(extents(&after, "system_b"), extents(&before, "system_b"));
    // The download was consumed.
    assert_eq!(
        one(&mut host, "update-super:super"),
        "FAILNo data available"
    );
    download(&mut host, &empty);
    assert_eq!(
        one(&mut host, "update-super:super:wipe"),
        "OKAYSuccessfully flashed partition table"
    );
    let wiped = metadata(&phone, 1);
    assert_eq!(wiped.partition_size(wiped.find("system_b").unwrap()), 0);
    download(&mut host, &[0u8; 8192]);
    assert_eq!(
        one(&mut host, "update-super:super"),
        "FAILData is not a valid logical partition metadata image"
    );
    download(&mut host, &empty);
    assert_eq!(
        one(&mut host, "update-super:nope"),
        "FAILCannot find nope, build may be missing broken or missing boot_devices"
    );
    // A table for a bigger super is not this phone's: the other slot cannot be kept in it,
    // and it cannot be flashed either.
    let other = dynamic::DynamicLayout::new(SUPER_SIZE * 2)
        .factory_metadata(SUPER_SIZE * 2, &["a".into(), "b".into()])
        .unwrap();
    download(&mut host, &lp::super_empty_image(&other).unwrap());
    assert_eq!(
        one(&mut host, "update-super:super"),
        "FAILOld partitions are not compatible with the new super layout; wipe needed"
    );
    download(&mut host, &lp::super_empty_image(&other).unwrap());
    assert_eq!(
        one(&mut host, "update-super:super:wipe"),
        "FAILUnable to flash new partition table"
    );
    // Same device, other geometry: liblp will not update a table in place across geometries.
    let current = metadata(&phone, 0);
    let mut b = MetadataBuilder::new(
        lp::DeviceSpec::super_partition(SUPER_SIZE),
        2 * lp::DEFAULT_METADATA_MAX_SIZE,
        dynamic::AB_METADATA_SLOTS,
    )
    .unwrap();
    for g in current
        .groups
        .iter()
        .filter(|g| g.name != lp::DEFAULT_GROUP)
    {
        b.add_group(&g.name, g.maximum_size).unwrap();
    }
    download(
        &mut host,
        &lp::super_empty_image(&b.export().unwrap()).unwrap(),
    );
    assert_eq!(
        one(&mut host, "update-super:super"),
        "FAILUnable to write new partition table"
    );
}

#[test]
fn reboot_fastboot_goes_through_the_lifecycle_and_back() {
    let phone = dynamic_phone(PhoneMode::Bootloader);
    let mut device = FastbootDevice::new(phone.clone(), FastbootConfig::default());
    let (mut host, mut dev, _ctl) = crate::transport::memory::pair("fbd");
    let served = std::thread::spawn(move || (device.serve(&mut dev), dev));
    host.write(b"reboot-fastboot", T).unwrap();
    let mut buf = [0u8; 64];
    let n = host.read_packet(&mut buf, T).unwrap();
    assert_eq!(&buf[..n], b"OKAY");
    assert!(matches!(
        served.join().unwrap().0,
        SessionEnd::Reboot(RebootTo::Fastbootd)
    ));
    let t = phone.take_transition().unwrap();
    assert_eq!(
        (t.from, t.mode),
        (PhoneMode::Bootloader, PhoneMode::Fastbootd)
    );
    let (mut host, served) = start(phone.clone(), FastbootConfig::default());
    assert_eq!(one(&mut host, "getvar:is-userspace"), "OKAYyes");
    assert_eq!(one(&mut host, "reboot-bootloader"), "OKAY");
    assert!(matches!(
        served.join().unwrap().0,
        SessionEnd::Reboot(RebootTo::Bootloader)
    ));
    assert_eq!(phone.mode(), PhoneMode::Bootloader);
}
