//! The host's fastbootd API against the simulated dynamic-partition phone, in memory: the two
//! modes and the reboot between them, `update-super`, logical partitions created, resized,
//! flashed (raw and sparse, slot-suffixed, resized first) and deleted — checked through the LP
//! metadata in the phone's `super` — and every refusal of a command made in the wrong mode.

use std::io::Cursor;
use std::thread::{self, JoinHandle};

use super::*;
use crate::lp::{self, attr, DeviceSpec, Metadata, MetadataBuilder};
use crate::sim::dynamic::{self, SUPER};
use crate::sim::{
    FastbootConfig, FastbootDevice, FaultAction, Phone, PhoneMode, RebootTo, SessionEnd,
};
use crate::transport::memory::{self, LinkControl, MemoryLink};

const SUPER_SIZE: u64 = 64 << 20;

fn dynamic_phone() -> Phone {
    Phone::builder()
        .serial("FBDHOST1")
        .dynamic_partitions(SUPER_SIZE)
        .boots_to(PhoneMode::Bootloader)
        .build()
        .unwrap()
}

/// One host session with the phone, served on a thread until the host hangs up or the phone
/// ends the session (a reboot).
struct Session {
    fb: Fastboot<MemoryLink>,
    control: LinkControl,
    /// The outcome, and the device end: dropped by the thread, it would unplug the link before
    /// the host read the last answer (the OKAY of a reboot).
    served: JoinHandle<(SessionEnd, MemoryLink)>,
}

fn connect(phone: &Phone) -> Session {
    let (host, mut end, control) = memory::pair("fbd-phone");
    let mut device = FastbootDevice::new(phone.clone(), FastbootConfig::default());
    let served = thread::spawn(move || (device.serve(&mut end), end));
    Session {
        fb: Fastboot::new(host),
        control,
        served,
    }
}

impl Session {
    fn end(self) -> SessionEnd {
        drop(self.fb);
        self.served.join().unwrap().0
    }
}

/// A session with the phone already in fastbootd, reached the way a host reaches it.
fn fastbootd(phone: &Phone) -> Session {
    let mut s = connect(phone);
    s.fb.reboot_fastboot().unwrap();
    assert_rebooted(s.end(), RebootTo::Fastbootd);
    connect(phone)
}

fn assert_rebooted(end: SessionEnd, to: RebootTo) {
    assert!(matches!(end, SessionEnd::Reboot(t) if t == to), "{end:?}");
}

fn metadata(phone: &Phone, slot: u32) -> Metadata {
    dynamic::read_slot(&mut phone.lock().storage, slot).unwrap()
}

fn size_of(m: &Metadata, name: &str) -> u64 {
    m.partition_size(m.find(name).unwrap())
}

/// The first `len` bytes of logical partition `name`, read through slot 0's metadata.
fn logical_bytes(phone: &Phone, name: &str, len: usize) -> Vec<u8> {
    let m = metadata(phone, 0);
    let mut out = vec![0u8; len];
    let mut read_at = |offset: u64, buf: &mut [u8]| {
        phone
            .read_partition(SUPER, offset, buf)
            .map_err(std::io::Error::other)
    };
    m.read_partition_at(m.find(name).unwrap(), &mut read_at, 0, &mut out)
        .unwrap();
    out
}

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8)
        .collect()
}

/// `data` as an Android sparse image (RAW chunks, FILL for repeated words).
fn sparse_of(data: &[u8]) -> Vec<u8> {
    let plan = crate::sparse::ChunkPlan::open(&mut Cursor::new(data)).unwrap();
    let mut out = Vec::new();
    plan.whole()
        .write_to(&mut Cursor::new(data), &mut out)
        .unwrap();
    out
}

/// `super_empty.img` for this phone as an AOSP build writes it: one group per slot,
/// `partitions` in both slots, no extents.
fn super_empty(partitions: &[&str]) -> Vec<u8> {
    let mut b = MetadataBuilder::new(DeviceSpec::super_partition(SUPER_SIZE), 65536, 3).unwrap();
    for slot in ["_a", "_b"] {
        let group = format!("qti_dynamic_partitions{slot}");
        b.add_group(&group, SUPER_SIZE / 2 - (4 << 20)).unwrap();
        for name in partitions {
            b.add_partition(&format!("{name}{slot}"), &group, attr::READONLY)
                .unwrap();
        }
    }
    lp::super_empty_image(&b.export().unwrap()).unwrap()
}

