//! Whole batches (issues #4 and #6) through the station library on a simulated USB bus: simulated
//! phones of the demo product on their slots, the real unit job (identify, flash, set_active,
//! reboot-bootloader, ext4 read-back of the activation client), the supervisor, and the journal in a tempdir copy of
//! `configs/demo`. Each test asserts the verdicts shown, the events and the journal rows, and
//! that no verdict was shown before its journal row was committed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flashgate_scenarios::batch::{on_event, run_batch, BatchOutcome, BatchSetup, DemoStation};
use flashgate_scenarios::pseudo_random;
use protocols::sim::edl::EdlSimConfig;
use station::batch::{slot_source, SlotSource};
use station::bus::sim::SimBus;
use station::config::{SlotSelection, StationConfig};
use station::events::{EventKind, Phase, SlotNumber};
use station::journal::AttemptRow;
use station::mode::Mode;
use station::preflight::CheckedBatch;
use station::sim_fleet::rig::{factory_fastboot, product_phone, sim_port, simulated_bus};
use station::sim_fleet::SimUnit;
use station::verdict::Verdict;

const CLIENT: &str = "/priv-app/ActivationClient/ActivationClient.apk";
const EEA: &str = "WO-DEMO-EEA";
/// A slowed unit's system image takes seconds on the wire; its cable is pulled this long into
/// the transfer (well inside it, whatever the machine's load).
const PULL_AFTER: Duration = Duration::from_millis(300);
/// The slowed unit's link: 282 KiB of system image take about 4 s.
const SLOW_LINK: u64 = 64 * 1024;

fn ports(slots: &[(SlotNumber, Mode)]) -> BTreeMap<String, SlotNumber> {
    slots.iter().map(|(s, _)| (sim_port(*s), *s)).collect()
}

fn fastboot_slots(n: SlotNumber) -> Vec<(SlotNumber, Mode)> {
    (1..=n).map(|s| (s, Mode::Fastboot)).collect()
}

fn stop_after(verdicts: usize) -> Option<usize> {
    Some(verdicts)
}

/// A batch of simulated phones on `slots`, all plugged at once unless the caller plugs them.
struct Fleet {
    station: StationConfig,
    batch: CheckedBatch,
    bus: SimBus,
    units: Vec<SimUnit>,
    slots: Vec<(SlotNumber, Mode)>,
}

impl Fleet {
    fn new(demo: &DemoStation, work_order: &str, slots: Vec<(SlotNumber, Mode)>) -> Self {
        let (station, batch) = demo.load(work_order);
        let (bus, units) = simulated_bus(&batch, &slots).unwrap();
        Fleet {
            station,
            batch,
            bus,
            units,
            slots,
        }
    }

    /// The phones a phones file (YAML text, paths relative to the demo folder) describes.
    fn from_phones(demo: &DemoStation, work_order: &str, phones_yaml: &str) -> Self {
        let scripted = demo.phones(work_order, phones_yaml);
        Fleet {
            station: scripted.station,
            batch: scripted.batch,
            bus: scripted.rig.bus,
            units: scripted.rig.units,
            slots: scripted.rig.slots,
        }
    }

    fn unit(&self, slot: SlotNumber) -> &SimUnit {
        let i = self.slots.iter().position(|(s, _)| *s == slot).unwrap();
        &self.units[i]
    }

    fn plug_all(&self) {
        for unit in &self.units {
            unit.plug();
        }
    }

    fn setup(self, reactions: Vec<Box<dyn station::events::EventSink>>) -> BatchSetup {
        BatchSetup {
            slots: ports(&self.slots),
            stop_after_verdicts: stop_after(self.slots.len()),
            station: self.station,
            batch: self.batch,
            bus: self.bus,
            reactions,
        }
    }
}

fn serial_of(slot: SlotNumber) -> String {
    format!("FG{:06}", 100 + u32::from(slot))
}

