//! `flashgate fastboot` against a dynamic-partition phone served by `flashgate sim fastboot
//! --super SIZE` over TCP: into fastbootd, `update-super` with a `super_empty.img` made by our
//! LP writer, logical partitions created, resized, flashed (raw and sparse, slot-suffixed,
//! resized first) and deleted, back to the bootloader, and `super` fetched back and read
//! through `protocols::lp`. The same steps with Debian's `fastboot` (29.0.6) on a second phone
//! leave the same `super`, byte for byte. And every command made in the wrong mode is refused
//! with the sentence that says which mode it needs.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flashgate_scenarios::{flashgate_bin, pseudo_random};
use protocols::external_tool;
use protocols::lp::{self, attr, DeviceSpec, Metadata, MetadataBuilder};

use crate::fastboot_interop::{text, SimServer};

const SUPER_SIZE: u64 = 64 << 20;

fn dynamic_phone(serial: &str) -> SimServer {
    SimServer::start(&["--super", "64M", "--serial", serial, "--fetch-allow", "all"])
}

/// `flashgate fastboot --target tcp:… ARGS…`.
fn flashgate(sim: &SimServer, args: &[&str]) -> Output {
    Command::new(flashgate_bin())
        .args(["fastboot", "--timeout", "20", "--target"])
        .arg(sim.target())
        .args(args)
        .output()
        .expect("run flashgate fastboot")
}

fn ours(sim: &SimServer, args: &[&str]) -> String {
    let out = flashgate(sim, args);
    let said = text(&out);
    assert!(out.status.success(), "flashgate fastboot {args:?}: {said}");
    said
}

fn debian(sim: &SimServer, args: &[&str]) -> String {
    debian_with(sim, args, &[])
}

fn debian_with(sim: &SimServer, args: &[&str], env: &[(&str, &Path)]) -> String {
    let out = sim.fastboot_with(args, env);
    let said = text(&out);
    assert!(out.status.success(), "fastboot {args:?}: {said}");
    said
}

/// What the flashgate run refused: it failed, and said `sentence`.
fn refused(sim: &SimServer, args: &[&str], sentence: &str) {
    let out = flashgate(sim, args);
    let said = text(&out);
    assert!(!out.status.success(), "{args:?} must be refused: {said}");
    assert!(said.contains(sentence), "{args:?}: {said}");
}

/// `super_empty.img` for the phone as an AOSP build writes it: one group per slot, `names` in
/// both slots, no extents.
fn super_empty(names: &[&str]) -> Vec<u8> {
    let mut b = MetadataBuilder::new(DeviceSpec::super_partition(SUPER_SIZE), 65536, 3).unwrap();
    for slot in ["_a", "_b"] {
        let group = format!("qti_dynamic_partitions{slot}");
        b.add_group(&group, SUPER_SIZE / 2 - (4 << 20)).unwrap();
        for name in names {
            b.add_partition(&format!("{name}{slot}"), &group, attr::READONLY)
                .unwrap();
        }
    }
    lp::super_empty_image(&b.export().unwrap()).unwrap()
}

/// The images both runs flash, in a product directory as `flashall` wants it.
struct Images {
    dir: tempfile::TempDir,
    boot: Vec<u8>,
    system: Vec<u8>,
    /// Expanded bytes of `vendor.simg` (img2simg of it; a zero hole becomes DONT_CARE).
    vendor: Vec<u8>,
    extra: Vec<u8>,
}

