//! Debian's AOSP `fastboot` client (29.0.6) against a dynamic-partition phone served by
//! `flashgate sim fastboot --super SIZE` over TCP: into fastbootd and back, the logical
//! partition commands, flashing by name (the client resizes first), `wipe-super` (the client
//! builds a whole super image from `super_empty.img` with its own liblp and flashes it) and
//! `flashall` (which sends `update-super:super` with `super_empty.img`). After each, what the
//! client wrote is found byte-exact through the LP metadata in the phone's `super` file, read
//! with `protocols::lp`, not through the simulator.

use std::fs::File;
use std::os::unix::fs::FileExt;

use flashgate_scenarios::pseudo_random;
use protocols::external_tool;
use protocols::lp::{self, attr, DeviceSpec, Metadata, MetadataBuilder};

use crate::fastboot_interop::{text, SimServer};

const SUPER_SIZE: u64 = 256 << 20;

fn dynamic_phone() -> SimServer {
    SimServer::start(&["--super", "256M", "--serial", "FGDYN001"])
}

/// The `super` partition file of the served phone, read at absolute offsets.
struct SuperFile(File);

impl SuperFile {
    fn open(sim: &SimServer) -> SuperFile {
        SuperFile(File::open(sim.partition_file("super")).unwrap())
    }

    fn read_at(&self) -> impl FnMut(u64, &mut [u8]) -> std::io::Result<()> + '_ {
        |offset, buf| self.0.read_exact_at(buf, offset)
    }

    fn metadata(&self, slot: u32) -> Metadata {
        let mut read_at = self.read_at();
        let geometry = lp::read_geometry(&mut read_at).unwrap();
        lp::read_metadata(&mut read_at, &geometry, slot).unwrap()
    }

    /// The first `len` bytes of logical partition `name` in slot 0's metadata.
    fn logical(&self, name: &str, len: usize) -> Vec<u8> {
        let m = self.metadata(0);
        let mut out = vec![0u8; len];
        m.read_partition_at(m.find(name).unwrap(), &mut self.read_at(), 0, &mut out)
            .unwrap();
        out
    }
}

fn size_of(m: &Metadata, name: &str) -> u64 {
    m.partition_size(m.find(name).unwrap())
}

/// Run a client command and insist it succeeded.
fn ok(sim: &SimServer, args: &[&str]) -> String {
    let out = sim.fastboot(args);
    let said = text(&out);
    assert!(out.status.success(), "fastboot {args:?}: {said}");
    said
}

fn to_fastbootd(sim: &SimServer) {
    let said = ok(sim, &["reboot", "fastboot"]);
    assert!(said.contains("Rebooting into fastboot"), "{said}");
    assert!(ok(sim, &["getvar", "is-userspace"]).contains("is-userspace: yes"));
}

/// `super_empty.img` for this phone as an AOSP build writes it: its device, one group per
/// slot, `partitions` in both slots with no extents.
fn super_empty(partitions: &[&str]) -> Vec<u8> {
    let mut b = MetadataBuilder::new(DeviceSpec::super_partition(SUPER_SIZE), 65536, 3).unwrap();
    for slot in ["_a", "_b"] {
        let group = format!("qti_dynamic_partitions{slot}");
        b.add_group(&group, (SUPER_SIZE / 2) - (4 << 20)).unwrap();
        for name in partitions {
            b.add_partition(&format!("{name}{slot}"), &group, attr::READONLY)
                .unwrap();
        }
    }
    lp::super_empty_image(&b.export().unwrap()).unwrap()
}

#[test]
fn reboot_fastboot_is_userspace_and_back_to_the_bootloader() {
    let sim = dynamic_phone();
    assert!(ok(&sim, &["getvar", "is-userspace"]).contains("is-userspace: no"));
    // The bootloader knows no logical partition (the client's is-logical check fails).
    let said = text(&sim.fastboot(&["getvar", "is-logical:system_a"]));
    assert!(said.contains("GetVar Variable Not found"), "{said}");
    // Over TCP the client sees the reboot as a closed connection, waits a second and
    // connects again, then insists on is-userspace: yes.
    to_fastbootd(&sim);
    assert!(ok(&sim, &["getvar", "is-logical:system_a"]).contains("is-logical:system_a: yes"));
    assert!(ok(&sim, &["getvar", "is-logical:boot_a"]).contains("is-logical:boot_a: no"));
    assert!(ok(&sim, &["getvar", "super-partition-name"]).contains("super-partition-name: super"));
    let said = ok(&sim, &["getvar", "max-download-size"]);
    assert!(said.contains("max-download-size: 0x10000000"), "{said}");
    let system_a = size_of(&SuperFile::open(&sim).metadata(0), "system_a");
    let said = ok(&sim, &["getvar", "partition-size:system_a"]);
    assert!(
        said.contains(&format!("partition-size:system_a: 0x{system_a:X}")),
        "{said}"
    );
    ok(&sim, &["reboot", "bootloader"]);
    assert!(ok(&sim, &["getvar", "is-userspace"]).contains("is-userspace: no"));
}