/// The one journal row of `serial`.
fn only_row(outcome: &BatchOutcome, serial: &str) -> AttemptRow {
    let rows = outcome.history(serial);
    assert_eq!(rows.len(), 1, "{serial}: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// The clean batch: 8 phones from `slot_source(.., Some(8))`, alternating fastboot and
/// EDL, all PASS, and each journal row proves what was sent and what was found on the slot that
/// boots (EDL units are verified through fastboot after their power reset).
#[test]
fn a_clean_batch_of_eight_phones_all_pass_with_proof_in_the_journal() {
    let demo = DemoStation::new();
    let (station, batch) = demo.load(EEA);
    let SlotSource::Simulated(slots) = slot_source(&station, &batch, Some(8)).unwrap() else {
        panic!("--sim slots are simulated");
    };
    let edl_slots: BTreeSet<SlotNumber> = slots
        .iter()
        .filter(|(_, k)| *k == Mode::Edl)
        .map(|(s, _)| *s)
        .collect();
    // The demo product has an EDL package: slots 2, 4, 6, 8 start in EDL.
    assert_eq!(edl_slots, BTreeSet::from([2, 4, 6, 8]), "{slots:?}");
    let fleet = Fleet::new(&demo, EEA, slots);
    fleet.plug_all();
    let system_partition = fleet
        .unit(1)
        .phone()
        .lock()
        .storage
        .partition("system_a")
        .unwrap()
        .size_bytes;
    let system_image_len = expanded_len(&demo.image("00EEA/system.img"));
    let plan = batch.image_set.fastboot.clone().unwrap();
    let expected_client = batch.image_set.activation_client.sha256.to_hex();
    let outcome = run_batch(fleet.setup(Vec::new()));

    assert_eq!(outcome.summary.passed, 8, "{:?}", outcome.verdicts());
    assert_eq!(outcome.summary.failed, 0);
    outcome.assert_every_verdict_journaled_first();
    for slot in 1..=8 {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass);
        let row = only_row(&outcome, &serial_of(slot));
        assert_eq!(row.slot, slot);
        assert_eq!(row.port_path, sim_port(slot));
        assert_eq!(row.result, "PASS");
        assert_eq!(row.work_order, EEA);
        assert_eq!(row.region, "00EEA");
        assert_eq!(row.build_id, batch.image_set.build_id);
        // The build id the phone holds, read back from its build.prop with the client.
        assert_eq!(
            row.build_id_found.as_deref(),
            Some(batch.image_set.build_id.as_str())
        );
        assert_eq!(
            row.activation_sha256_found.as_deref(),
            Some(&*expected_client)
        );
        assert_eq!(row.verify_method.as_deref(), Some("host_readback"));
        let read = row.verify_bytes_read.unwrap();
        // ext4 read-back fetches superblock, descriptors, inodes, directories and the client's
        // blocks — not the 4 GiB partition, not even the whole image.
        assert!(read > 0, "{row:?}");
        assert!(
            read * 1000 < system_partition,
            "verification read {read} bytes of a {system_partition}-byte partition"
        );
        assert!(
            read * 4 < system_image_len,
            "verification read {read} bytes of a {system_image_len}-byte filesystem"
        );
        for image in &row.images_sent {
            let file = batch.image(&image.file).unwrap();
            assert_eq!(image.sha256, file.sha256(), "{image:?}");
        }
        if edl_slots.contains(&slot) {
            // Flashed over EDL: the row keeps that mode although the unit was identified again
            // in fastboot after its power reset (the serial is then the fastboot one).
            assert_eq!(row.mode, Some(Mode::Edl), "{row:?}");
            assert!(!row.images_sent.is_empty(), "{row:?}");
            assert!(outcome.slot_events(slot).contains(&EventKind::ModeChanged {
                slot,
                mode: Mode::Fastboot
            }));
        } else {
            assert_eq!(row.mode, Some(Mode::Fastboot), "{row:?}");
            // slot: all → both slots of every partition of the plan.
            assert_eq!(plan.slot, SlotSelection::All);
            let sent: BTreeSet<(String, String)> = row
                .images_sent
                .iter()
                .map(|i| (i.partition.clone(), i.file.clone()))
                .collect();
            let expected: BTreeSet<(String, String)> = plan
                .steps
                .iter()
                .flat_map(|s| ["a", "b"].map(|x| (format!("{}_{x}", s.partition), s.file.clone())))
                .collect();
            assert_eq!(sent, expected);
            for image in &row.images_sent {
                assert_eq!(image.bytes, batch.image(&image.file).unwrap().size());
            }
        }
        assert_eq!(
            fleet_current_slot(&outcome, slot),
            Some("a".into()),
            "plan sets a active"
        );
    }
    let report = outcome.journal.report(EEA).unwrap();
    assert_eq!(report.counts.units_passed, 8);
    assert_eq!(report.counts.yield_percent, Some(100.0));
}

/// The length of a sparse image once expanded (what the phone's filesystem spans).
fn expanded_len(path: &std::path::Path) -> u64 {
    let mut header = [0u8; protocols::sparse::FILE_HEADER_LEN];
    std::io::Read::read_exact(&mut File::open(path).unwrap(), &mut header).unwrap();
    protocols::sparse::SparseHeader::parse(&header)
        .unwrap()
        .expanded_len()
}

/// The phone's `current-slot` as the unit job verified it (from its Verify phase event).
fn fleet_current_slot(outcome: &BatchOutcome, slot: SlotNumber) -> Option<String> {
    outcome.slot_events(slot).iter().find_map(|e| match e {
        EventKind::PhaseChanged {
            phase: Phase::Verify { what },
            ..
        } => what
            .strip_prefix("system_")
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string),
        _ => None,
    })
}

/// A phone that answers OKAY to every write but keeps nothing fails verification; the rest of
/// the batch passes.
#[test]
fn a_phone_that_drops_its_writes_fails_verification_and_the_others_pass() {
    let demo = DemoStation::new();
    let fleet = Fleet::from_phones(
        &demo,
        EEA,
        "phones:\n  - slot: 1\n  - slot: 2\n  - slot: 3\n    faults: { drop_writes: all }\n  - slot: 4\n",
    );
    fleet.plug_all();
    let outcome = run_batch(fleet.setup(Vec::new()));

    outcome.assert_every_verdict_journaled_first();
    for slot in [1, 2, 4] {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
    }
    let (code, sentence) = outcome.failure_on(3);
    // The phone's system_a is still blank: no ext4 filesystem to find the client in.
    assert_eq!(code, "VERIFY_MISMATCH", "{sentence}");
    let serial = serial_of(3);
    assert!(
        sentence.starts_with(&format!("slot 3 (serial {serial}): system_a ")),
        "{sentence}"
    );
    assert!(sentence.contains("ext4"), "{sentence}");
    let row = only_row(&outcome, &serial);
    assert_eq!(row.failure_code.as_deref(), Some("VERIFY_MISMATCH"));
    // Everything was "sent" (the phone said OKAY), and nothing was found.
    assert_eq!(row.images_sent.len(), 6, "{row:?}");
    assert_eq!(row.activation_sha256_found, None);
    assert_eq!(outcome.summary.passed, 3);
    assert_eq!(
        outcome.summary.failures_by_code.get("VERIFY_MISMATCH"),
        Some(&1)
    );
}

