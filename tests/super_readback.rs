//! A modern phone end to end through the station: a factory `super.img` (erofs `system` made by
//! Debian's `mkfs.erofs -zlz4hc`, ext4 `vendor` by `mke2fs -d`, packed by our LP writer, made
//! sparse by `img2simg`) is checked by pre-flight inside its `system_a`, flashed whole to the
//! simulated phone's `super` from the bootloader, and verified by reading back through
//! `fetch:super` only the LP metadata of the booting slot, the filesystem's metadata and the
//! client — on the slot that boots.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use flashgate_scenarios::batch::{run_batch, BatchOutcome, BatchSetup};
use flashgate_scenarios::pseudo_random;
use flashgate_scenarios::super_image::{erofs_lz4hc, hex_sha256, sparse_super, tool};
use protocols::lp::{self, attr, DeviceSpec, MetadataBuilder};
use protocols::sim::edl::EdlSimConfig;
use protocols::sim::phone::{FaultAction, FaultRule};
use protocols::sim::{Phone, PhoneMode};
use station::bus::sim::SimBus;
use station::events::SlotNumber;
use station::preflight::{load_and_check, PreflightError};
use station::sim_fleet::rig::{factory_fastboot, sim_port};
use station::sim_fleet::SimUnit;
use station::verdict::Verdict;

const MIB: u64 = 1 << 20;
const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";
const SUPER_SIZE: u64 = 96 * MIB;

/// The empty layout a build's `super_empty.img` carries: per slot a group and empty `system`,
/// `vendor`, as `lpmake --sparse … --partition system_a:readonly:0:…` writes it.
fn super_empty() -> Vec<u8> {
    let mut builder =
        MetadataBuilder::new(DeviceSpec::super_partition(SUPER_SIZE), 65536, 3).unwrap();
    for slot in ["a", "b"] {
        let group = format!("qti_dynamic_partitions_{slot}");
        builder.add_group(&group, SUPER_SIZE / 2 - MIB).unwrap();
        for name in ["system", "vendor"] {
            builder
                .add_partition(&format!("{name}_{slot}"), &group, attr::READONLY)
                .unwrap();
        }
    }
    lp::super_empty_image(&builder.export().unwrap()).unwrap()
}

/// A region's client: incompressible, like an APK's stored entries.
fn client(region: &str) -> Vec<u8> {
    pseudo_random(u64::from(region.as_bytes()[3]), MIB as usize + 4321)
}

/// A station, a product `fgsuper` with regions 00WW and 00CN (each a sparse `super.img`),
/// and a work order per region, in a tempdir.
struct Line {
    dir: tempfile::TempDir,
}

impl Line {
    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `system` (erofs lz4hc) holding `region`'s client; `vendor` ext4.
    fn system_image(&self, region: &str) -> PathBuf {
        let mut files = vec![
            (CLIENT.to_string(), client(region)),
            (
                "/system/build.prop".to_string(),
                format!("ro.product.region={region}\nro.build.display.id=FGSUPER.{region}.1\n")
                    .into_bytes(),
            ),
            (
                "/system/framework/framework.jar".to_string(),
                pseudo_random(77, 6 << 20),
            ),
        ];
        for app in 0..20u64 {
            files.push((
                format!("/system/app/App{app}/App{app}.apk"),
                pseudo_random(app, 20_000 + app as usize * 3001),
            ));
        }
        let image = self.path(&format!("system-{region}.erofs"));
        erofs_lz4hc(&self.path(&format!("tree-{region}")), &files, &image);
        image
    }

    fn vendor_image(&self) -> PathBuf {
        let tree = self.path("tree-vendor");
        fs::create_dir_all(tree.join("etc")).unwrap();
        fs::write(tree.join("etc/fstab.qcom"), b"system /system erofs ro\n").unwrap();
        let image = self.path("vendor.ext4");
        tool(
            "mke2fs",
            &[
                "-q",
                "-F",
                "-t",
                "ext4",
                "-d",
                &tree.display().to_string(),
                &image.display().to_string(),
                "4M",
            ],
        );
        image
    }