#[test]
fn logical_partitions_created_resized_flashed_and_deleted_by_the_client() {
    let sim = dynamic_phone();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("system.img");
    let data = pseudo_random(21, 3_000_000);
    std::fs::write(&image, &data).unwrap();
    // In the bootloader the device refuses a logical partition, as fastbootd's spec asks.
    let out = sim.fastboot(&["flash", "system_a", image.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("FAILED (remote: 'Partition should be flashed in fastbootd')"),
        "{}",
        text(&out)
    );
    to_fastbootd(&sim);
    let said = ok(&sim, &["create-logical-partition", "extra_a", "8192"]);
    assert!(said.contains("Creating 'extra_a'"), "{said}");
    ok(&sim, &["resize-logical-partition", "extra_a", "1048576"]);
    let m = SuperFile::open(&sim).metadata(0);
    assert_eq!(size_of(&m, "extra_a"), 1 << 20);
    assert_eq!(
        m.group_of(m.find("extra_a").unwrap()).unwrap().name,
        "default"
    );
    assert_eq!(m, SuperFile::open(&sim).metadata(1), "both slots edited");
    // `flash` of a logical partition: the client resizes it to the image, then writes it.
    let said = ok(&sim, &["flash", "extra_a", image.to_str().unwrap()]);
    assert!(said.contains("Resizing 'extra_a'"), "{said}");
    let super_file = SuperFile::open(&sim);
    assert_eq!(size_of(&super_file.metadata(0), "extra_a"), 3_002_368);
    assert!(super_file.logical("extra_a", data.len()) == data);
    // The client appends the slot itself: `flash system` lands in system_a.
    let said = ok(&sim, &["flash", "system", image.to_str().unwrap()]);
    assert!(said.contains("Sending 'system_a'"), "{said}");
    assert!(SuperFile::open(&sim).logical("system_a", data.len()) == data);
    // A sparse image (img2simg) is resized to what it expands to, and expanded.
    let simg = dir.path().join("vendor.simg");
    let status = external_tool::command("img2simg")
        .arg(&image)
        .arg(&simg)
        .status()
        .expect("running img2simg");
    assert!(status.success());
    ok(&sim, &["flash", "vendor_b", simg.to_str().unwrap()]);
    let m = SuperFile::open(&sim).metadata(0);
    assert_eq!(size_of(&m, "vendor_b"), 3_002_368);
    let mut back = vec![0u8; data.len()];
    m.read_partition_at(
        m.find("vendor_b").unwrap(),
        &mut SuperFile::open(&sim).read_at(),
        0,
        &mut back,
    )
    .unwrap();
    assert!(back == data);
    ok(&sim, &["delete-logical-partition", "extra_a"]);
    for slot in [0, 1] {
        assert!(SuperFile::open(&sim)
            .metadata(slot)
            .partition("extra_a")
            .is_none());
    }
    let said = text(&sim.fastboot(&["getvar", "is-logical:extra_a"]));
    assert!(said.contains("Partition not found"), "{said}");
}

#[test]
fn wipe_super_flashes_the_image_the_client_builds_from_super_empty() {
    let sim = dynamic_phone();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("super_empty.img");
    std::fs::write(&empty, super_empty(&["system", "vendor", "product"])).unwrap();
    let expected = lp::read_super_empty(&mut |offset: u64, buf: &mut [u8]| {
        File::open(&empty).unwrap().read_exact_at(buf, offset)
    })
    .unwrap();
    to_fastbootd(&sim);
    let said = ok(&sim, &["wipe-super", empty.to_str().unwrap()]);
    assert!(said.contains("Writing 'super'"), "{said}");
    let super_file = SuperFile::open(&sim);
    for slot in 0..3 {
        assert_eq!(super_file.metadata(slot), expected, "slot {slot}");
    }
    // fastbootd reads the new table: the factory's odm and system_ext are gone.
    let said = text(&sim.fastboot(&["getvar", "is-logical:odm_a"]));
    assert!(said.contains("Partition not found"), "{said}");
    assert!(ok(&sim, &["getvar", "is-logical:product_b"]).contains("yes"));
}

#[test]
fn flashall_updates_super_and_flashes_the_logical_partitions_in_fastbootd() {
    let sim = dynamic_phone();
    let out = tempfile::tempdir().unwrap();
    let product = out.path();
    std::fs::write(product.join("android-info.txt"), "").unwrap();
    let boot = pseudo_random(31, 1 << 20);
    let system = pseudo_random(32, 5 << 20);
    let vendor = pseudo_random(33, 700_000);
    std::fs::write(product.join("boot.img"), &boot).unwrap();
    std::fs::write(product.join("system.img"), &system).unwrap();
    std::fs::write(product.join("vendor.img"), &vendor).unwrap();
    std::fs::write(
        product.join("super_empty.img"),
        super_empty(&["system", "system_ext", "product", "vendor", "odm"]),
    )
    .unwrap();
    // Slot b's system holds something that update-super must keep.
    to_fastbootd(&sim);
    ok(&sim, &["resize-logical-partition", "system_b", "65536"]);
    let kept = SuperFile::open(&sim).metadata(0);
    ok(&sim, &["reboot", "bootloader"]);
    let said = {
        let run = sim.fastboot_with(
            &["flashall", "--skip-secondary"],
            &[("ANDROID_PRODUCT_OUT", product)],
        );
        let said = text(&run);
        assert!(run.status.success(), "fastboot flashall: {said}");
        said
    };
    assert!(said.contains("Rebooting into fastboot"), "{said}");
    assert!(said.contains("Updating super partition"), "{said}");
    assert!(said.contains("Resizing 'system_a'"), "{said}");
    let super_file = SuperFile::open(&sim);
    let m = super_file.metadata(0);
    assert_eq!(m, super_file.metadata(1));
    assert!(super_file.logical("system_a", system.len()) == system);
    assert!(super_file.logical("vendor_a", vendor.len()) == vendor);
    assert_eq!(size_of(&m, "odm_a"), 0, "no image: resized to nothing");
    let extents = |m: &Metadata| m.partition_extents(m.find("system_b").unwrap()).to_vec();
    assert_eq!(
        extents(&m),
        extents(&kept),
        "the other slot survived update-super"
    );
    let mut back = vec![0u8; boot.len()];
    File::open(sim.partition_file("boot_a"))
        .unwrap()
        .read_exact_at(&mut back, 0)
        .unwrap();
    assert!(back == boot, "boot flashed in the bootloader");
    // flashall ends with `reboot`: this phone's boot chain stops in the bootloader.
    assert!(ok(&sim, &["getvar", "is-userspace"]).contains("is-userspace: no"));
}

/// Both refusals AOSP defines for a dynamic partition in the bootloader: the client's own
/// (it knows the partition from `super_empty.img` under ANDROID_PRODUCT_OUT), and the
/// device's when the client does not recognise the name (`system` without its suffix).
#[test]
fn a_dynamic_partition_is_refused_in_the_bootloader_by_the_client_and_by_the_device() {
    let sim = dynamic_phone();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("super_empty.img"), super_empty(&["system"])).unwrap();
    let image = out.path().join("system.img");
    std::fs::write(&image, [1u8; 4096]).unwrap();
    let flash = |name: &str| {
        let run = sim.fastboot_with(
            &["flash", name, image.to_str().unwrap()],
            &[("ANDROID_PRODUCT_OUT", out.path())],
        );
        assert!(!run.status.success(), "flash {name} must fail");
        text(&run)
    };
    let said = flash("system_a");
    assert!(
        said.contains("The partition you are trying to flash is dynamic"),
        "{said}"
    );
    assert!(!said.contains("Sending"), "refused before sending: {said}");
    let said = flash("system");
    assert!(
        said.contains("FAILED (remote: 'Partition should be flashed in fastbootd')"),
        "{said}"
    );
    assert!(SuperFile::open(&sim).logical("system_a", 4096) != [1u8; 4096]);
}