/// The same lie over EDL: Firehose ACKs every `<program>` and keeps nothing; after the power
/// reset the station reads the booting slot back through fastboot and refuses the unit.
#[test]
fn an_edl_phone_that_drops_its_writes_fails_verification() {
    let demo = DemoStation::new();
    let fleet = Fleet::from_phones(
        &demo,
        EEA,
        "phones:\n  - { slot: 1, mode: edl }\n  - { slot: 2, mode: edl, faults: { drop_writes: all } }\n",
    );
    fleet.plug_all();
    let outcome = run_batch(fleet.setup(Vec::new()));

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "VERIFY_MISMATCH", "{sentence}");
    assert!(
        sentence.starts_with(&format!("slot 2 (serial {}): system_", serial_of(2))),
        "{sentence}"
    );
    assert!(outcome.slot_events(2).contains(&EventKind::ModeChanged {
        slot: 2,
        mode: Mode::Fastboot
    }));
    let row = only_row(&outcome, &serial_of(2));
    assert!(!row.images_sent.is_empty(), "{row:?}");
    assert_eq!(row.activation_sha256_found, None);
}

/// A phone of another product is refused at identification, before anything is written.
#[test]
fn a_phone_of_another_product_fails_identification() {
    let demo = DemoStation::new();
    let fleet = Fleet::from_phones(
        &demo,
        EEA,
        "phones:\n  - slot: 1\n  - { slot: 2, product: otherphone }\n  - slot: 3\n",
    );
    fleet.plug_all();
    let phone = fleet.unit(2).phone().clone();
    let outcome = run_batch(fleet.setup(Vec::new()));

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(3), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "IDENTITY_MISMATCH");
    assert_eq!(
        sentence,
        format!(
            "slot 2 (serial {}): fastboot product is otherphone, this product needs flashgate_sim",
            serial_of(2)
        )
    );
    let row = only_row(&outcome, &serial_of(2));
    assert!(row.images_sent.is_empty(), "{row:?}");
    assert_eq!(row.flash_started_at, None);
    assert!(!outcome.slot_events(2).iter().any(|e| matches!(
        e,
        EventKind::PhaseChanged {
            phase: Phase::Flash { .. },
            ..
        }
    )));
    // Nothing was written: boot_a is still blank.
    let mut head = [0xa5u8; 4096];
    phone.read_partition("boot_a", 0, &mut head).unwrap();
    assert!(head.iter().all(|b| *b == 0));
}

/// Three fastboot phones; the one on slot 2 was once flashed with the China build: the 00CN
/// system image in `system_b`, and `b` the slot that boots.
const CHINA_ON_SLOT_B_OF_2: &str = "phones:
  - slot: 1
  - slot: 2
    current_slot: b
    partitions:
      system_b: { image: images/00CN/system.img }
  - slot: 3
";

/// The 00CN system image expanded, as the phone on slot 2 holds it in `system_b`.
fn china_build_on_slot_b(demo: &DemoStation, unit: &SimUnit) -> Vec<u8> {
    let mut expanded = Cursor::new(Vec::new());
    protocols::sparse::expand(
        File::open(demo.image("00CN/system.img")).unwrap(),
        &mut expanded,
    )
    .unwrap();
    let expanded = expanded.into_inner();
    let phone = unit.phone();
    let mut held = vec![0u8; expanded.len()];
    phone.read_partition("system_b", 0, &mut held).unwrap();
    assert!(
        held == expanded,
        "the phones file put the China build on system_b"
    );
    assert_eq!(phone.current_slot().as_deref(), Some("b"));
    expanded
}

/// With the demo plan (`slot: all`, `set_active: a`) the China build on the other slot is
/// overwritten, the phone switched to `a`, and the booting slot verified: PASS.
#[test]
fn china_build_on_the_other_slot_is_switched_away_and_verified() {
    let demo = DemoStation::new();
    let fleet = Fleet::from_phones(&demo, EEA, CHINA_ON_SLOT_B_OF_2);
    let china = china_build_on_slot_b(&demo, fleet.unit(2));
    fleet.plug_all();
    let phone = fleet.unit(2).phone().clone();
    let outcome = run_batch(fleet.setup(Vec::new()));

    outcome.assert_every_verdict_journaled_first();
    for slot in 1..=3 {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
    }
    assert_eq!(phone.current_slot().as_deref(), Some("a"));
    assert_eq!(fleet_current_slot(&outcome, 2).as_deref(), Some("a"));
    assert!(outcome.slot_events(2).contains(&EventKind::PhaseChanged {
        slot: 2,
        phase: Phase::SetActive {
            slot_suffix: "_a".into()
        }
    }));
    let row = only_row(&outcome, &serial_of(2));
    assert!(row.images_sent.iter().any(|i| i.partition == "system_b"));
    // The China build is gone from slot b as well.
    let mut head = vec![0u8; china.len()];
    phone.read_partition("system_b", 0, &mut head).unwrap();
    assert_ne!(head, china);
}

