//! A dynamic-partition phone flashed and verified entirely in EDL (`verify: edl_readback`): a
//! factory `super.img` (erofs `system` made by Debian's `mkfs.erofs -zlz4hc`, packed by our LP
//! writer, made sparse by `img2simg`) programmed into `super` by a rawprogram line, then the
//! client read back through Firehose `<read>` before the reset — the GPT, the LP metadata of the
//! booting slot's metadata slot, the erofs metadata and the client — on phones whose bootloader
//! has no `fetch` and whose reset boots Android.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use flashgate_scenarios::batch::{run_batch, BatchOutcome, BatchSetup};
use flashgate_scenarios::pseudo_random;
use flashgate_scenarios::super_image::{erofs_lz4hc, hex_sha256, sparse_super};
use protocols::sim::edl::EdlSimConfig;
use protocols::sim::fastboot::{FastbootConfig, FetchAllow};
use protocols::sim::{Phone, PhoneMode};
use sha2::{Digest, Sha256};
use station::bus::sim::SimBus;
use station::events::SlotNumber;
use station::preflight::load_and_check;
use station::sim_fleet::rig::sim_port;
use station::sim_fleet::SimUnit;
use station::verdict::Verdict;

const MIB: u64 = 1 << 20;
const SUPER_SIZE: u64 = 48 * MIB;
const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";
/// The demo product's Sahara identity and signed programmer (`configs/demo`).
const HW_ID: u64 = 0x001b_80e1_0000_0000;
const PROGRAMMER: &str = "configs/demo/images/edl/prog_firehose_fgdemo.elf";

/// A region's client: incompressible, like an APK's stored entries.
fn client(region: &str) -> Vec<u8> {
    pseudo_random(u64::from(region.as_bytes()[3]) + 100, MIB as usize + 777)
}

fn oem_pk_hash() -> Vec<u8> {
    Sha256::digest(b"flashgate simulated OEM root key").to_vec()
}

/// A phone of the line: dynamic partitions, in EDL, a production bootloader (no `fetch`) and
/// a boot chain that ends in Android.
fn phone(slot: SlotNumber, programmer_sha256: [u8; 32]) -> Phone {
    Phone::builder()
        .serial(&format!("FGE{slot:05}"))
        .chip_serial(0x5EC1_0000 + u32::from(slot))
        .msm_hw_id(HW_ID)
        .oem_pk_hash(&oem_pk_hash())
        .accept_programmer(programmer_sha256)
        .mode(PhoneMode::Edl)
        .boots_to(PhoneMode::Android)
        .dynamic_partitions(SUPER_SIZE)
        .build()
        .unwrap()
}

struct Line {
    dir: tempfile::TempDir,
}

impl Line {
    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `system` (erofs lz4hc) holding `region`'s client.
    fn system_image(&self, region: &str) -> PathBuf {
        let files = [
            (CLIENT.to_string(), client(region)),
            (
                "/system/build.prop".to_string(),
                format!("ro.product.region={region}\nro.build.display.id=FGEDL.{region}.1\n")
                    .into_bytes(),
            ),
            (
                "/system/framework/framework.jar".to_string(),
                pseudo_random(77, 3 << 20),
            ),
        ];
        let image = self.path(&format!("system-{region}.erofs"));
        erofs_lz4hc(&self.path(&format!("tree-{region}")), &files, &image);
        image
    }

    /// A sparse `super.img`: `system_a` filled, `system_b` empty unless given.
    fn super_image(&self, out: &Path, system_a: &Path, system_b: Option<&Path>) {
        let mut images = vec![("system_a", system_a)];
        if let Some(b) = system_b {
            images.push(("system_b", b));
        }
        sparse_super(out, SUPER_SIZE, &["system"], &images);
    }

    /// Product `fgedl` (regions 00WW and 00CN, each an EDL package writing its `super.img`),
    /// a work order per region, a station of three slots; `ww_system_b` mis-packages the 00WW
    /// build with the China system in `system_b`.
    fn new(ww_system_b: bool) -> Line {
        let line = Line {
            dir: tempfile::tempdir().unwrap(),
        };
        let images = line.path("images");
        fs::create_dir_all(images.join("edl")).unwrap();
        let programmer = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(PROGRAMMER)).unwrap();
        fs::write(images.join("edl/prog.elf"), &programmer).unwrap();
        let ww = line.system_image("00WW");
        let cn = line.system_image("00CN");
        line.super_image(
            &images.join("00WW/super.img"),
            &ww,
            ww_system_b.then_some(cn.as_path()),
        );
        line.super_image(&images.join("00CN/super.img"), &cn, None);

