//! The fault matrix: one scenario per misbehaviour a phone shows on the wire. Each
//! runs a small batch on the simulated bus — the faulty phone beside good ones — and asserts the
//! faulty unit's exact failure code and a sentence naming the step, that every other unit
//! passes, and that every verdict was in the journal before it was shown.
//!
//! The station's timeouts are cut to seconds here ([`short_limits`]) so a stalled phone fails
//! quickly; nothing asserts a duration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flashgate_scenarios::batch::{on_event, run_batch, BatchOutcome, BatchSetup, DemoStation};
use protocols::sim::edl::EdlSimConfig;
use protocols::sim::{FaultAction, Phone};
use protocols::transport::memory::LinkFaults;
use station::bus::sim::SimBus;
use station::config::StationConfig;
use station::events::{EventKind, EventSink, Phase, SlotNumber};
use station::mode::Mode;
use station::preflight::CheckedBatch;
use station::sim_fleet::rig::{factory_fastboot, product_phone, sim_port, simulated_bus};
use station::sim_fleet::SimUnit;
use station::verdict::Verdict;

mod edl;
mod ext4;

pub(crate) const EEA: &str = "WO-DEMO-EEA";
/// station.yaml `limits.timeouts` in these tests.
pub(crate) const COMMAND_SECS: u64 = 3;
pub(crate) const FLASH_PARTITION_SECS: u64 = 4;
/// A device's progress lines in the endless-INFO rows.
const INFO_EVERY: Duration = Duration::from_millis(100);

/// The demo station's limits, cut so a stalled phone fails in seconds: one command 3 s, one
/// partition 4 s, one identification retry.
fn short_limits(text: String) -> String {
    text.replace(
        "command_secs: 30\n",
        &format!("command_secs: {COMMAND_SECS}\n"),
    )
    .replace(
        "flash_partition_secs: 600\n",
        &format!("flash_partition_secs: {FLASH_PARTITION_SECS}\n"),
    )
    .replace("    identify: 2\n", "    identify: 1\n")
}

/// A batch of simulated phones of the demo product, one per slot (slot N is `FG0001NN`).
pub(crate) struct Rig {
    _demo: DemoStation,
    station: StationConfig,
    pub(crate) batch: CheckedBatch,
    bus: SimBus,
    units: Vec<SimUnit>,
    slots: Vec<(SlotNumber, Mode)>,
    reactions: Vec<Box<dyn EventSink>>,
}

impl Rig {
    pub(crate) fn new(kinds: &[Mode]) -> Rig {
        let demo = DemoStation::new();
        demo.edit_station(short_limits);
        let (station, batch) = demo.load(EEA);
        assert_eq!(
            station.limits.timeouts.command,
            Duration::from_secs(COMMAND_SECS)
        );
        let slots: Vec<(SlotNumber, Mode)> = (1..)
            .zip(kinds.iter().copied())
            .collect::<Vec<(SlotNumber, Mode)>>();
        let (bus, units) = simulated_bus(&batch, &slots).unwrap();
        Rig {
            _demo: demo,
            station,
            batch,
            bus,
            units,
            slots,
            reactions: Vec::new(),
        }
    }

    /// Three fastboot phones.
    pub(crate) fn fastboot() -> Rig {
        Rig::new(&[Mode::Fastboot; 3])
    }

    pub(crate) fn unit(&self, slot: SlotNumber) -> &SimUnit {
        let i = self.slots.iter().position(|(s, _)| *s == slot).unwrap();
        &self.units[i]
    }

    pub(crate) fn phone(&self, slot: SlotNumber) -> &Phone {
        self.unit(slot).phone()
    }

    /// The phone on `slot` (in EDL) runs this boot ROM and programmer.
    pub(crate) fn with_edl(mut self, slot: SlotNumber, edl: EdlSimConfig) -> Rig {
        let i = self.slots.iter().position(|(s, _)| *s == slot).unwrap();
        assert_eq!(self.slots[i].1, Mode::Edl, "slot {slot} starts in EDL");
        self.units[i] = SimUnit::new(
            &self.bus,
            &sim_port(slot),
            product_phone(&self.batch, slot, Mode::Edl).unwrap(),
            factory_fastboot(),
            edl,
        );
        self
    }

    pub(crate) fn react(mut self, reaction: impl EventSink + 'static) -> Rig {
        self.reactions.push(Box::new(reaction));
        self
    }

    /// Plug every phone and run until each has its verdict.
    pub(crate) fn run(self) -> BatchOutcome {
        for unit in &self.units {
            unit.plug();
        }
        run_batch(BatchSetup {
            slots: self
                .slots
                .iter()
                .map(|(s, _)| (sim_port(*s), *s))
                .collect::<BTreeMap<_, _>>(),
            stop_after_verdicts: Some(self.slots.len()),
            station: self.station,
            batch: self.batch,
            bus: self.bus,
            reactions: self.reactions,
        })
    }
}