/// With a plan that writes slot `a` only and never switches, the phone still boots `b`, which
/// holds the China build: the station verifies the booting slot and refuses the unit.
#[test]
fn china_build_on_the_booting_slot_fails_when_the_plan_does_not_switch() {
    let demo = DemoStation::new();
    demo.edit_manifest(|text| {
        let start = text.find("  00EEA:").unwrap();
        let (head, tail) = text.split_at(start);
        let tail = tail.replacen(
            "        slot: all\n        set_active: a\n",
            "        slot: a\n",
            1,
        );
        format!("{head}{tail}")
    });
    let fleet = Fleet::from_phones(&demo, EEA, CHINA_ON_SLOT_B_OF_2);
    let plan = fleet.batch.image_set.fastboot.clone().unwrap();
    assert_eq!((plan.slot, plan.set_active), (SlotSelection::A, None));
    china_build_on_slot_b(&demo, fleet.unit(2));
    fleet.plug_all();
    let outcome = run_batch(fleet.setup(Vec::new()));

    outcome.assert_every_verdict_journaled_first();
    // Fresh phones boot `a`, which the plan wrote.
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(3), Verdict::Pass);
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "ACTIVATION_CLIENT_WRONG_REGION");
    assert_eq!(
        sentence,
        format!(
            "slot 2 (serial {}): system_b {CLIENT} has the 00CN client, work order {EEA} needs 00EEA",
            serial_of(2)
        )
    );
    let row = only_row(&outcome, &serial_of(2));
    let sent: Vec<&str> = row
        .images_sent
        .iter()
        .map(|i| i.partition.as_str())
        .collect();
    assert_eq!(sent, ["boot_a", "system_a", "vbmeta_a"]);
    let (_, china) = demo.load("WO-DEMO-CN");
    assert_eq!(
        row.activation_sha256_found,
        Some(china.image_set.activation_client.sha256.to_hex())
    );
}

/// Pull the cable of one unit while its system image is on the wire (its link slowed so the
/// transfer lasts): that unit fails DISCONNECTED, its slot returns to waiting, the rest pass.
#[test]
fn a_phone_unplugged_mid_flash_fails_disconnected_while_the_rest_pass() {
    let demo = DemoStation::new();
    let fleet = Fleet::new(&demo, EEA, fastboot_slots(4));
    let victim = fleet.unit(2).clone();
    victim.set_link_bytes_per_second(Some(SLOW_LINK));
    fleet.plug_all();
    let pulled = Arc::new(AtomicBool::new(false));
    let pull = {
        let pulled = pulled.clone();
        let bus = fleet.bus.clone();
        let mut in_system = false;
        on_event(move |event| match &event.kind {
            EventKind::PhaseChanged { slot: 2, phase } => {
                in_system = matches!(phase, Phase::Flash { partition } if partition == "system");
            }
            // The system image's transfer started (the fastboot client announces the step with
            // 0 bytes done); at 64 KiB/s it lasts seconds: pull the cable a moment into it.
            EventKind::BytesProgress {
                slot: 2,
                done: 0,
                total,
            } if in_system && *total > 0 && !pulled.swap(true, Ordering::SeqCst) => {
                let victim = victim.clone();
                bus.schedule(PULL_AFTER, move |_| victim.unplug());
            }
            _ => {}
        })
    };
    let outcome = run_batch(fleet.setup(vec![Box::new(pull)]));

    assert!(pulled.load(Ordering::SeqCst), "the cable was never pulled");
    outcome.assert_every_verdict_journaled_first();
    for slot in [1, 3, 4] {
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
    }
    let (code, sentence) = outcome.failure_on(2);
    assert_eq!(code, "DISCONNECTED");
    assert!(
        sentence.starts_with(&format!(
            "slot 2 (serial {}): the phone disconnected during flash system",
            serial_of(2)
        )),
        "{sentence}"
    );
    let events = outcome.slot_events(2);
    let verdict_at = events
        .iter()
        .position(|e| matches!(e, EventKind::Verdict { .. }))
        .unwrap();
    assert!(
        events[verdict_at..].contains(&EventKind::UnitRemoved { slot: 2 }),
        "slot 2 did not return to waiting: {events:?}"
    );
    let row = only_row(&outcome, &serial_of(2));
    assert_eq!(row.flash_done_at, None);
    assert_eq!(row.verify_method, None);
    // boot went through before the cable was pulled; system did not.
    assert!(
        row.images_sent.iter().all(|i| i.file != "system"),
        "{row:?}"
    );
}