        let layout = phone(0, [0; 32]).lock().storage.partition("super").unwrap();
        let mut regions = String::new();
        for region in ["00WW", "00CN"] {
            let rawprogram = format!(
                "<?xml version=\"1.0\" ?>\n<data>\n  <program SECTOR_SIZE_IN_BYTES=\"{}\" \
                 file_sector_offset=\"0\" filename=\"super.img\" label=\"super\" \
                 num_partition_sectors=\"{}\" partofsingleimage=\"false\" \
                 physical_partition_number=\"{}\" readbackverify=\"false\" sparse=\"true\" \
                 start_sector=\"{}\"/>\n</data>\n",
                layout.sector_size,
                layout.last_lba - layout.first_lba + 1,
                layout.lun,
                layout.first_lba
            );
            fs::write(
                images.join(format!("{region}/rawprogram0.xml")),
                &rawprogram,
            )
            .unwrap();
            let super_img = fs::read(images.join(format!("{region}/super.img"))).unwrap();
            regions.push_str(&format!(
                "  {region}:
    build_id: FGEDL.{region}.1
    files:
      super: {{ path: {region}/super.img, size: {}, sha256: \"{}\" }}
      rawprogram0: {{ path: {region}/rawprogram0.xml, size: {}, sha256: \"{}\" }}
    flash:
      edl:
        storage: ufs
        rawprogram: [rawprogram0]
    activation_client:
      partition: super
      image: super
      logical_partition: system
      path: {CLIENT}
      sha256: \"{}\"
      verify: edl_readback
",
                super_img.len(),
                hex_sha256(&super_img),
                rawprogram.len(),
                hex_sha256(rawprogram.as_bytes()),
                hex_sha256(&client(region)),
            ));
        }
        fs::create_dir_all(line.path("products")).unwrap();
        fs::write(
            line.path("products/fgedl.yaml"),
            format!(
                "product: fgedl
identity:
  edl:
    - hw_id: \"0x{HW_ID:016x}\"
      oem_pk_hash: \"{}\"
      programmer: {{ path: edl/prog.elf, size: {}, sha256: \"{}\" }}
regions:
{regions}",
                hex::encode(oem_pk_hash()),
                programmer.len(),
                hex_sha256(&programmer)
            ),
        )
        .unwrap();
        flashgate_scenarios::sign_manifest(&line.path("products/fgedl.yaml"));
        fs::create_dir_all(line.path("work-orders")).unwrap();
        for region in ["00WW", "00CN"] {
            fs::write(
                line.path(&format!("work-orders/WO-EDL-{region}.yaml")),
                format!("id: WO-EDL-{region}\nproduct: fgedl\nregion: {region}\nquantity: 10\n"),
            )
            .unwrap();
        }
        fs::write(
            line.path("station.yaml"),
            format!("{}{}", "station_id: edl-st01
image_root: images
products_dir: products
journal: state/journal.sqlite
log_dir: state/logs
limits:
  parallel_slots: 3
  timeouts: { command_secs: 30, identify_secs: 60, flash_partition_secs: 600, verify_secs: 300, reenumerate_secs: 90 }
  retries: { identify: 2, flash_partition: 1 }
slots:
  - { slot: 1, simulated: edl }
  - { slot: 2, simulated: edl }
", flashgate_scenarios::DEMO_TRUSTED_KEYS_YAML),
        )
        .unwrap();
        line
    }

    /// Work order `WO-EDL-{region}` on two phones; `before` may stage a phone.
    fn run(&self, region: &str, before: impl Fn(SlotNumber, &Phone)) -> BatchOutcome {
        let (station, batch) = load_and_check(
            &self.path("station.yaml"),
            &self.path(&format!("work-orders/WO-EDL-{region}.yaml")),
        )
        .unwrap_or_else(|e| panic!("pre-flight: {e}"));
        let programmer_sha256 = batch.programmers[0].sha256().0;
        let bus = SimBus::new();
        let slots: BTreeMap<String, SlotNumber> = (1..=2).map(|s| (sim_port(s), s)).collect();
        for (port, slot) in &slots {
            let phone = phone(*slot, programmer_sha256);
            before(*slot, &phone);
            let bootloader = FastbootConfig {
                fetch_allow: FetchAllow::None,
                ..FastbootConfig::default()
            };
            SimUnit::new(&bus, port, phone, bootloader, EdlSimConfig::default()).plug();
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

fn chip_serial(slot: SlotNumber) -> String {
    station::bus::edl_serial_text(0x5EC1_0000 + u32::from(slot))
}

#[test]
fn a_super_image_flashed_through_edl_is_verified_in_the_booting_slots_logical_system() {
    // The 00WW build is mis-packaged: system_b holds the 00CN system. Slot 1's phone boots a,
    // slot 2's boots b.
    let line = Line::new(true);
    let outcome = line.run("00WW", |slot, phone| {
        if slot == 2 {
            phone.lock().storage.set_active_slot("b").unwrap();
        }
    });

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    let row = &outcome.history(&chip_serial(1))[0];
    assert_eq!(row.verify_method.as_deref(), Some("edl_readback"));
    assert_eq!(
        row.activation_sha256_found.as_deref(),
        Some(&*hex_sha256(&client("00WW")))
    );
    let read = row.verify_bytes_read.unwrap();
    let size = client("00WW").len() as u64;
    println!("EDL read-back inside super: {read} bytes over Firehose for a {size}-byte client");
    // GPT, LP metadata, erofs metadata and the client (stored: it does not compress): not the
    // 48 MiB super, nor the whole system.
    assert!(read >= size && read < size + 128 * 1024, "{read}");

    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "ACTIVATION_CLIENT_WRONG_REGION", "{sentence}");
    assert!(
        sentence.contains(&format!("super/system_b {CLIENT} has the 00CN client")),
        "{sentence}"
    );
    let row = &outcome.history(&chip_serial(2))[0];
    assert_eq!(
        row.activation_sha256_found.as_deref(),
        Some(&*hex_sha256(&client("00CN")))
    );
}