/// The faulty unit failed with `code` and a sentence naming `step`; every other unit passed;
/// the journal held each verdict before it was shown. Returns the faulty unit's sentence.
pub(crate) fn only_failure(
    outcome: &BatchOutcome,
    faulty: SlotNumber,
    code: &str,
    step: &str,
) -> String {
    let (found, sentence) = failure_beside_passes(outcome, faulty, step);
    assert_eq!(found, code, "slot {faulty}: {sentence}");
    assert_eq!(
        outcome.summary.failures_by_code,
        BTreeMap::from([(code.to_string(), 1)])
    );
    sentence
}

/// The faulty unit's (code, sentence) — a sentence naming `step` — while every other unit
/// passed and every verdict was journaled first.
pub(crate) fn failure_beside_passes(
    outcome: &BatchOutcome,
    faulty: SlotNumber,
    step: &str,
) -> (String, String) {
    outcome.assert_every_verdict_journaled_first();
    let verdicts = outcome.verdicts();
    for (slot, _, verdict) in &verdicts {
        if *slot != faulty {
            assert_eq!(*verdict, Verdict::Pass, "slot {slot}: {verdicts:?}");
        }
    }
    let (code, sentence) = outcome.failure_on(faulty);
    assert!(
        sentence.starts_with(&format!("slot {faulty} (serial ")),
        "{sentence}"
    );
    assert!(
        sentence.contains(step),
        "slot {faulty}: the sentence does not name `{step}`: {sentence}"
    );
    assert_eq!(
        outcome.summary.passed as usize,
        verdicts.len() - 1,
        "{verdicts:?}"
    );
    (code, sentence)
}

/// Every unit passed (a misbehaviour the host must cope with), journaled first.
pub(crate) fn all_pass(outcome: &BatchOutcome, units: usize) {
    outcome.assert_every_verdict_journaled_first();
    let verdicts = outcome.verdicts();
    assert_eq!(verdicts.len(), units, "{verdicts:?}");
    assert!(
        verdicts.iter().all(|(_, _, v)| *v == Verdict::Pass),
        "{verdicts:?}"
    );
    assert_eq!(outcome.summary.passed as usize, units);
}

fn timeout_within(secs: u64) -> String {
    format!("within {secs} s")
}

// ---- fastboot -------------------------------------------------------------------------------

/// A cable that drops after 100 kB of host data: the link dies inside the system image.
#[test]
fn fastboot_disconnect_after_n_bytes_fails_disconnected() {
    let rig = Rig::fastboot();
    rig.unit(2).set_link_faults(LinkFaults {
        cut_after_host_bytes: Some(100_000),
        ..LinkFaults::default()
    });
    let outcome = rig.run();
    only_failure(
        &outcome,
        2,
        "DISCONNECTED",
        "disconnected during flash system",
    );
}

/// A bootloader that never answers `getvar`: identification times out, is retried once (as
/// station.yaml allows), and fails.
#[test]
fn fastboot_stall_in_getvar_fails_timeout_after_the_identify_retry() {
    let rig = Rig::fastboot();
    rig.phone(2).add_fault("getvar", FaultAction::Stall, None);
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during identify (getvar)");
    assert!(
        sentence.ends_with(&timeout_within(COMMAND_SECS)),
        "{sentence}"
    );
    let retried = outcome.slot_events(2).iter().any(|e| {
        matches!(e, EventKind::Warning { message, .. }
            if message.contains("retrying identification (1/1)"))
    });
    assert!(retried, "{:?}", outcome.slot_events(2));
}

/// A bootloader that takes `download:` and never answers DATA.
#[test]
fn fastboot_stall_in_download_fails_timeout() {
    let rig = Rig::fastboot();
    rig.phone(2)
        .add_fault("download", FaultAction::Stall, Some(1));
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during flash boot");
    assert!(
        sentence.ends_with(&timeout_within(COMMAND_SECS)),
        "{sentence}"
    );
}

/// A bootloader that takes the system image and never answers `flash:`: bound by the
/// station's partition timeout (a device writing storage may be silent for long).
#[test]
fn fastboot_stall_in_flash_fails_timeout_after_the_partition_timeout() {
    let rig = Rig::fastboot();
    rig.phone(2)
        .add_fault("flash:system_a", FaultAction::Stall, None);
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during flash system");
    assert!(
        sentence.ends_with(&timeout_within(FLASH_PARTITION_SECS)),
        "{sentence}"
    );
}

/// An answer frame of 300 bytes (the protocol allows 256; the AOSP client's next command
/// breaks on it): refused as a protocol violation, not truncated and believed.
#[test]
fn fastboot_response_longer_than_256_bytes_fails_protocol_error() {
    let rig = Rig::fastboot();
    rig.phone(2)
        .add_fault("flash:system_a", FaultAction::LongResponse(300), None);
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash system");
    assert!(sentence.contains("300"), "{sentence}");
}