/// Hot-plug on the simulated bus: eight phones plugged at seeded random times start on their
/// own and pass; a ninth is pulled mid-flash and re-plugged into another slot, where it is a new
/// attempt; a phone on a port no slot maps is reported and never touched. The even slots start
/// in EDL and must finish on the same slot, as the same unit, after the power reset brings them
/// back as fastboot.
#[test]
fn hotplugged_phones_auto_start_keep_their_slots_and_unknown_ports_are_ignored() {
    let demo = DemoStation::new();
    let (_, batch) = demo.load(EEA);
    let edl = batch.image_set.edl.is_some() && !batch.product.identity.edl.is_empty();
    assert!(edl, "the demo product has an EDL package");
    let mut slots: Vec<(SlotNumber, Mode)> = (1..=8)
        .map(|s| {
            let kind = if edl && s % 2 == 0 {
                Mode::Edl
            } else {
                Mode::Fastboot
            };
            (s, kind)
        })
        .collect();
    // Slot 9's phone moves to slot 10 mid-job; slot 10 starts empty.
    slots.push((9, Mode::Fastboot));
    let fleet = Fleet::new(&demo, EEA, slots.clone());
    let mut mapped = ports(&slots);
    mapped.insert(sim_port(10), 10);

    let mover = fleet.unit(9).clone();
    mover.set_link_bytes_per_second(Some(SLOW_LINK));
    let moved = SimUnit::new(
        &fleet.bus,
        &sim_port(10),
        mover.phone().clone(),
        factory_fastboot(),
        EdlSimConfig::default(),
    );
    let stray = SimUnit::new(
        &fleet.bus,
        "sim-99",
        product_phone(&fleet.batch, 99, Mode::Fastboot).unwrap(),
        factory_fastboot(),
        EdlSimConfig::default(),
    );
    let stray_phone = stray.phone().clone();

    // Seeded arrival times, 0–630 ms apart, in a shuffled order.
    let delays = pseudo_random(0x6a7e_5107, 10);
    for (i, unit) in fleet.units.iter().chain([&stray]).enumerate() {
        let unit = unit.clone();
        let delay = Duration::from_millis(u64::from(delays[i] % 64) * 10);
        fleet.bus.schedule(delay, move |_| unit.plug());
    }
    let moving = Arc::new(AtomicBool::new(false));
    let move_it = {
        let moving = moving.clone();
        let bus = fleet.bus.clone();
        let mut in_system = false;
        on_event(move |event| match &event.kind {
            EventKind::PhaseChanged { slot: 9, phase } => {
                in_system = matches!(phase, Phase::Flash { partition } if partition == "system");
            }
            EventKind::BytesProgress {
                slot: 9,
                done: 0,
                total,
            } if in_system && *total > 0 && !moving.swap(true, Ordering::SeqCst) => {
                let mover = mover.clone();
                let moved = moved.clone();
                bus.schedule(PULL_AFTER, move |bus| {
                    mover.unplug();
                    bus.schedule(Duration::from_millis(100), move |_| moved.plug());
                });
            }
            _ => {}
        })
    };
    let setup = BatchSetup {
        station: fleet.station,
        batch: fleet.batch,
        bus: fleet.bus,
        slots: mapped,
        // 8 passes, slot 9's DISCONNECTED, slot 10's PASS.
        stop_after_verdicts: stop_after(10),
        reactions: vec![Box::new(move_it)],
    };
    let outcome = run_batch(setup);

    assert!(
        moving.load(Ordering::SeqCst),
        "the ninth phone was never moved"
    );
    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.summary.passed, 9, "{:?}", outcome.verdicts());
    assert_eq!(outcome.summary.failed, 1);

    // Auto-start: every phone was detected on its slot and ran to a verdict there.
    for (slot, kind) in &slots[..8] {
        let slot = *slot;
        let events = outcome.slot_events(slot);
        assert!(
            matches!(events.first(), Some(EventKind::UnitDetected { port_path, mode, .. })
                if *port_path == sim_port(slot) && *mode == *kind),
            "slot {slot}: {events:?}"
        );
        assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}");
        let row = only_row(&outcome, &serial_of(slot));
        assert_eq!((row.slot, row.port_path.as_str()), (slot, &*sim_port(slot)));
        if *kind == Mode::Edl {
            // EDL → fastboot re-enumeration on the same port: the same unit, the same slot.
            assert!(events.contains(&EventKind::ModeChanged {
                slot,
                mode: Mode::Fastboot
            }));
            let detections = events
                .iter()
                .filter(|e| matches!(e, EventKind::UnitDetected { .. }))
                .count();
            assert_eq!(detections, 1, "slot {slot}: {events:?}");
        }
    }

    // The moved phone: two attempts, two slots, two ports.
    let history = outcome.history(&serial_of(9));
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(
        (
            history[0].slot,
            history[0].port_path.as_str(),
            history[0].result.as_str()
        ),
        (9, "sim-9", "FAIL")
    );
    assert_eq!(history[0].failure_code.as_deref(), Some("DISCONNECTED"));
    assert_eq!(
        (
            history[1].slot,
            history[1].port_path.as_str(),
            history[1].result.as_str()
        ),
        (10, "sim-10", "PASS")
    );
    assert_eq!(outcome.failure_on(9).0, "DISCONNECTED");
    assert_eq!(outcome.verdict_on(10), Verdict::Pass);
    assert!(outcome
        .slot_events(9)
        .contains(&EventKind::UnitRemoved { slot: 9 }));

    // The stray phone on an unmapped port: one warning naming the port, never worked on.
    let warnings: Vec<&String> = outcome
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Warning {
                slot: None,
                message,
            } if message.contains("sim-99") => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("not on any slot"), "{}", warnings[0]);
    assert!(outcome.history(&serial_of(99)).is_empty());
    assert!(!outcome.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::UnitDetected { port_path, .. } if port_path == "sim-99"
    )));
    let mut head = [0xa5u8; 4096];
    stray_phone.read_partition("boot_a", 0, &mut head).unwrap();
    assert!(
        head.iter().all(|b| *b == 0),
        "the stray phone was written to"
    );
}

