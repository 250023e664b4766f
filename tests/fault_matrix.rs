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

use flashgate_scenarios::batch::{on_event, BatchOutcome, DemoStation, ScriptedBatch};
use station::events::{EventKind, EventSink, Phase, SlotNumber};
use station::sim_fleet::SimUnit;
use station::verdict::Verdict;

mod edl;
mod ext4;

pub(crate) const EEA: &str = "WO-DEMO-EEA";
/// station.yaml `limits.timeouts` in these tests.
pub(crate) const COMMAND_SECS: u64 = 3;
pub(crate) const FLASH_PARTITION_SECS: u64 = 4;

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

/// A batch of simulated phones of the demo product from a phones file, one per slot (slot N is
/// `FG0001NN`), on the demo station with [`short_limits`].
pub(crate) struct Rig {
    _demo: DemoStation,
    scripted: ScriptedBatch,
    reactions: Vec<Box<dyn EventSink>>,
}

impl Rig {
    /// The phones `phones_yaml` (a whole phones file) describes.
    pub(crate) fn phones(phones_yaml: &str) -> Rig {
        let demo = DemoStation::new();
        demo.edit_station(short_limits);
        Rig::on(demo, phones_yaml)
    }

    /// [`Rig::phones`] on a station whose station.yaml `edit` changes further.
    pub(crate) fn phones_edited(phones_yaml: &str, edit: impl FnOnce(String) -> String) -> Rig {
        let demo = DemoStation::new();
        demo.edit_station(|station| edit(short_limits(station)));
        Rig::on(demo, phones_yaml)
    }

    fn on(demo: DemoStation, phones_yaml: &str) -> Rig {
        let scripted = demo.phones(EEA, phones_yaml);
        assert_eq!(
            scripted.station.limits.timeouts.command,
            Duration::from_secs(COMMAND_SECS)
        );
        Rig {
            _demo: demo,
            scripted,
            reactions: Vec::new(),
        }
    }

    /// Three fastboot phones; slot 2's has `faults` (the YAML value of its `faults:` key).
    pub(crate) fn fastboot_with(faults: &str) -> Rig {
        Rig::phones(&format!(
            "phones:\n  - slot: 1\n  - slot: 2\n    faults: {faults}\n  - slot: 3\n"
        ))
    }

    pub(crate) fn unit(&self, slot: SlotNumber) -> &SimUnit {
        self.scripted.unit(slot)
    }

    pub(crate) fn react(mut self, reaction: impl EventSink + 'static) -> Rig {
        self.reactions.push(Box::new(reaction));
        self
    }