    /// A sparse `super.img` as a factory build makes it: `system_a`, `vendor_a` filled,
    /// `system_b`, `vendor_b` empty — unless `system_b` is given (a mis-packaged build).
    fn super_image(&self, out: &Path, system_a: &Path, system_b: Option<&Path>) {
        let vendor = self.vendor_image();
        let mut images = vec![("system_a", system_a), ("vendor_a", vendor.as_path())];
        if let Some(b) = system_b {
            images.push(("system_b", b));
        }
        sparse_super(out, SUPER_SIZE, &["system", "vendor"], &images);
    }

    /// The whole line: `plan` is the fastboot plan's slot lines; `ww_system_b` mis-packages
    /// the 00WW build with the China system in `system_b`.
    fn new(plan: &str, ww_system_b: bool) -> Line {
        Line::with_regions(|line| {
            let ww = line.system_image("00WW");
            let cn = line.system_image("00CN");
            let images = line.path("images");
            line.super_image(
                &images.join("00WW/super.img"),
                &ww,
                ww_system_b.then_some(cn.as_path()),
            );
            line.super_image(&images.join("00CN/super.img"), &cn, None);
            let mut regions = String::new();
            for region in ["00WW", "00CN"] {
                let super_img = fs::read(images.join(format!("{region}/super.img"))).unwrap();
                regions.push_str(&format!(
                    "  {region}:
    build_id: FGSUPER.{region}.1
    files:
      super: {{ path: {region}/super.img, size: {}, sha256: \"{}\" }}
    flash:
      fastboot:
{plan}
        partitions:
          - {{ partition: super, image: super }}
    activation_client:
      partition: super
      image: super
      logical_partition: system
      path: {CLIENT}
      sha256: \"{}\"
      verify: host_readback
",
                    super_img.len(),
                    hex_sha256(&super_img),
                    hex_sha256(&client(region)),
                ));
            }
            regions
        })
    }

    /// A line whose plan writes `boot` in the bootloader, then in fastbootd `update-super`s with
    /// a `super_empty.img` and writes `system` (erofs, the client) and `vendor` (ext4), as AOSP's
    /// `fastboot flashall` does; `plan` is the slot lines.
    fn fastbootd(plan: &str) -> Line {
        Line::with_regions(|line| {
            let images = line.path("images");
            let mut regions = String::new();
            for region in ["00WW", "00CN"] {
                let dir = images.join(region);
                fs::create_dir_all(&dir).unwrap();
                fs::copy(line.system_image(region), dir.join("system.img")).unwrap();
                fs::copy(line.vendor_image(), dir.join("vendor.img")).unwrap();
                fs::write(dir.join("boot.img"), pseudo_random(9, 64 * 1024)).unwrap();
                fs::write(dir.join("super_empty.img"), super_empty()).unwrap();
                let entry = |key: &str| {
                    let bytes = fs::read(dir.join(format!("{key}.img"))).unwrap();
                    format!(
                        "      {key}: {{ path: {region}/{key}.img, size: {}, sha256: \"{}\" }}\n",
                        bytes.len(),
                        hex_sha256(&bytes)
                    )
                };
                let files: String = ["boot", "super_empty", "system", "vendor"]
                    .iter()
                    .map(|k| entry(k))
                    .collect();
                regions.push_str(&format!(
                    "  {region}:
    build_id: FGSUPER.{region}.1
    files:
{files}    flash:
      fastboot:
{plan}
        partitions:
          - {{ partition: boot, image: boot }}
        fastbootd:
          super_empty: super_empty
          partitions:
            - {{ partition: system, image: system }}
            - {{ partition: vendor, image: vendor }}
    activation_client:
      partition: super
      image: system
      logical_partition: system
      path: {CLIENT}
      sha256: \"{}\"
      verify: host_readback
",
                    hex_sha256(&client(region)),
                ));
            }
            regions
        })
    }

    /// The station, product `fgsuper` with the regions `regions` writes, and a work order per
    /// region.
    fn with_regions(regions: impl FnOnce(&Line) -> String) -> Line {
        let line = Line {
            dir: tempfile::tempdir().unwrap(),
        };
        let regions = regions(&line);
        fs::create_dir_all(line.path("products")).unwrap();
        fs::write(
            line.path("products/fgsuper.yaml"),
            format!(
                "product: fgsuper\nidentity:\n  fastboot_product: flashgate_sim\nregions:\n{regions}"
            ),
        )
        .unwrap();
        flashgate_scenarios::sign_manifest(&line.path("products/fgsuper.yaml"));
        fs::create_dir_all(line.path("work-orders")).unwrap();
        for region in ["00WW", "00CN"] {
            fs::write(
                line.path(&format!("work-orders/WO-SUPER-{region}.yaml")),
                format!(
                    "id: WO-SUPER-{region}\nproduct: fgsuper\nregion: {region}\nquantity: 10\n"
                ),
            )
            .unwrap();
        }
        fs::write(
            line.path("station.yaml"),
            format!("{}{}", "station_id: super-st01
image_root: images
products_dir: products
journal: state/journal.sqlite
log_dir: state/logs
limits:
  parallel_slots: 3
  timeouts: { command_secs: 30, identify_secs: 60, flash_partition_secs: 600, verify_secs: 300, reenumerate_secs: 90 }
  retries: { identify: 2, flash_partition: 1 }
slots:
  - { slot: 1, simulated: fastboot }
  - { slot: 2, simulated: fastboot }
  - { slot: 3, simulated: fastboot }
", flashgate_scenarios::DEMO_TRUSTED_KEYS_YAML),
        )
        .unwrap();
        line
    }

    /// Runs work order `WO-SUPER-{region}` on three dynamic-partition phones; `before` may
    /// stage a phone (e.g. make it boot slot b).
    fn run(&self, region: &str, before: impl Fn(SlotNumber, &Phone)) -> BatchOutcome {
        self.run_with(region, before, |_| factory_fastboot())
    }

    /// [`Line::run`] with each slot's bootloader behaviour from `bootloader`.
    fn run_with(
        &self,
        region: &str,
        before: impl Fn(SlotNumber, &Phone),
        bootloader: impl Fn(SlotNumber) -> protocols::sim::fastboot::FastbootConfig,
    ) -> BatchOutcome {
        let (station, batch) = load_and_check(
            &self.path("station.yaml"),
            &self.path(&format!("work-orders/WO-SUPER-{region}.yaml")),
        )
        .unwrap_or_else(|e| panic!("pre-flight: {e}"));
        let bus = SimBus::new();
        let slots: BTreeMap<String, SlotNumber> = (1..=3).map(|s| (sim_port(s), s)).collect();
        for (port, slot) in &slots {
            let phone = Phone::builder()
                .serial(&format!("FGS{slot:05}"))
                .product("flashgate_sim")
                .mode(PhoneMode::Bootloader)
                .boots_to(PhoneMode::Bootloader)
                .dynamic_partitions(SUPER_SIZE)
                .build()
                .unwrap();
            before(*slot, &phone);
            SimUnit::new(
                &bus,
                port,
                phone,
                bootloader(*slot),
                EdlSimConfig::default(),
            )
            .plug();
        }
        run_batch(BatchSetup {
            stop_after_verdicts: Some(slots.len()),
            slots,
            station,
            batch,
            bus,
            reactions: Vec::new(),
        })
    }
}

#[test]
fn a_factory_super_image_is_checked_flashed_and_verified_in_the_booting_slots_system() {
    let line = Line::new("        slot: all\n        set_active: a", false);
    let (_, batch) = load_and_check(
        &line.path("station.yaml"),
        &line.path("work-orders/WO-SUPER-00WW.yaml"),
    )
    .unwrap();
    // Pre-flight found the client in system_a's erofs, inside the sparse super.img.
    let check = &batch.activation;
    assert_eq!(check.logical_partition.as_deref(), Some("system_a"));
    assert_eq!(check.filesystem, Some(station::image::FsKind::Erofs));
    assert_eq!(check.client_size, client("00WW").len() as u64);

    // A phone that boots slot b before the batch is switched to a by the plan.
    let outcome = line.run("00WW", |slot, phone| {
        if slot == 2 {
            phone.lock().storage.set_active_slot("b").unwrap();
        }
    });
    outcome.assert_every_verdict_journaled_first();
    for slot in 1..=3 {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
        let rows = outcome.history(&format!("FGS{slot:05}"));
        let row = &rows[0];
        assert_eq!(
            row.activation_sha256_found.as_deref(),
            Some(&*hex_sha256(&client("00WW")))
        );
        let read = row.verify_bytes_read.unwrap();
        let size = client("00WW").len() as u64;
        println!("slot {slot}: verification read {read} bytes for a {size}-byte client");
        // The client (stored: it does not compress), LP metadata and erofs metadata: not
        // the 96 MiB super, not the whole system.
        assert!(read >= size && read < size + 512 * 1024, "{read}");
    }
}

#[test]
fn a_phone_booting_a_slot_whose_system_holds_the_china_client_fails_wrong_region() {
    // The 00WW build is mis-packaged: system_a holds the 00WW client (pre-flight checks it),
    // system_b the 00CN one. The plan does not switch slots.
    let line = Line::new("        slot: active", true);
    let outcome = line.run("00WW", |slot, phone| {
        if slot == 2 {
            phone.lock().storage.set_active_slot("b").unwrap();
        }
    });
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(3), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "ACTIVATION_CLIENT_WRONG_REGION", "{sentence}");
    // Named by the logical partition the phone boots.
    assert!(
        sentence.contains(&format!("super/system_b {CLIENT} has the 00CN client")),
        "{sentence}"
    );
    assert!(
        sentence.contains("has the 00CN client, work order WO-SUPER-00WW needs 00WW"),
        "{sentence}"
    );
    let row = &outcome.history("FGS00002")[0];
    assert_eq!(
        row.activation_sha256_found.as_deref(),
        Some(&*hex_sha256(&client("00CN")))
    );
}

#[test]
fn a_set_active_the_bootloader_does_not_keep_fails_slot_mismatch_though_super_has_no_slots() {
    // The client lives in `super`, which has no slots; the booting slot still decides which
    // `system` is read, so a slot switch that did not stick is caught as such.
    let line = Line::new("        slot: all\n        set_active: a", false);
    let outcome = line.run_with(
        "00WW",
        |slot, phone| {
            if slot == 2 {
                phone.lock().storage.set_active_slot("b").unwrap();
            }
        },
        |slot| protocols::sim::fastboot::FastbootConfig {
            set_active: if slot == 2 {
                protocols::sim::fastboot::SetActiveBehaviour::IgnoredAfterOkay
            } else {
                protocols::sim::fastboot::SetActiveBehaviour::Honoured
            },
            ..factory_fastboot()
        },
    );
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "SLOT_MISMATCH", "{sentence}");
    assert!(
        sentence.contains("will boot slot b, expected slot a"),
        "{sentence}"
    );
}

#[test]
fn a_china_super_image_for_a_world_work_order_is_refused_before_flashing() {
    let line = Line::new("        slot: all\n        set_active: a", false);
    // The 00CN build's super.img copied over 00WW's, manifest entry updated to its bytes.
    let cn = fs::read(line.path("images/00CN/super.img")).unwrap();
    fs::write(line.path("images/00WW/super.img"), &cn).unwrap();
    let manifest = fs::read_to_string(line.path("products/fgsuper.yaml")).unwrap();
    let ww_entry = manifest
        .lines()
        .find(|l| l.contains("00WW/super.img"))
        .unwrap()
        .to_string();
    let cn_entry = manifest
        .lines()
        .find(|l| l.contains("00CN/super.img"))
        .unwrap()
        .replace("00CN/super.img", "00WW/super.img");
    fs::write(
        line.path("products/fgsuper.yaml"),
        manifest.replacen(&ww_entry, &cn_entry, 1),
    )
    .unwrap();
    flashgate_scenarios::sign_manifest(&line.path("products/fgsuper.yaml"));
    let refused = load_and_check(
        &line.path("station.yaml"),
        &line.path("work-orders/WO-SUPER-00WW.yaml"),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(
        matches!(refused, PreflightError::ActivationClientWrongRegion(_)),
        "{refused}"
    );
    let text = refused.to_string();
    assert!(
        text.starts_with("ACTIVATION_CLIENT_WRONG_REGION: image `super`"),
        "{text}"
    );
    assert!(
        text.contains(&format!("super/system_a {CLIENT} has the 00CN client")),
        "{text}"
    );
}

#[test]
fn a_fastbootd_plan_updates_super_writes_the_logical_partitions_and_verifies_the_booting_slot() {
    let line = Line::fastbootd("        slot: a\n        set_active: a");
    let outcome = line.run("00WW", |_, _| {});
    outcome.assert_every_verdict_journaled_first();
    for slot in 1..=3 {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
    }
    // The unit went bootloader → fastbootd → bootloader: each re-enumeration on its port.
    let events = outcome.slot_events(1);
    let reboots = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                station::events::EventKind::PhaseChanged {
                    phase: station::events::Phase::Reboot,
                    ..
                }
            )
        })
        .count();
    assert_eq!(
        reboots, 3,
        "to fastbootd, back, and after set_active: {events:?}"
    );
    let row = &outcome.history("FGS00001")[0];
    let sent: Vec<&str> = row
        .images_sent
        .iter()
        .map(|i| i.partition.as_str())
        .collect();
    assert_eq!(
        sent,
        ["boot_a", "super (update-super)", "system_a", "vendor_a"],
        "{row:?}"
    );
    assert!(row.flash_done_at >= row.flash_started_at && row.flash_done_at.is_some());
    assert_eq!(
        row.activation_sha256_found.as_deref(),
        Some(&*hex_sha256(&client("00WW")))
    );
}