/// INFO lines every 100 ms, forever, in answer to `set_active`: the whole command is bound by
/// the command timeout, however many lines keep arriving.
#[test]
fn fastboot_endless_info_fails_timeout_after_the_command_timeout() {
    let rig = Rig::fastboot();
    rig.phone(2).add_fault(
        "set_active",
        FaultAction::EndlessInfo { every: INFO_EVERY },
        None,
    );
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during set_active a");
    assert!(
        sentence.ends_with(&timeout_within(COMMAND_SECS)),
        "{sentence}"
    );
}

/// The same during `flash:`: bound by the partition timeout.
#[test]
fn fastboot_endless_info_while_flashing_fails_timeout_after_the_partition_timeout() {
    let rig = Rig::fastboot();
    rig.phone(2).add_fault(
        "flash:system_a",
        FaultAction::EndlessInfo { every: INFO_EVERY },
        None,
    );
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during flash system");
    assert!(
        sentence.ends_with(&timeout_within(FLASH_PARTITION_SECS)),
        "{sentence}"
    );
}

/// `download:00003000` answered `DATA00001000`: the host sends nothing and refuses the unit.
#[test]
fn fastboot_data_size_other_than_asked_fails_protocol_error() {
    let rig = Rig::fastboot();
    rig.phone(2)
        .add_fault("download", FaultAction::DataSize(0x1000), Some(1));
    let outcome = rig.run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash boot");
    let row = &outcome.history(&serial_of(2))[0];
    assert!(row.images_sent.is_empty(), "{row:?}");
}

/// A `DATA` answer whose size is not hex.
#[test]
fn fastboot_malformed_data_answer_fails_protocol_error() {
    let rig = Rig::fastboot();
    rig.phone(2)
        .add_fault("download", FaultAction::Malformed, Some(1));
    let outcome = rig.run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash boot");
}

/// `max-download-size` answered `garbage`: like the AOSP client, the host takes it as not
/// reported and uses its 256 MiB fallback; the phone's real buffer takes the images: PASS.
#[test]
fn fastboot_garbage_max_download_size_falls_back_and_passes() {
    let rig = Rig::fastboot();
    rig.phone(2).add_fault(
        "getvar:max-download-size",
        FaultAction::Okay("garbage".into()),
        None,
    );
    let outcome = rig.run();
    all_pass(&outcome, 3);
    let row = &outcome.history(&serial_of(2))[0];
    assert_eq!(row.images_sent.len(), 6, "{row:?}");
}

/// `max-download-size` answered `0x0` by a phone whose buffer really is 64 KiB: the fallback
/// sends the 282 KB system image whole and the phone refuses it, in its own words.
#[test]
fn fastboot_zero_max_download_size_with_a_small_buffer_fails_device_fail() {
    let rig = Rig::fastboot();
    rig.unit(2)
        .configure_fastboot(|config| config.max_download_size = 64 << 10);
    rig.phone(2).add_fault(
        "getvar:max-download-size",
        FaultAction::Okay("0x0".into()),
        None,
    );
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "DEVICE_FAIL", "refused flash system");
    assert!(sentence.contains("more than max allowed"), "{sentence}");
}

/// Every `fetch` sends 100 bytes of the announced range, then OKAY: verification times out
/// waiting for the rest.
#[test]
fn fastboot_fetch_shorter_than_announced_fails_timeout_in_verification() {
    let rig = Rig::fastboot();
    rig.phone(2)
        .add_fault("fetch", FaultAction::ShortData(100), None);
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during verify system_a");
    assert!(
        sentence.ends_with(&timeout_within(COMMAND_SECS)),
        "{sentence}"
    );
}

pub(crate) fn serial_of(slot: SlotNumber) -> String {
    format!("FG{:06}", 100 + u32::from(slot))
}

// ---- a slow phone ---------------------------------------------------------------------------

/// One phone takes host data at 1 MB/s beside two at memory speed: its flash takes most of a
/// second, theirs a few milliseconds. The fast ones reach their verdicts while the slow one,
/// already flashing, is still in progress, and the slow one passes too.
#[test]
fn a_slow_phone_beside_fast_ones_does_not_slow_them() {
    let rig = Rig::fastboot();
    rig.unit(2).set_link_bytes_per_second(Some(1_000_000));
    // At each verdict shown: its slot, and whether the slow unit had begun flashing by then.
    let seen: Arc<Mutex<Vec<(SlotNumber, bool)>>> = Arc::default();
    let watch = {
        let seen = seen.clone();
        let mut slow_flashing = false;
        on_event(move |event| match &event.kind {
            EventKind::PhaseChanged {
                slot: 2,
                phase: Phase::Flash { .. },
            } => slow_flashing = true,
            EventKind::Verdict { slot, .. } => {
                seen.lock().unwrap().push((*slot, slow_flashing));
            }
            _ => {}
        })
    };
    let outcome = rig.react(watch).run();
    all_pass(&outcome, 3);
    let seen = seen.lock().unwrap().clone();
    // The slow unit's verdict comes last; the others came while it was flashing or after.
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2], (2, true), "{seen:?}");
    assert!(
        seen[..2].iter().all(|(_, slow_flashing)| *slow_flashing),
        "{seen:?}"
    );
}