    /// Plug every phone and run until each has its verdict.
    pub(crate) fn run(self) -> BatchOutcome {
        self.scripted.run(self.reactions)
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

// ---- fastboot -------------------------------------------------------------------------------

/// A cable that drops after 100 kB of host data: the link dies inside the system image.
#[test]
fn fastboot_disconnect_after_n_bytes_fails_disconnected() {
    let outcome = Rig::fastboot_with("{ disconnect_after: 100000 }").run();
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
    let outcome = Rig::fastboot_with("{ hang: [{ on: getvar, for: ever }] }").run();
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
    let outcome = Rig::fastboot_with("{ hang: [{ on: download, for: ever, times: 1 }] }").run();
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
    let outcome = Rig::fastboot_with("{ hang: [{ on: \"flash:system_a\", for: ever }] }").run();
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
    let outcome =
        Rig::fastboot_with("{ answer: [{ on: \"flash:system_a\", with: too_long, length: 300 }] }")
            .run();
    let sentence = only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash system");
    assert!(sentence.contains("300"), "{sentence}");
}

/// INFO lines every 100 ms, forever, in answer to `set_active`: the whole command is bound by
/// the command timeout, however many lines keep arriving.
#[test]
fn fastboot_endless_info_fails_timeout_after_the_command_timeout() {
    let outcome =
        Rig::fastboot_with("{ answer: [{ on: set_active, with: info_flood, every: 100ms }] }")
            .run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during set_active a");
    assert!(
        sentence.ends_with(&timeout_within(COMMAND_SECS)),
        "{sentence}"
    );
}

/// The same during `flash:`: bound by the partition timeout.
#[test]
fn fastboot_endless_info_while_flashing_fails_timeout_after_the_partition_timeout() {
    let outcome = Rig::fastboot_with(
        "{ answer: [{ on: \"flash:system_a\", with: info_flood, every: 100ms }] }",
    )
    .run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during flash system");
    assert!(
        sentence.ends_with(&timeout_within(FLASH_PARTITION_SECS)),
        "{sentence}"
    );
}

/// `download:00003000` answered `DATA00001000`: the host sends nothing and refuses the unit.
#[test]
fn fastboot_data_size_other_than_asked_fails_protocol_error() {
    let outcome = Rig::fastboot_with(
        "{ answer: [{ on: download, with: data_size, size: 0x1000, times: 1 }] }",
    )
    .run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash boot");
    let row = &outcome.history(&serial_of(2))[0];
    assert!(row.images_sent.is_empty(), "{row:?}");
}

/// A `DATA` answer whose size is not hex.
#[test]
fn fastboot_malformed_data_answer_fails_protocol_error() {
    let outcome =
        Rig::fastboot_with("{ answer: [{ on: download, with: malformed, times: 1 }] }").run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash boot");
}

/// `OKA` in answer to `download:`: shorter than any status, refused, never taken for OKAY.
#[test]
fn fastboot_truncated_answer_fails_protocol_error() {
    let outcome =
        Rig::fastboot_with("{ answer: [{ on: download, with: truncated, times: 1 }] }").run();
    let sentence = only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash boot");
    assert!(sentence.contains("OKA"), "{sentence}");
}

/// `BUSYtry again later` in answer to `flash:boot_a`: a status fastboot does not have.
#[test]
fn fastboot_unknown_status_prefix_fails_protocol_error() {
    let outcome =
        Rig::fastboot_with("{ answer: [{ on: \"flash:boot_a\", with: unknown_prefix }] }").run();
    let sentence = only_failure(&outcome, 2, "PROTOCOL_ERROR", "during flash boot");
    assert!(sentence.contains("BUSY"), "{sentence}");
}

/// Line noise in answer to every `getvar`: identification fails as a protocol error after
/// its retry, never as a phone of another product.
#[test]
fn fastboot_garbage_in_identification_fails_protocol_error() {
    let outcome = Rig::fastboot_with("{ answer: [{ on: getvar, with: garbage }] }").run();
    only_failure(&outcome, 2, "PROTOCOL_ERROR", "during identify");
}

/// `max-download-size` answered `garbage`: like the AOSP client, the host takes it as not
/// reported and uses its 256 MiB fallback; the phone's real buffer takes the images: PASS.
#[test]
fn fastboot_garbage_max_download_size_falls_back_and_passes() {
    let outcome = Rig::fastboot_with(
        "{ answer: [{ on: \"getvar:max-download-size\", with: okay, text: garbage }] }",
    )
    .run();
    all_pass(&outcome, 3);
    let row = &outcome.history(&serial_of(2))[0];
    assert_eq!(row.images_sent.len(), 6, "{row:?}");
}

/// `max-download-size` answered `0x0` by a phone whose buffer really is 64 KiB: the fallback
/// sends the 282 KB system image whole and the phone refuses it, in its own words. The buffer
/// is the bootloader's setting (`bootloader:`), the lie its fault.
#[test]
fn fastboot_zero_max_download_size_with_a_small_buffer_fails_device_fail() {
    let rig = Rig::phones(
        "phones:\n\
         \x20 - slot: 1\n\
         \x20 - slot: 2\n\
         \x20   bootloader: { max_download_size: 64K }\n\
         \x20   faults:\n\
         \x20     answer: [{ on: \"getvar:max-download-size\", with: okay, text: \"0x0\" }]\n\
         \x20 - slot: 3\n",
    );
    let outcome = rig.run();
    let sentence = only_failure(&outcome, 2, "DEVICE_FAIL", "refused flash system");
    assert!(sentence.contains("more than max allowed"), "{sentence}");
}

/// A bootloader's settings from the phones file reach the phone: slot 1's 64 KiB download
/// buffer and 16 KiB fetches are what it announces and holds to, and the station splits its
/// images and reads back in pieces to fit (PASS); slot 2's `fetch` reads only boot, so the
/// read-back of system is refused in the bootloader's words.
#[test]
fn fastboot_bootloader_settings_from_the_phones_file_are_the_phones() {
    let rig = Rig::phones(
        "phones:\n\
         \x20 - slot: 1\n\
         \x20   bootloader: { max_download_size: 64K, max_fetch_size: 16K }\n\
         \x20 - slot: 2\n\
         \x20   bootloader: { fetch: [boot_a, boot_b] }\n\
         \x20 - slot: 3\n",
    );
    let mut announced = (0, 0);
    rig.unit(1).configure_fastboot(|c| {
        announced = (c.max_download_size, c.max_fetch_size);
    });
    assert_eq!(announced, (64 << 10, 16 << 10));
    let outcome = rig.run();
    let (code, sentence) = failure_beside_passes(&outcome, 2, "fetch:system_a");
    assert_eq!(code, "DEVICE_FAIL", "{sentence}");
    assert!(
        sentence.contains("Fetch is only allowed on [boot_a, boot_b]"),
        "{sentence}"
    );
    let row = &outcome.history(&serial_of(1))[0];
    assert_eq!(row.images_sent.len(), 6, "{row:?}");
    assert!(row.verify_bytes_read.unwrap() > 16 << 10, "{row:?}");
}

/// Every `fetch` sends 100 bytes of the announced range, then OKAY: verification times out
/// waiting for the rest.
#[test]
fn fastboot_fetch_shorter_than_announced_fails_timeout_in_verification() {
    let outcome =
        Rig::fastboot_with("{ answer: [{ on: fetch, with: short_data, size: 100 }] }").run();
    let sentence = only_failure(&outcome, 2, "TIMEOUT", "during verify system_a");
    assert!(
        sentence.ends_with(&timeout_within(COMMAND_SECS)),
        "{sentence}"
    );
}

/// The cable comes out as `flash:system_a` arrives (after its download): DISCONNECTED naming
/// the step, the phone leaves the bus, and the others pass.
#[test]
fn fastboot_cable_pulled_at_a_named_command_fails_disconnected() {
    let outcome = Rig::fastboot_with("{ pull_cable: { on: \"flash:system_a\" } }").run();
    only_failure(&outcome, 2, "DISCONNECTED", "during flash system");
    assert!(
        outcome
            .slot_events(2)
            .contains(&EventKind::UnitRemoved { slot: 2 }),
        "{:?}",
        outcome.slot_events(2)
    );
}

/// The cable comes out while the phone is off the bus for the station's reboot-bootloader
/// (after `set_active`): it never comes back, and the unit fails TIMEOUT waiting for it,
/// bound by the re-enumeration timeout.
#[test]
fn fastboot_cable_pulled_during_the_reboot_fails_timeout_waiting_for_it() {
    let demo_reenumerate = "reenumerate_secs: 90\n";
    let rig = Rig::phones_edited(
        "phones:\n  - slot: 1\n  - slot: 2\n    faults: { pull_cable: { at: next_reboot } }\n  - slot: 3\n",
        |station| station.replace(demo_reenumerate, "reenumerate_secs: 2\n"),
    );
    let outcome = rig.run();
    only_failure(
        &outcome,
        2,
        "TIMEOUT",
        "re-enumeration after reboot-bootloader",
    );
}

/// A bootloader that FAILs `set_active`: the unit fails DEVICE_FAIL with the bootloader's
/// words, and nothing is verified on it.
#[test]
fn fastboot_set_active_refused_fails_device_fail() {
    let outcome = Rig::fastboot_with(
        "{ fail: [{ on: set_active, message: \"Slot change failed: slot is unbootable\" }] }",
    )
    .run();
    let sentence = only_failure(&outcome, 2, "DEVICE_FAIL", "set_active a");
    assert!(sentence.contains("slot is unbootable"), "{sentence}");
    let row = &outcome.history(&serial_of(2))[0];
    assert_eq!(row.verify_bytes_read, None, "{row:?}");
}

fn timeout_within(secs: u64) -> String {
    format!("within {secs} s")
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
    let rig = Rig::fastboot_with("{ rate: 1000000 }");
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

// ---- the demo's faults file -----------------------------------------------------------------

/// configs/demo/phones-faults.yaml gives each slot the verdict its comments promise, and the
/// two well-behaved departures pass beside six failures.
#[test]
fn the_demo_faults_file_gives_each_slot_the_verdict_it_documents() {
    let text =
        std::fs::read_to_string(flashgate_scenarios::batch::demo_dir().join("phones-faults.yaml"))
            .unwrap();
    let outcome = Rig::phones(&text).run();
    outcome.assert_every_verdict_journaled_first();
    let expected = [
        (1, Some("SLOT_MISMATCH")),
        (2, Some("DEVICE_FAIL")),
        (3, Some("PROTOCOL_ERROR")),
        (4, Some("DISCONNECTED")),
        (5, Some("PROTOCOL_ERROR")),
        (6, None),
        (7, Some("PROTOCOL_ERROR")),
        (8, None),
    ];
    for (slot, code) in expected {
        match code {
            None => assert_eq!(outcome.verdict_on(slot), Verdict::Pass, "slot {slot}"),
            Some(code) => {
                let (found, sentence) = outcome.failure_on(slot);
                assert_eq!(found, code, "slot {slot}: {sentence}");
                assert!(
                    sentence.starts_with(&format!("slot {slot} (serial ")),
                    "{sentence}"
                );
            }
        }
    }
    assert_eq!(outcome.summary.passed, 2);
}
