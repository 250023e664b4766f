//! The three verification routes a product manifest can name, whole batches on simulated
//! phones of the demo product:
//! - `edl_readback`: the client read through Firehose `<read>` before the EDL unit's reset, on
//!   the slot the GPT's A/B bits say the bootloader boots — on phones whose production
//!   bootloader has no `fetch` and whose reset boots Android (they leave the bus for good);
//! - `host_readback`: through the bootloader's `fetch:` (a bootloader without it fails the unit
//!   with DEVICE_FAIL naming `fetch`);
//! - `device_digest`: the bootloader's `oem sha256` of a raw range (no `fetch` needed).

use std::collections::BTreeMap;

use flashgate_scenarios::batch::{run_batch, BatchOutcome, BatchSetup, DemoStation};
use protocols::sim::fastboot::FetchAllow;
use protocols::sim::storage::DropWrites;
use protocols::sim::PhoneMode;
use sha2::{Digest, Sha256};
use station::bus::sim::SimBus;
use station::config::StationConfig;
use station::events::{EventKind, SlotNumber};
use station::image::ImageFileSource;
use station::journal::AttemptRow;
use station::mode::Mode;
use station::preflight::CheckedBatch;
use station::read_at::ReadAt;
use station::sim_fleet::rig::{sim_port, simulated_bus};
use station::sim_fleet::SimUnit;
use station::verdict::Verdict;

const EEA: &str = "WO-DEMO-EEA";
const CLIENT: &str = "/priv-app/ActivationClient/ActivationClient.apk";
/// The demo product's fastboot plan, the same in every region.
const FASTBOOT_PLAN: &str = "      fastboot:
        slot: all
        set_active: a
        partitions:
          - { partition: boot, image: boot }
          - { partition: system, image: system }
          - { partition: vbmeta, image: vbmeta }
";

/// The demo product as a line that flashes only through EDL and verifies by Firehose
/// read-back: every region's fastboot plan dropped, `verify: edl_readback`.
fn edl_readback_demo() -> DemoStation {
    let demo = DemoStation::new();
    demo.edit_manifest(|text| {
        assert_eq!(text.matches(FASTBOOT_PLAN).count(), 3, "the demo's plans");
        text.replace(FASTBOOT_PLAN, "")
            .replace("verify: host_readback", "verify: edl_readback")
    });
    demo
}

/// Phones of the batch's product on `slots`, plugged; `stage` prepares each before it is.
struct Line {
    station: StationConfig,
    batch: CheckedBatch,
    bus: SimBus,
    units: BTreeMap<SlotNumber, SimUnit>,
}

impl Line {
    fn new(demo: &DemoStation, slots: &[(SlotNumber, Mode)]) -> Line {
        let (station, batch) = demo.load(EEA);
        let (bus, units) = simulated_bus(&batch, slots).unwrap();
        let units = slots.iter().map(|(s, _)| *s).zip(units).collect();
        Line {
            station,
            batch,
            bus,
            units,
        }
    }

    fn unit(&self, slot: SlotNumber) -> &SimUnit {
        &self.units[&slot]
    }

    /// A production phone: its bootloader has no `fetch`, and a normal boot (Firehose's
    /// power reset included) ends in Android, off the station's bus.
    fn production_phone(&self, slot: SlotNumber) {
        let unit = self.unit(slot);
        unit.configure_fastboot(|c| c.fetch_allow = FetchAllow::None);
        unit.phone().lock().lifecycle.boots_to = PhoneMode::Android;
    }

    fn run(self) -> BatchOutcome {
        for unit in self.units.values() {
            unit.plug();
        }
        let slots: BTreeMap<String, SlotNumber> =
            self.units.keys().map(|s| (sim_port(*s), *s)).collect();
        run_batch(BatchSetup {
            stop_after_verdicts: Some(slots.len()),
            slots,
            station: self.station,
            batch: self.batch,
            bus: self.bus,
            reactions: Vec::new(),
        })
    }
}

fn edl_slots(n: SlotNumber) -> Vec<(SlotNumber, Mode)> {
    (1..=n).map(|s| (s, Mode::Edl)).collect()
}

/// The one journal row of the unit on `slot` (EDL units are journaled under their chip serial
/// when they never reach fastboot).
fn row_of(outcome: &BatchOutcome, line_serial: &str) -> AttemptRow {
    let rows = outcome.history(line_serial);
    assert_eq!(rows.len(), 1, "{line_serial}: {rows:?}");
    rows.into_iter().next().unwrap()
}

fn chip_serial(unit: &SimUnit) -> String {
    station::bus::edl_serial_text(unit.phone().identity().chip_serial)
}