impl Images {
    fn new() -> Images {
        let dir = tempfile::tempdir().unwrap();
        let boot = pseudo_random(41, 1 << 20);
        let system = pseudo_random(42, 3_000_000);
        let mut vendor = pseudo_random(43, 2 << 20);
        vendor[(512 << 10)..(1536 << 10)].fill(0);
        let extra = pseudo_random(44, 300_000);
        std::fs::write(dir.path().join("android-info.txt"), "").unwrap();
        std::fs::write(dir.path().join("boot.img"), &boot).unwrap();
        std::fs::write(dir.path().join("system.img"), &system).unwrap();
        std::fs::write(dir.path().join("vendor.raw"), &vendor).unwrap();
        std::fs::write(dir.path().join("extra.img"), &extra).unwrap();
        std::fs::write(
            dir.path().join("super_empty.img"),
            super_empty(&["system", "vendor", "product"]),
        )
        .unwrap();
        let status = external_tool::command("img2simg")
            .arg(dir.path().join("vendor.raw"))
            .arg(dir.path().join("vendor.simg"))
            .status()
            .expect("running img2simg");
        assert!(status.success());
        Images {
            dir,
            boot,
            system,
            vendor,
            extra,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
}

/// A whole `super` (a file), read at absolute offsets through `protocols::lp`.
struct SuperImage(File);

impl SuperImage {
    fn open(path: &Path) -> SuperImage {
        SuperImage(File::open(path).unwrap())
    }

    fn metadata(&self, slot: u32) -> Metadata {
        let mut read_at = |offset: u64, buf: &mut [u8]| self.0.read_exact_at(buf, offset);
        let geometry = lp::read_geometry(&mut read_at).unwrap();
        lp::read_metadata(&mut read_at, &geometry, slot).unwrap()
    }

    fn size_of(&self, name: &str) -> u64 {
        let m = self.metadata(0);
        m.partition_size(m.find(name).unwrap())
    }

    /// The first `len` bytes of logical partition `name`, through slot 0's metadata (which
    /// lists both slots' partitions).
    fn logical(&self, name: &str, len: usize) -> Vec<u8> {
        let m = self.metadata(0);
        let mut out = vec![0u8; len];
        let mut read_at = |offset: u64, buf: &mut [u8]| self.0.read_exact_at(buf, offset);
        m.read_partition_at(m.find(name).unwrap(), &mut read_at, 0, &mut out)
            .unwrap();
        out
    }
}

/// The steps with flashgate; `super` is then fetched back into the returned file.
fn run_ours(sim: &SimServer, images: &Images, out: &Path) -> PathBuf {
    assert!(ours(sim, &["getvar", "is-userspace"]).contains("is-userspace: no"));
    let said = ours(sim, &["reboot", "fastboot"]);
    assert!(said.contains("rebooting into fastbootd"), "{said}");
    assert!(ours(sim, &["getvar", "is-userspace"]).contains("is-userspace: yes"));
    // What `flashall` does before the logical partitions: the slot, the boot images.
    ours(sim, &["set-active", "a"]);
    ours(sim, &["flash", "boot", &images.path("boot.img")]);
    let said = ours(sim, &["update-super", &images.path("super_empty.img")]);
    assert!(
        said.contains("Successfully updated partition table"),
        "{said}"
    );
    let said = ours(sim, &["flash", "system", &images.path("system.img")]);
    assert!(said.contains("resized system_a to 3000000 bytes"), "{said}");
    let said = ours(
        sim,
        &[
            "flash",
            "vendor",
            &images.path("vendor.simg"),
            "--slot",
            "b",
        ],
    );
    assert!(said.contains("resized vendor_b to 2097152 bytes"), "{said}");
    ours(sim, &["create-logical-partition", "extra_a", "8192"]);
    ours(sim, &["resize-logical-partition", "extra_a", "1M"]);
    ours(sim, &["flash", "extra_a", &images.path("extra.img")]);
    ours(sim, &["create-logical-partition", "temp_a", "64K"]);
    ours(sim, &["delete-logical-partition", "temp_a"]);
    ours(sim, &["reboot", "bootloader"]);
    assert!(ours(sim, &["getvar", "is-userspace"]).contains("is-userspace: no"));
    let back = out.join("super.fetched");
    ours(sim, &["fetch", "super", back.to_str().unwrap()]);
    back
}

/// The same steps with Debian's client; `flashall` is its only way to `update-super`.
fn run_debian(sim: &SimServer, images: &Images) {
    let said = debian(sim, &["reboot", "fastboot"]);
    assert!(said.contains("Rebooting into fastboot"), "{said}");
    let said = debian_with(
        sim,
        &["--skip-secondary", "--skip-reboot", "flashall"],
        &[("ANDROID_PRODUCT_OUT", images.dir.path())],
    );
    assert!(said.contains("Updating super partition"), "{said}");
    assert!(said.contains("Resizing 'system_a'"), "{said}");
    debian(
        sim,
        &[
            "--slot",
            "b",
            "flash",
            "vendor",
            &images.path("vendor.simg"),
        ],
    );
    debian(sim, &["create-logical-partition", "extra_a", "8192"]);
    debian(sim, &["resize-logical-partition", "extra_a", "1048576"]);
    debian(sim, &["flash", "extra_a", &images.path("extra.img")]);
    debian(sim, &["create-logical-partition", "temp_a", "65536"]);
    debian(sim, &["delete-logical-partition", "temp_a"]);
    debian(sim, &["reboot", "bootloader"]);
}

#[test]
fn fastbootd_flow_matches_debian_fastboot_byte_for_byte() {
    let images = Images::new();
    let work = tempfile::tempdir().unwrap();

    let ours_phone = dynamic_phone("FGFBD0001");
    let fetched = run_ours(&ours_phone, &images, work.path());
    // What came back over `fetch` is the phone's `super`, and it reads through the LP
    // metadata: both slots' tables the same (fastbootd writes one per boot slot; the third
    // metadata slot keeps the factory table), each logical partition holding its image.
    let on_phone = std::fs::read(ours_phone.partition_file("super")).unwrap();
    assert_eq!(on_phone.len() as u64, SUPER_SIZE);
    assert!(std::fs::read(&fetched).unwrap() == on_phone, "fetch: super");
    let ours_super = SuperImage::open(&fetched);
    let m = ours_super.metadata(0);
    assert_eq!(m, ours_super.metadata(1));
    for kept in ["system_b", "system_ext_b", "odm_b"] {
        assert!(
            m.partition(kept).is_some(),
            "{kept}: the other slot survives"
        );
    }
    assert!(
        m.partition("odm_a").is_none(),
        "this slot's table is super_empty's"
    );
    assert!(m.partition("temp_a").is_none(), "deleted");
    assert_eq!(ours_super.size_of("system_a"), 3_002_368);
    assert_eq!(ours_super.size_of("vendor_b"), 2 << 20);
    assert_eq!(ours_super.size_of("extra_a"), 303_104);
    assert_eq!(ours_super.size_of("product_a"), 0);
    assert!(ours_super.logical("system_a", images.system.len()) == images.system);
    assert!(ours_super.logical("vendor_b", images.vendor.len()) == images.vendor);
    assert!(ours_super.logical("extra_a", images.extra.len()) == images.extra);
    let mut boot = vec![0u8; images.boot.len()];
    File::open(ours_phone.partition_file("boot_a"))
        .unwrap()
        .read_exact_at(&mut boot, 0)
        .unwrap();
    assert!(boot == images.boot);

    let debian_phone = dynamic_phone("FGFBD0001");
    run_debian(&debian_phone, &images);
    let theirs = SuperImage::open(&debian_phone.partition_file("super"));
    for slot in 0..3 {
        assert_eq!(
            theirs.metadata(slot),
            ours_super.metadata(slot),
            "slot {slot}"
        );
    }
    let theirs_bytes = std::fs::read(debian_phone.partition_file("super")).unwrap();
    if let Some(at) = theirs_bytes.iter().zip(&on_phone).position(|(a, b)| a != b) {
        panic!("super differs between the two clients at byte {at}");
    }
    assert_eq!(theirs_bytes.len(), on_phone.len());
}

/// `flash` and `erase` of a logical partition in the bootloader: the bootloader's own
/// refusal, typed.
#[test]
fn flashing_a_logical_partition_in_the_bootloader_is_refused() {
    let sim = dynamic_phone("FGFBD0002");
    let images = Images::new();
    let before = std::fs::read(sim.partition_file("super")).unwrap();
    refused(
        &sim,
        &["flash", "system", &images.path("system.img")],
        "`system` is a logical partition (the bootloader answered \"Partition should be \
         flashed in fastbootd\"): reboot to fastbootd first (`reboot fastboot`)",
    );
    refused(
        &sim,
        &["erase", "vendor_b"],
        "`vendor_b` is a logical partition (the bootloader answered \"Partition should be \
         flashed in fastbootd\"): reboot to fastbootd first (`reboot fastboot`)",
    );
    assert!(std::fs::read(sim.partition_file("super")).unwrap() == before);
}

/// `update-super` and the logical-partition commands in the bootloader: refused before they
/// are sent, `super` untouched.
#[test]
fn editing_super_in_the_bootloader_is_refused() {
    let sim = dynamic_phone("FGFBD0003");
    let images = Images::new();
    let before = std::fs::read(sim.partition_file("super")).unwrap();
    let empty = images.path("super_empty.img");
    let cases: [(&[&str], &str); 5] = [
        (&["update-super", &empty], "update-super"),
        (&["update-super", &empty, "--wipe"], "update-super"),
        (
            &["create-logical-partition", "extra_a", "4096"],
            "create-logical-partition",
        ),
        (
            &["resize-logical-partition", "system_a", "4096"],
            "resize-logical-partition",
        ),
        (
            &["delete-logical-partition", "system_a"],
            "delete-logical-partition",
        ),
    ];
    for (args, verb) in cases {
        refused(
            &sim,
            args,
            &format!(
                "`{verb}` works only in fastbootd and the phone is in its bootloader \
                 (is-userspace: no): reboot to fastbootd first (`reboot fastboot`)"
            ),
        );
    }
    assert!(std::fs::read(sim.partition_file("super")).unwrap() == before);
}

/// The lock state is the bootloader's: fastbootd has no `flashing`.
#[test]
fn flashing_unlock_in_fastbootd_is_refused() {
    let sim = dynamic_phone("FGFBD0004");
    ours(&sim, &["reboot", "fastboot"]);
    refused(
        &sim,
        &["flashing", "lock"],
        "fastbootd has no `flashing lock`: the lock state belongs to the bootloader: reboot \
         to the bootloader first (`reboot bootloader`)",
    );
    assert!(ours(&sim, &["getvar", "unlocked"]).contains("unlocked: yes"));
}

/// A partition fastbootd cannot open (neither logical nor physical), and a file that is not a
/// `super_empty.img`, are refused in fastbootd before any image is sent.
#[test]
fn what_fastbootd_cannot_write_is_refused() {
    let sim = dynamic_phone("FGFBD0005");
    let images = Images::new();
    ours(&sim, &["reboot", "fastboot"]);
    refused(
        &sim,
        &["flash", "bootloader", &images.path("boot.img")],
        "fastbootd cannot write `bootloader`: it has no such partition, logical or physical \
         (is-logical answered FAIL): reboot to the bootloader first (`reboot bootloader`)",
    );
    refused(
        &sim,
        &["update-super", &images.path("system.img")],
        "is not a super_empty.img",
    );
    refused(
        &sim,
        &["delete-logical-partition", "boot_a"],
        "`boot_a` is a physical partition (is-logical: no)",
    );
}