fn needs(err: &FastbootError) -> FastbootMode {
    match err {
        FastbootError::WrongMode { needs, .. } => *needs,
        other => panic!("expected a wrong-mode refusal, got {other:?}"),
    }
}

#[test]
fn the_modes_answer_for_themselves_and_reboot_fastboot_reaches_fastbootd() {
    let phone = dynamic_phone();
    let mut s = connect(&phone);
    assert_eq!(s.fb.mode().unwrap(), FastbootMode::Bootloader);
    assert!(!s.fb.is_userspace().unwrap());
    // The bootloader knows no logical partition; it knows its GPT.
    assert_eq!(
        s.fb.partition_kind("system_a").unwrap(),
        PartitionKind::Unknown
    );
    assert_eq!(
        s.fb.partition_kind("boot_a").unwrap(),
        PartitionKind::Physical
    );
    assert_eq!(
        s.fb.super_partition_name().unwrap(),
        DEFAULT_SUPER_PARTITION
    );
    s.fb.reboot_fastboot().unwrap();
    assert_rebooted(s.end(), RebootTo::Fastbootd);

    let mut s = connect(&phone);
    assert_eq!(s.fb.mode().unwrap(), FastbootMode::Fastbootd);
    assert!(s.fb.is_logical("system_a").unwrap());
    assert!(s.fb.is_logical("vendor_b").unwrap());
    assert!(!s.fb.is_logical("boot_a").unwrap());
    assert_eq!(s.fb.partition_kind("nope").unwrap(), PartitionKind::Unknown);
    assert_eq!(s.fb.super_partition_name().unwrap(), "super");
    let identity = s.fb.identify().unwrap();
    assert_eq!(identity.is_userspace, Some(true));
    s.fb.reboot(RebootTarget::Bootloader).unwrap();
    assert_rebooted(s.end(), RebootTo::Bootloader);
    let mut s = connect(&phone);
    assert_eq!(s.fb.mode().unwrap(), FastbootMode::Bootloader);
    s.end();
}

#[test]
fn update_super_with_wipe_installs_the_table_of_super_empty() {
    let phone = dynamic_phone();
    let image = super_empty(&["system", "vendor", "product"]);
    let expected = lp::read_super_empty(&mut |offset: u64, buf: &mut [u8]| {
        let start = offset as usize;
        buf.copy_from_slice(&image[start..start + buf.len()]);
        Ok(())
    })
    .unwrap();
    let mut s = fastbootd(&phone);
    let reply =
        s.fb.update_super(&mut Cursor::new(&image), image.len() as u64, true)
            .unwrap();
    assert_eq!(reply.value, "Successfully flashed partition table");
    for slot in 0..3 {
        assert_eq!(metadata(&phone, slot), expected, "slot {slot}");
    }
    assert!(
        !s.fb.is_logical("odm_a").unwrap(),
        "the factory's odm is gone"
    );
    assert!(s.fb.is_logical("product_b").unwrap());
    s.end();
}

/// Without `wipe`, fastbootd keeps the other slot's partitions (here: `system_b`'s extents).
#[test]
fn update_super_without_wipe_keeps_the_other_slot() {
    let phone = dynamic_phone();
    let mut s = fastbootd(&phone);
    s.fb.resize_logical_partition("system_b", 1 << 20).unwrap();
    let before = metadata(&phone, 0);
    let image = super_empty(&["system", "vendor"]);
    let reply =
        s.fb.update_super(&mut Cursor::new(&image), image.len() as u64, false)
            .unwrap();
    assert_eq!(reply.value, "Successfully updated partition table");
    let after = metadata(&phone, 0);
    let extents = |m: &Metadata| m.partition_extents(m.find("system_b").unwrap()).to_vec();
    assert_eq!(extents(&after), extents(&before));
    assert_eq!(
        size_of(&after, "system_a"),
        0,
        "this slot's comes from super_empty"
    );
    assert!(after.partition("odm_a").is_none());
    s.end();
}