/// SLOT_MISMATCH: two bootloaders answer OKAY to `set_active a` and still boot `b`
/// — slot 2's ignores the command, slot 3's switches in RAM only and is back on `b` after the
/// reboot the station does before reading `current-slot`. Both fail SLOT_MISMATCH with a
/// sentence naming slot, serial, the slot asked for, the slot found and what to do, and nothing
/// is verified on them; the honest phones pass.
#[test]
fn set_active_acknowledged_but_not_kept_fails_slot_mismatch_while_the_rest_pass() {
    let demo = DemoStation::new();
    let fleet = Fleet::from_phones(
        &demo,
        EEA,
        "phones:\n\
         \x20 - slot: 1\n\
         \x20 - { slot: 2, current_slot: b, faults: { set_active: ignored } }\n\
         \x20 - { slot: 3, current_slot: b, faults: { set_active: lost_on_reboot } }\n\
         \x20 - slot: 4\n",
    );
    let phones: Vec<_> = (1..=4).map(|s| fleet.unit(s).phone().clone()).collect();
    fleet.plug_all();
    let outcome = run_batch(fleet.setup(Vec::new()));

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(4), Verdict::Pass);
    for slot in [2, 3] {
        let serial = serial_of(slot);
        let verdict = outcome.verdict_on(slot);
        let Verdict::Fail(failure) = &verdict else {
            panic!("slot {slot} passed");
        };
        let (code, reason, next_step) = (
            failure.code().as_str(),
            failure.sentence(),
            verdict.next_step(),
        );
        assert_eq!(code, "SLOT_MISMATCH", "{reason}");
        assert_eq!(
            reason,
            format!(
                "slot {slot} (serial {serial}): the phone will boot slot b, expected slot a: the \
                 bootloader acknowledged `set_active a`, but after reboot-bootloader current-slot \
                 is b (slot a not kept: marked unbootable or never persisted); nothing on slot b \
                 was verified — remove the unit and send it to rework for its bootloader"
            )
        );
        assert_eq!(next_step, station::verdict::NextStep::RejectBin);
        let events = outcome.slot_events(slot);
        let reboot = events.iter().position(|e| {
            matches!(
                e,
                EventKind::PhaseChanged {
                    phase: Phase::Reboot,
                    ..
                }
            )
        });
        let set_active = events.iter().position(|e| {
            matches!(
                e,
                EventKind::PhaseChanged {
                    phase: Phase::SetActive { .. },
                    ..
                }
            )
        });
        assert!(set_active < reboot && reboot.is_some(), "{events:?}");
        let row = only_row(&outcome, &serial);
        assert_eq!(row.failure_code.as_deref(), Some("SLOT_MISMATCH"));
        assert_eq!(
            row.failure_message.as_deref(),
            Some(&*format!("SLOT_MISMATCH: {reason}"))
        );
        assert_eq!(row.activation_sha256_found, None, "{row:?}");
        assert_eq!(row.verify_bytes_read, None, "{row:?}");
        assert_eq!(
            phones[usize::from(slot) - 1].current_slot().as_deref(),
            Some("b")
        );
    }
    // The honest phones were switched, rebooted and verified on `a`.
    for slot in [1, 4] {
        assert_eq!(
            phones[usize::from(slot) - 1].current_slot().as_deref(),
            Some("a")
        );
        assert!(outcome
            .slot_events(slot)
            .contains(&EventKind::PhaseChanged {
                slot,
                phase: Phase::Reboot
            }));
    }
    assert_eq!(
        outcome.summary.failures_by_code.get("SLOT_MISMATCH"),
        Some(&2)
    );
}

/// Serial continuity (a unit keeps its slot across re-enumeration): slot 2's
/// phone is swapped for another one while it is off the bus for its `reboot-bootloader`. The
/// newcomer is not taken for the flashed unit: that attempt fails IDENTITY_MISMATCH naming both
/// serials and the port (a warning says so above the rows), and the newcomer runs an attempt
/// of its own on the slot and passes.
#[test]
fn a_phone_swapped_in_during_a_reboot_is_a_new_unit_not_the_flashed_one() {
    let demo = DemoStation::new();
    let fleet = Fleet::from_phones(
        &demo,
        EEA,
        "phones:\n  - slot: 1\n  - slot: 2\n    swap_at_next_reboot: { serial: FG000142 }\n  - slot: 3\n",
    );
    let newcomer_phone = fleet.unit(2).swapped_in().unwrap().phone().clone();
    fleet.plug_all();
    let (flashed, swapped_in) = (serial_of(2), serial_of(42));
    let mut setup = fleet.setup(Vec::new());
    // Three units plus the newcomer's own attempt.
    setup.stop_after_verdicts = stop_after(4);
    let outcome = run_batch(setup);

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    assert_eq!(outcome.verdict_on(3), Verdict::Pass);
    let on_slot_2: Vec<_> = outcome
        .verdicts()
        .into_iter()
        .filter(|(slot, _, _)| *slot == 2)
        .collect();
    assert_eq!(on_slot_2.len(), 2, "{on_slot_2:?}");
    let expected_sentence = format!(
        "slot 2 (serial {flashed}): another phone (serial {swapped_in}) came back on port sim-2 \
         after reboot-bootloader; {flashed} was flashed but not verified: put {flashed} back on \
         a slot for a new attempt ({swapped_in} gets an attempt of its own)"
    );
    match &on_slot_2[0] {
        (_, Some(serial), Verdict::Fail(failure)) => {
            assert_eq!(serial, &flashed);
            assert_eq!(failure.code().as_str(), "IDENTITY_MISMATCH");
            assert_eq!(failure.sentence(), expected_sentence);
        }
        other => panic!("first verdict on slot 2: {other:?}"),
    }
    assert_eq!(on_slot_2[1], (2, Some(swapped_in.clone()), Verdict::Pass));
    let warned = outcome.slot_events(2).iter().any(|e| {
        matches!(e, EventKind::Warning { message, .. }
            if *message == format!("IDENTITY_MISMATCH: {expected_sentence}"))
    });
    assert!(warned, "{:?}", outcome.slot_events(2));
    // The slot shows the flashed unit gone and the newcomer detected as a new unit.
    let events = outcome.slot_events(2);
    let fail_at = events
        .iter()
        .position(|e| {
            matches!(
                e,
                EventKind::Verdict {
                    verdict: Verdict::Fail(_),
                    ..
                }
            )
        })
        .unwrap();
    assert!(
        matches!(
            &events[fail_at + 1..],
            [
                EventKind::UnitRemoved { slot: 2 },
                EventKind::UnitDetected { slot: 2, .. },
                ..
            ]
        ),
        "{events:?}"
    );

    let old = only_row(&outcome, &flashed);
    assert_eq!(old.failure_code.as_deref(), Some("IDENTITY_MISMATCH"));
    assert_eq!(old.images_sent.len(), 6, "{old:?}");
    assert_eq!(old.activation_sha256_found, None);
    let new = only_row(&outcome, &swapped_in);
    assert_eq!((new.slot, new.result.as_str()), (2, "PASS"));
    assert!(new.id > old.id);
    assert_eq!(newcomer_phone.current_slot().as_deref(), Some("a"));
}