#[test]
fn a_fastbootd_plan_on_a_bootloader_without_fastbootd_fails_clearly() {
    // A bootloader older than Android 10's does not know `reboot-fastboot`: nothing logical is
    // written, the unit fails naming the step and the phone's answer.
    let line = Line::fastbootd("        slot: a\n        set_active: a");
    let outcome = line.run("00WW", |slot, phone| {
        if slot == 2 {
            phone.lock().faults.rules.push(FaultRule {
                operation: "reboot-fastboot".into(),
                action: FaultAction::Fail("unknown command".into()),
                remaining: None,
            });
        }
    });
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(3), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "DEVICE_FAIL", "{sentence}");
    assert!(
        sentence.contains("reboot-fastboot") && sentence.contains("unknown command"),
        "{sentence}"
    );
}

#[test]
fn the_rig_brings_the_products_dynamic_partition_phones_in_fastboot_even_on_edl_slots() {
    use station::mode::Mode;
    use station::sim_fleet::rig::{super_size, DEFAULT_SUPER_SIZE};

    let line = Line::new("        slot: all\n        set_active: a", false);
    let check = || {
        load_and_check(
            &line.path("station.yaml"),
            &line.path("work-orders/WO-SUPER-00WW.yaml"),
        )
        .unwrap_or_else(|e| panic!("pre-flight: {e}"))
    };
    let (station, batch) = check();
    // No size declared: the super.img the plan flashes says how large `super` is.
    assert_eq!(super_size(&batch), Some(SUPER_SIZE));
    // The product has no EDL plan: the phone on an EDL slot comes up in fastboot.
    let slots = [(1, Mode::Fastboot), (2, Mode::Edl)];
    let (bus, units) = station::sim_fleet::rig::simulated_bus(&batch, &slots).unwrap();
    for unit in &units {
        let phone = unit.phone();
        assert_eq!(phone.mode(), PhoneMode::Bootloader);
        assert_eq!(phone.identity().product, "flashgate_sim");
        {
            let state = phone.lock();
            let super_partition = state.storage.partition("super").unwrap();
            assert_eq!(super_partition.size_bytes, SUPER_SIZE);
            assert!(
                state.storage.partition("system_a").is_none(),
                "system is logical"
            );
        }
        unit.plug();
    }
    let outcome = run_batch(BatchSetup {
        stop_after_verdicts: Some(2),
        slots: slots.iter().map(|(s, _)| (sim_port(*s), *s)).collect(),
        station,
        batch,
        bus,
        reactions: Vec::new(),
    });
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(2), Verdict::Pass);

    // A declared size wins over the image's.
    let manifest = line.path("products/fgsuper.yaml");
    let text = fs::read_to_string(&manifest).unwrap();
    let declared = text.replace(
        "regions:\n",
        "sizes:\n  partitions: { super: 134217728 }\nregions:\n",
    );
    fs::write(&manifest, declared).unwrap();
    flashgate_scenarios::sign_manifest(&manifest);
    assert_eq!(super_size(&check().1), Some(128 * MIB));
    // A plan that writes its logical partitions by name in fastbootd, with no super image and
    // no declared size: the default.
    let line = Line::fastbootd("        slot: a\n        set_active: a");
    let (_, batch) = load_and_check(
        &line.path("station.yaml"),
        &line.path("work-orders/WO-SUPER-00WW.yaml"),
    )
    .unwrap_or_else(|e| panic!("pre-flight: {e}"));
    assert_eq!(super_size(&batch), Some(DEFAULT_SUPER_SIZE));
}