#[test]
fn logical_partitions_created_resized_flashed_and_deleted() {
    let phone = dynamic_phone();
    let mut s = fastbootd(&phone);
    let image = super_empty(&["system", "vendor", "product"]);
    s.fb.update_super(&mut Cursor::new(&image), image.len() as u64, false)
        .unwrap();

    s.fb.create_logical_partition("extra_a", 8192).unwrap();
    assert_eq!(size_of(&metadata(&phone, 0), "extra_a"), 8192);
    s.fb.resize_logical_partition("extra_a", 1 << 20).unwrap();
    let m = metadata(&phone, 0);
    assert_eq!(size_of(&m, "extra_a"), 1 << 20);
    assert_eq!(m, metadata(&phone, 1), "every slot's metadata is edited");

    // A raw image to a name given in full: resized to the image (rounded to the block).
    let extra = pattern(1, 300_000);
    let report =
        s.fb.flash_image(
            "extra_a",
            &mut Cursor::new(&extra),
            &FlashOptions::default(),
        )
        .unwrap();
    assert_eq!(report.partitions, vec!["extra_a"]);
    assert_eq!(report.resized_to, Some(300_000));
    assert_eq!(size_of(&metadata(&phone, 0), "extra_a"), 303_104);
    assert!(logical_bytes(&phone, "extra_a", extra.len()) == extra);

    // A sparse image to `system`: the current slot's, resized to what it expands to.
    let mut system = pattern(2, 5 << 20);
    system[(1 << 20)..(2 << 20)].fill(0);
    let sparse = sparse_of(&system);
    assert!(sparse.len() < system.len());
    let report =
        s.fb.flash_image(
            "system",
            &mut Cursor::new(&sparse),
            &FlashOptions::default(),
        )
        .unwrap();
    assert_eq!(report.partitions, vec!["system_a"]);
    assert_eq!(report.kind, ImageKind::Sparse);
    assert_eq!(report.resized_to, Some(system.len() as u64));
    assert_eq!(size_of(&metadata(&phone, 0), "system_a"), 5 << 20);
    assert!(logical_bytes(&phone, "system_a", system.len()) == system);

    // The other slot, chosen by the caller; over the download limit, so in sparse pieces.
    let vendor = pattern(3, 3 << 20);
    let options = FlashOptions {
        slot: SlotChoice::Slot("b".into()),
        max_download_size: Some(1 << 20),
        ..FlashOptions::default()
    };
    let report =
        s.fb.flash_image("vendor", &mut Cursor::new(&vendor), &options)
            .unwrap();
    assert_eq!(report.partitions, vec!["vendor_b"]);
    assert!(report.pieces > 1, "{report:?}");
    let m = metadata(&phone, 0);
    assert_eq!(size_of(&m, "vendor_b"), 3 << 20);
    let mut back = vec![0u8; vendor.len()];
    let mut read_at = |offset: u64, buf: &mut [u8]| {
        phone
            .read_partition(SUPER, offset, buf)
            .map_err(std::io::Error::other)
    };
    m.read_partition_at(m.find("vendor_b").unwrap(), &mut read_at, 0, &mut back)
        .unwrap();
    assert!(back == vendor);

    // A physical partition from fastbootd: written in place, nothing resized.
    let boot = pattern(4, 64 << 10);
    let report =
        s.fb.flash_image("boot", &mut Cursor::new(&boot), &FlashOptions::default())
            .unwrap();
    assert_eq!(
        (report.partitions[0].as_str(), report.resized_to),
        ("boot_a", None)
    );
    let mut back = vec![0u8; boot.len()];
    phone.read_partition("boot_a", 0, &mut back).unwrap();
    assert!(back == boot);

    s.fb.delete_logical_partition("extra_a").unwrap();
    for slot in [0, 1] {
        assert!(metadata(&phone, slot).partition("extra_a").is_none());
    }
    assert!(!s.fb.is_logical("extra_a").unwrap());
    s.end();
}

/// Everything that edits `super` or writes a logical partition, asked of the bootloader.
#[test]
fn the_bootloader_refuses_what_needs_fastbootd() {
    let phone = dynamic_phone();
    let before = metadata(&phone, 0);
    let mut s = connect(&phone);
    let image = super_empty(&["system"]);

    let err =
        s.fb.update_super(&mut Cursor::new(&image), image.len() as u64, true)
            .unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Fastbootd);
    assert_eq!(
        err.to_string(),
        "`update-super` works only in fastbootd and the phone is in its bootloader \
         (is-userspace: no): reboot to fastbootd first (`reboot fastboot`)"
    );
    let err = s.fb.create_logical_partition("extra_a", 4096).unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Fastbootd);
    assert!(err
        .to_string()
        .starts_with("`create-logical-partition` works only"));
    let err = s.fb.resize_logical_partition("system_a", 4096).unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Fastbootd);
    let err = s.fb.delete_logical_partition("system_a").unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Fastbootd);
    let nothing_downloaded = s.control.host_bytes_written();
    assert!(nothing_downloaded < 200, "{nothing_downloaded} bytes sent");

    // The simulated bootloader, like ABL, does not know `is-logical` for logical names: the
    // image goes, and the bootloader's own refusal comes back typed.
    let system = pattern(5, 8192);
    let err =
        s.fb.flash_image(
            "system",
            &mut Cursor::new(&system),
            &FlashOptions::default(),
        )
        .unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Fastbootd);
    assert_eq!(
        err.to_string(),
        "`system` is a logical partition (the bootloader answered \"Partition should be \
         flashed in fastbootd\"): reboot to fastbootd first (`reboot fastboot`)"
    );
    let err = s.fb.erase("vendor_b").unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Fastbootd);
    assert!(
        err.to_string()
            .starts_with("`vendor_b` is a logical partition (the bootloader answered"),
        "{err}"
    );
    assert_eq!(metadata(&phone, 0), before, "nothing changed in super");
    s.end();
}