/// After `reboot-bootloader` a Qualcomm EDL device (05c6:9008) shows up on the unit's port
/// instead of fastboot: the unit's boot chain did not start, or another phone was plugged in.
/// The attempt fails at once with DEVICE_FAIL (not a TIMEOUT a minute and a half later), and
/// the EDL device gets an attempt of its own, which flashes it through EDL and passes.
#[test]
fn an_edl_device_back_after_a_fastboot_reboot_fails_the_unit_at_once_and_is_flashed_anew() {
    let demo = DemoStation::new();
    let fleet = Fleet::from_phones(
        &demo,
        EEA,
        &format!(
            "phones:\n  - slot: 1\n  - slot: 2\n    swap_at_next_reboot: {{ mode: edl, serial: {} }}\n",
            serial_of(43)
        ),
    );
    fleet.plug_all();
    let flashed = serial_of(2);
    let mut setup = fleet.setup(Vec::new());
    setup.stop_after_verdicts = stop_after(3);
    let outcome = run_batch(setup);

    outcome.assert_every_verdict_journaled_first();
    assert_eq!(outcome.verdict_on(1), Verdict::Pass);
    let on_slot_2: Vec<_> = outcome
        .verdicts()
        .into_iter()
        .filter(|(slot, _, _)| *slot == 2)
        .collect();
    assert_eq!(on_slot_2.len(), 2, "{on_slot_2:?}");
    let expected_sentence = format!(
        "slot 2 (serial {flashed}): after reboot-bootloader a phone in EDL mode came back on \
         port sim-2, not the unit in fastboot mode: the unit did not boot its bootloader (a bad \
         boot chain image) or another phone was plugged in; it was flashed but not verified: \
         take it off the slot for rework (the phone in EDL mode gets an attempt of its own)"
    );
    match &on_slot_2[0] {
        (_, Some(serial), Verdict::Fail(failure)) => {
            assert_eq!(serial, &flashed);
            assert_eq!(failure.code().as_str(), "DEVICE_FAIL");
            assert_eq!(failure.sentence(), expected_sentence);
        }
        other => panic!("first verdict on slot 2: {other:?}"),
    }
    // The EDL device's own attempt: Sahara, Firehose, reset into fastboot, verified.
    assert_eq!(on_slot_2[1], (2, Some(serial_of(43)), Verdict::Pass));
    let old = only_row(&outcome, &flashed);
    assert_eq!(old.failure_code.as_deref(), Some("DEVICE_FAIL"));
    assert_eq!(old.activation_sha256_found, None);
    let new = only_row(&outcome, &serial_of(43));
    assert_eq!(new.mode.map(|m| m.as_str()), Some("edl"));
}