/// The expanded bytes of a demo image (raw or sparse).
fn expanded(demo: &DemoStation, relative: &str) -> Vec<u8> {
    let mut source = ImageFileSource::open(&demo.image(relative)).unwrap();
    let mut bytes = vec![0u8; source.len() as usize];
    source.read_exact_at(0, &mut bytes).unwrap();
    bytes
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn edl_readback_passes_production_phones_without_fetch_on_the_slot_each_boots() {
    let demo = edl_readback_demo();
    let line = Line::new(&demo, &edl_slots(3));
    // The rig plays a product verified through EDL with production phones (no `fetch`, reset
    // into Android), as `flashgate run --sim` does.
    for slot in 1..=3 {
        assert_eq!(
            line.unit(slot).phone().lifecycle().boots_to,
            PhoneMode::Android
        );
    }
    // Slot 2's GPT makes b the booting slot (it was switched before it came to the line).
    line.unit(2)
        .phone()
        .lock()
        .storage
        .set_active_slot("b")
        .unwrap();
    let serials: Vec<String> = (1..=3).map(|s| chip_serial(line.unit(s))).collect();
    let phones: Vec<_> = (1..=3).map(|s| line.unit(s).phone().clone()).collect();
    let wanted = line.batch.image_set.activation_client.sha256;
    let client_size = line.batch.activation.client_size;
    let outcome = line.run();

    outcome.assert_every_verdict_journaled_first();
    for slot in 1..=3u16 {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
        let row = row_of(&outcome, &serials[usize::from(slot) - 1]);
        assert_eq!(row.mode, Some(Mode::Edl));
        assert_eq!(
            row.verify_method.as_deref(),
            Some("edl_readback"),
            "{row:?}"
        );
        assert_eq!(
            row.activation_sha256_found.as_deref(),
            Some(&*wanted.to_string())
        );
        assert!(row.verify_started_at.is_some() && row.verify_done_at.is_some());
        // The GPT, ext4 metadata and the client, with read-ahead: not the 4 GiB partition.
        let read = row.verify_bytes_read.unwrap();
        println!(
            "slot {slot}: EDL read-back read {read} bytes over Firehose for a \
             {client_size}-byte client"
        );
        assert!(
            read >= client_size && read <= client_size + 96 * 1024,
            "{read}"
        );
        // Reset into Android: the unit left the bus and never came back in fastboot.
        assert_eq!(phones[usize::from(slot) - 1].mode(), PhoneMode::Android);
        let events = outcome.slot_events(slot);
        assert!(
            !events.iter().any(|e| matches!(
                e,
                EventKind::ModeChanged {
                    mode: Mode::Fastboot,
                    ..
                }
            )),
            "slot {slot}: {events:?}"
        );
    }
    // Each unit was read on the slot its GPT boots.
    for (slot, partition) in [(1, "system_a"), (2, "system_b"), (3, "system_a")] {
        let verified: Vec<String> = outcome
            .slot_events(slot)
            .into_iter()
            .filter_map(|e| match e {
                EventKind::PhaseChanged { phase, .. } => Some(phase.to_string()),
                _ => None,
            })
            .filter(|phase| phase.starts_with("verify"))
            .collect();
        assert_eq!(
            verified,
            [
                "verify reading the GPT through EDL".to_string(),
                format!("verify {partition} {CLIENT} (EDL read-back)")
            ],
            "slot {slot}"
        );
    }
}

#[test]
fn a_booting_slot_b_holding_the_china_client_fails_wrong_region_through_edl_readback() {
    let demo = edl_readback_demo();
    let line = Line::new(&demo, &edl_slots(2));
    for slot in 1..=2 {
        line.production_phone(slot);
    }
    // Slot 2 comes back from a China line: slot b boots and holds the 00CN system, and this
    // time the writes to system_b are lost (the package's program answers ACK all the same).
    let cn_system = expanded(&demo, "00CN/system.img");
    {
        let phone = line.unit(2).phone();
        phone.write_partition("system_b", 0, &cn_system).unwrap();
        phone.lock().storage.set_active_slot("b").unwrap();
        phone.drop_writes(DropWrites::Partitions(vec!["system_b".into()]));
    }
    let failing = chip_serial(line.unit(2));
    let phone2 = line.unit(2).phone().clone();
    let outcome = line.run();

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "ACTIVATION_CLIENT_WRONG_REGION", "{sentence}");
    assert!(
        sentence.contains(&format!("system_b {CLIENT} has the 00CN client")),
        "{sentence}"
    );
    assert!(sentence.contains("needs 00EEA"), "{sentence}");
    let row = row_of(&outcome, &failing);
    assert_eq!(row.verify_method.as_deref(), Some("edl_readback"));
    let cn_client = demo.load("WO-DEMO-CN").1.image_set.activation_client.sha256;
    assert_eq!(
        row.activation_sha256_found.as_deref(),
        Some(&*cn_client.to_string())
    );
    // A unit that fails is not reset: it stays in EDL, where it cannot boot the wrong client.
    assert_eq!(phone2.mode(), PhoneMode::Edl);
}