/// A bootloader that does answer `is-logical` for logical names is believed before the image
/// is sent.
#[test]
fn a_bootloader_that_knows_is_logical_is_refused_before_the_download() {
    let phone = dynamic_phone();
    phone.add_fault(
        "getvar:is-logical:system_a",
        FaultAction::Okay("yes".into()),
        None,
    );
    let mut s = connect(&phone);
    let system = pattern(6, 1 << 20);
    let err =
        s.fb.flash_image(
            "system_a",
            &mut Cursor::new(&system),
            &FlashOptions::default(),
        )
        .unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Fastbootd);
    assert_eq!(
        err.to_string(),
        "`system_a` is a logical partition: reboot to fastbootd first (`reboot fastboot`)"
    );
    assert!(
        s.control.host_bytes_written() < 1 << 10,
        "the image was not sent"
    );
    s.end();
}

/// What belongs to the bootloader, asked of fastbootd.
#[test]
fn fastbootd_refuses_what_needs_the_bootloader() {
    let phone = dynamic_phone();
    let mut s = fastbootd(&phone);
    let err = s.fb.flashing(FlashingAction::Unlock).unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Bootloader);
    assert_eq!(
        err.to_string(),
        "fastbootd has no `flashing unlock`: the lock state belongs to the bootloader: reboot \
         to the bootloader first (`reboot bootloader`)"
    );
    let sent = s.control.host_bytes_written();
    let err =
        s.fb.flash_image(
            "bootloader",
            &mut Cursor::new(vec![1u8; 1 << 20]),
            &FlashOptions::default(),
        )
        .unwrap_err();
    assert_eq!(needs(&err), FastbootMode::Bootloader);
    assert_eq!(
        err.to_string(),
        "fastbootd cannot write `bootloader`: it has no such partition, logical or physical \
         (is-logical answered FAIL): reboot to the bootloader first (`reboot bootloader`)"
    );
    assert!(
        s.control.host_bytes_written() - sent < 1 << 10,
        "the image was not sent"
    );
    // Not a mode question: fastbootd would answer OKAY to deleting a physical partition and
    // change nothing, so the host says so.
    let err = s.fb.delete_logical_partition("boot_a").unwrap_err();
    assert!(
        matches!(&err, FastbootError::Unsupported(why) if why.contains("`boot_a` is a physical partition")),
        "{err:?}"
    );
    s.end();
}

#[test]
fn update_super_file_takes_only_a_super_empty_image() {
    let dir = tempfile::tempdir().unwrap();
    let phone = dynamic_phone();
    let mut s = fastbootd(&phone);
    let garbage = dir.path().join("garbage.img");
    std::fs::write(&garbage, vec![0x5au8; 8192]).unwrap();
    let err = s.fb.update_super_file(&garbage, false).unwrap_err();
    assert!(
        matches!(&err, FastbootError::Image(why) if why.contains("is not a super_empty.img")),
        "{err:?}"
    );
    // The phone's own super, read back whole, is a super image, not a super_empty.img.
    let whole = dir.path().join("super.img");
    let mut bytes = vec![0u8; 2 << 20];
    phone.read_partition(SUPER, 0, &mut bytes).unwrap();
    std::fs::write(&whole, &bytes).unwrap();
    let err = s.fb.update_super_file(&whole, false).unwrap_err();
    assert!(
        matches!(&err, FastbootError::Image(why) if why.contains("is a whole super image")),
        "{err:?}"
    );
    let empty = dir.path().join("super_empty.img");
    std::fs::write(&empty, super_empty(&["system"])).unwrap();
    s.fb.update_super_file(&empty, true).unwrap();
    let m = metadata(&phone, 0);
    assert_eq!(m.partitions.len(), 2, "{:?}", m.partitions);
    s.end();
}