/// The per-unit log file, for an EDL unit: it is identified twice (Sahara chip serial,
/// then fastboot `serialno` after its power reset), yet its attempt has one log file — the one
/// its journal row names, holding both halves of the job. Runs the batch with flashgate's
/// logging as `flashgate run` installs it (on every runtime thread, since jobs log from the
/// blocking pool).
#[test]
fn an_edl_unit_keeps_one_log_file_across_its_re_enumeration() {
    let demo = DemoStation::new();
    let fleet = Fleet::new(&demo, EEA, vec![(1, Mode::Edl), (2, Mode::Fastboot)]);
    let chip_serial = station::bus::edl_serial_text(fleet.unit(1).phone().identity().chip_serial);
    fleet.plug_all();
    let logs = tempfile::tempdir().unwrap();
    let (dispatch, logging) =
        station::logging::build(&station::logging::LogOptions::new(logs.path(), 0)).unwrap();
    let recording = Arc::new(station::events::RecordingSink::new());
    let journal_path = fleet.station.journal.clone();
    let slots = ports(&fleet.slots);
    let run = station::batch::BatchRun {
        station: fleet.station,
        batch: fleet.batch,
        slots,
        events: Arc::new(
            station::events::Fanout::new()
                .with(recording.clone())
                .with(station::logging::TracingSink),
        ),
        stop_after_verdicts: stop_after(2),
        journal_patience: station::batch::DEFAULT_JOURNAL_PATIENCE,
        unit_logs: Some(logging.unit_logs().clone()),
        transfer_bytes: 1 << 20,
    };
    let thread_dispatch = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            // Kept for the thread's life: its default subscriber is flashgate's.
            std::mem::forget(tracing::dispatcher::set_default(&thread_dispatch));
        })
        .enable_all()
        .build()
        .unwrap();
    let bus: Arc<dyn station::bus::UsbBus> = Arc::new(fleet.bus);
    let summary = runtime
        .block_on(async {
            tokio::time::timeout(
                flashgate_scenarios::batch::BATCH_DEADLINE,
                run.run(bus, std::future::pending()),
            )
            .await
        })
        .expect("the batch ended")
        .unwrap();
    let station::batch::BatchEnd::Ran(summary) = summary else {
        panic!("the work order was already complete")
    };
    drop(runtime);
    drop(dispatch);
    drop(logging);
    assert_eq!(summary.passed, 2, "{:?}", recording.events());

    let journal = station::journal::Journal::open_existing(&journal_path).unwrap();
    // Unit logs live in one folder per (UTC) day.
    let mut files: Vec<_> = std::fs::read_dir(logs.path().join("units"))
        .unwrap()
        .flat_map(|day| std::fs::read_dir(day.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "one log file per attempt: {files:?}");
    let edl_row = journal.history(&serial_of(1)).unwrap().remove(0);
    let edl_log = std::path::PathBuf::from(edl_row.log_path.clone().unwrap());
    assert!(files.contains(&edl_log), "{edl_row:?} {files:?}");
    // Named when the unit was first identified (in EDL), with the attempt's number.
    assert_eq!(
        edl_log.file_name().unwrap().to_string_lossy(),
        format!("{chip_serial}-{}.log", edl_row.id)
    );
    // Both halves of the job: the EDL programmer's lines and the fastboot verification.
    let text = std::fs::read_to_string(&edl_log).unwrap();
    assert!(text.contains("phase=upload programmer"), "{text}");
    assert!(text.contains("unit identified again"), "{text}");
    assert!(text.contains(&format!("serial={}", serial_of(1))), "{text}");
    assert!(text.contains("phase=verify system_"), "{text}");
    // It ends with the verdict the journal holds, and why.
    let last = text.lines().last().unwrap();
    assert!(
        last.contains(&format!("verdict PASS (journal attempt {}): ", edl_row.id))
            && last.contains("allow-listed"),
        "{last}"
    );
    let fastboot_row = journal.history(&serial_of(2)).unwrap().remove(0);
    let fastboot_log = fastboot_row.log_path.unwrap();
    assert!(fastboot_log.ends_with(&format!("{}-{}.log", serial_of(2), fastboot_row.id)));
}

#[test]
fn a_stop_reaches_a_firehose_program_mid_transfer_and_the_unit_is_aborted() {
    let demo = DemoStation::new();
    let fleet = Fleet::new(&demo, EEA, vec![(1, Mode::Edl), (2, Mode::Fastboot)]);
    // Slot 1's program takes seconds on the wire.
    fleet.unit(1).set_link_bytes_per_second(Some(SLOW_LINK));
    fleet.plug_all();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<String>();
    let mut stop_tx = Some(stop_tx);
    let mut programming = false;
    let stop_mid_program = on_event(move |event| match &event.kind {
        EventKind::PhaseChanged {
            slot: 1,
            phase: Phase::Flash { .. },
        } => programming = true,
        EventKind::BytesProgress { slot: 1, done, .. } if programming && *done > 0 => {
            if let Some(tx) = stop_tx.take() {
                let _ = tx.send("the station was stopped (SIGTERM)".into());
            }
        }
        _ => {}
    });
    let outcome = flashgate_scenarios::batch::run_batch_until(
        fleet.setup(vec![Box::new(stop_mid_program)]),
        async { stop_rx.await.unwrap_or_default() },
    );
    outcome.assert_every_verdict_journaled_first();
    match outcome.verdict_on(1) {
        Verdict::Aborted(interruption) => assert!(
            interruption.why.contains("SIGTERM") && interruption.step == "program the EDL package",
            "{interruption}"
        ),
        other => panic!("slot 1 should be ABORTED, got {other:?}"),
    }
    // Cut inside the program: the phone was never reset.
    assert!(
        !outcome.slot_events(1).iter().any(|e| matches!(
            e,
            EventKind::PhaseChanged {
                phase: Phase::Reboot,
                ..
            }
        )),
        "{:?}",
        outcome.slot_events(1)
    );
    let report = outcome.journal.report(EEA).unwrap();
    assert!(report.counts.attempts_aborted >= 1, "{report:?}");
    assert_eq!(report.counts.attempts_in_progress, 0, "{report:?}");
    assert_eq!(outcome.summary.failed, 0, "a stop blames no unit");
}