#[test]
fn a_gpt_with_no_bootable_slot_fails_slot_mismatch_and_the_unit_stays_in_edl() {
    let demo = edl_readback_demo();
    let line = Line::new(&demo, &edl_slots(2));
    for slot in 1..=2 {
        line.production_phone(slot);
    }
    {
        let mut phone = line.unit(2).phone().lock();
        phone.storage.set_slot_flags("a", false, true).unwrap();
        phone.storage.set_slot_flags("b", false, true).unwrap();
    }
    let phone2 = line.unit(2).phone().clone();
    let outcome = line.run();

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "SLOT_MISMATCH", "{sentence}");
    assert!(
        sentence.contains("the phone will boot slot none, expected slot a or b"),
        "{sentence}"
    );
    assert!(
        sentence.contains("no bootable slot: the active slot a"),
        "{sentence}"
    );
    assert!(sentence.contains("unbootable"), "{sentence}");
    assert_eq!(phone2.mode(), PhoneMode::Edl);
}

#[test]
fn host_readback_needs_the_bootloaders_fetch_and_names_it_when_there_is_none() {
    // Today's route on the same line: EDL units reset into the bootloader and are read back
    // through `fetch:` — slot 1's factory bootloader has it, slot 2's production one does not;
    // slot 3 is flashed in fastboot and read back the same way.
    let demo = DemoStation::new();
    let outcome = demo
        .phones(
            EEA,
            "phones:\n\
             \x20 - { slot: 1, mode: edl }\n\
             \x20 - { slot: 2, mode: edl, bootloader: { fetch: none } }\n\
             \x20 - { slot: 3, mode: fastboot }\n",
        )
        .run(Vec::new());

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(3), Verdict::Pass);
    for serial in ["FG000101", "FG000103"] {
        let row = row_of(&outcome, serial);
        assert_eq!(
            row.verify_method.as_deref(),
            Some("host_readback"),
            "{row:?}"
        );
    }
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "DEVICE_FAIL", "{sentence}");
    assert!(
        sentence.contains("`fetch:system_a:")
            && sentence.contains("answered FAIL: unknown command"),
        "{sentence}"
    );
}

#[test]
fn device_digest_of_a_raw_range_needs_no_fetch() {
    // Region 00EEA's client as a raw range: the first 12 KiB of its boot image, checked by the
    // bootloader's `oem sha256` after flashing, on phones whose bootloader has no `fetch`.
    let demo = DemoStation::new();
    let eea_sha = demo.load(EEA).1.image_set.activation_client.sha256;
    let boot = expanded(&demo, "00EEA/boot.img");
    let range = &boot[..12288];
    demo.edit_manifest(|text| {
        let at = text.find("  00EEA:").unwrap();
        let (head, tail) = text.split_at(at);
        let eea_client = format!(
            "    activation_client:
      partition: system
      image: system
      path: {CLIENT}
      sha256: \"{}\"
      verify: host_readback
",
            eea_sha
        );
        assert!(tail.contains(&eea_client), "the demo's 00EEA client");
        let raw_client = format!(
            "    activation_client:
      partition: boot
      image: boot
      raw: {{ offset: 0, length: 12288 }}
      sha256: \"{}\"
      verify: device_digest
",
            sha_hex(range)
        );
        format!("{head}{}", tail.replacen(&eea_client, &raw_client, 1))
    });
    let outcome = demo
        .phones(
            EEA,
            "phones:\n\
             \x20 - { slot: 1, mode: fastboot, bootloader: { fetch: none } }\n\
             \x20 - { slot: 2, mode: edl, bootloader: { fetch: none } }\n",
        )
        .run(Vec::new());

    outcome.assert_every_verdict_journaled_first();
    for (slot, serial) in [(1, "FG000101"), (2, "FG000102")] {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
        let row = row_of(&outcome, serial);
        assert_eq!(row.verify_method.as_deref(), Some("device_digest"));
        assert_eq!(row.verify_bytes_read, Some(0));
        assert_eq!(
            row.activation_sha256_found.as_deref(),
            Some(&*sha_hex(range))
        );
    }
}
