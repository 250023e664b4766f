//! A scripted batch: a deterministic event stream for demos, tests and the rendering benchmark,
//! and [`replay`] to play it in real time into any sink (e.g. the TTY front end in tmux).
//!
//! Per slot: fastboot units on even slots, EDL units on odd ones; progress every 100 ms at
//! 30-45 MB/s; device log lines; and fixed failures so every screen state shows up:
//! slot ≡ 3 (mod 8) fails `ACTIVATION_CLIENT_WRONG_REGION`, slot ≡ 6 (mod 8) is unplugged mid-flash
//! (`DISCONNECTED`), slot 11 fails `IDENTITY_MISMATCH`, slot 12 `TIMEOUT`; slots 1 and 2 pass,
//! are removed, and a second unit passes on each.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::RegionCode;
use crate::events::{
    BatchInfo, BatchSummary, Event, EventKind, EventSink, Phase, SlotInfo, SlotNumber,
};
use crate::mode::Mode;
use crate::verdict::{Failure, FailureCode, UnitRef, Verdict};

const MB: u64 = 1_000_000;
const PROGRESS_EVERY_MS: u64 = 100;

/// The scripted batch for slots `1..=slots`, stamped from `start_ms` (Unix ms).
pub fn scripted_batch(slots: u16, start_ms: u64) -> Vec<Event> {
    let mut events = vec![Event::at(
        start_ms,
        EventKind::BatchStarted(BatchInfo {
            station_id: "LINE3-ST07".into(),
            work_order: "WO-1187".into(),
            product: "demo-phone".into(),
            region: "00EEA".into(),
            build_id: "DP1.241128.007".into(),
            quantity: 100,
            passed_before: 0,
            slots: (1..=slots)
                .map(|slot| SlotInfo {
                    slot,
                    port_path: port_path(slot),
                })
                .collect(),
            stop_line_after: 3,
            operator: Some("op-1042".into()),
        }),
    )];
    let mut passed = 0;
    let mut failures: BTreeMap<String, u32> = BTreeMap::new();
    let mut end = start_ms;
    for slot in 1..=slots {
        let detect_at = start_ms + 200 + u64::from(slot) * 150;
        let mut unit = UnitRun::new(slot, detect_at, 1, &mut events);
        let verdict = unit.run();
        tally(&verdict, &mut passed, &mut failures);
        if slot <= 2 && verdict.is_pass() {
            unit.wait(2_500);
            unit.emit(EventKind::UnitRemoved { slot });
            unit.wait(1_500);
            let second_at = unit.t;
            let mut second = UnitRun::new(slot, second_at, 2, &mut events);
            let verdict = second.run();
            tally(&verdict, &mut passed, &mut failures);
            end = end.max(second.t);
        } else {
            end = end.max(unit.t);
        }
    }
    let failed = failures.values().sum();
    let elapsed_ms = end + 500 - start_ms;
    events.push(Event::at(
        end + 500,
        EventKind::BatchFinished(BatchSummary {
            passed,
            failed,
            failures_by_code: failures,
            elapsed_ms,
            aborted: 0,
            not_flashed: 0,
            fleet_complete: None,
            ordered: Some(100),
            units_passed: Some(passed),
        }),
    ));
    // Stable: events of one slot at the same instant keep their order.
    events.sort_by_key(|e| e.ts_ms);
    events
}

fn tally(verdict: &Verdict, passed: &mut u32, failures: &mut BTreeMap<String, u32>) {
    match verdict {
        Verdict::Pass => *passed += 1,
        Verdict::Fail(failure) => {
            *failures
                .entry(failure.code().as_str().to_string())
                .or_default() += 1
        }
        Verdict::Aborted { .. } => {}
    }
}

pub fn port_path(slot: SlotNumber) -> String {
    format!("1-{}.{}", 1 + (slot - 1) / 4, 1 + (slot - 1) % 4)
}

/// The serial the script gives the `attempt`th unit on `slot`.
pub fn serial(slot: SlotNumber, attempt: u32) -> String {
    format!(
        "7PL{:02}{:02}{:05}",
        slot,
        attempt,
        u32::from(slot) * 7919 % 100_000
    )
}

struct UnitRun<'a> {
    slot: SlotNumber,
    attempt: u32,
    t: u64,
    bytes_per_sec: u64,
    out: &'a mut Vec<Event>,
}

enum Outcome {
    Done,
    Failed(Verdict),
}

impl<'a> UnitRun<'a> {
    fn new(slot: SlotNumber, t: u64, attempt: u32, out: &'a mut Vec<Event>) -> Self {
        let bytes_per_sec = (30 + u64::from(slot) * 7 % 16) * MB;
        Self {
            slot,
            attempt,
            t,
            bytes_per_sec,
            out,
        }
    }

    fn unit(&self) -> UnitRef {
        UnitRef {
            slot: self.slot,
            serial: Some(serial(self.slot, self.attempt)),
        }
    }

    fn emit(&mut self, kind: EventKind) {
        self.out.push(Event::at(self.t, kind));
    }

    fn wait(&mut self, ms: u64) {
        self.t += ms;
    }

    fn phase(&mut self, phase: Phase, ms: u64) {
        let slot = self.slot;
        self.emit(EventKind::PhaseChanged { slot, phase });
        self.wait(ms);
    }

    fn log(&mut self, line: &str) {
        let slot = self.slot;
        self.emit(EventKind::DeviceLog {
            slot,
            line: line.to_owned(),
        });
    }

    /// A phase moving `total` bytes; stops after `cut_at` bytes when given (unplugged).
    fn transfer(&mut self, phase: Phase, total: u64, cut_at: Option<u64>) -> Outcome {
        let slot = self.slot;
        let phase_name = phase.to_string();
        self.emit(EventKind::PhaseChanged { slot, phase });
        self.emit(EventKind::BytesProgress {
            slot,
            done: 0,
            total,
        });
        let per_tick = self.bytes_per_sec * PROGRESS_EVERY_MS / 1000;
        let mut done = 0;
        while done < total {
            self.wait(PROGRESS_EVERY_MS);
            done = (done + per_tick).min(total);
            if cut_at.is_some_and(|cut| done >= cut) {
                return Outcome::Failed(Verdict::Fail(Failure::Disconnected {
                    unit: self.unit(),
                    step: format!("{phase_name} after {} MB", done / MB),
                }));
            }
            self.emit(EventKind::BytesProgress { slot, done, total });
        }
        Outcome::Done
    }

    fn run(&mut self) -> Verdict {
        let verdict = match self.steps() {
            Outcome::Done => Verdict::Pass,
            Outcome::Failed(verdict) => verdict,
        };
        let slot = self.slot;
        if let Verdict::Fail(failure) = &verdict {
            if failure.code() == FailureCode::Disconnected {
                let message = format!("slot {slot}: USB device on {} disappeared", port_path(slot));
                self.emit(EventKind::Warning {
                    slot: Some(slot),
                    message,
                });
            }
        }
        self.wait(50);
        let serial = Some(serial(slot, self.attempt));
        self.emit(EventKind::Verdict {
            slot,
            serial,
            verdict: verdict.clone(),
        });
        verdict
    }

    fn steps(&mut self) -> Outcome {
        let slot = self.slot;
        let edl = slot % 2 == 1;
        let serial = serial(slot, self.attempt);
        let mode = if edl { Mode::Edl } else { Mode::Fastboot };
        let known = (!edl).then(|| serial.clone());
        self.emit(EventKind::UnitDetected {
            slot,
            port_path: port_path(slot),
            mode,
            serial: known,
        });
        self.phase(Phase::Identify, 600);
        self.emit(EventKind::UnitIdentified {
            slot,
            serial: serial.clone(),
        });
        if slot == 11 {
            return Outcome::Failed(Verdict::Fail(Failure::IdentityMismatch {
                unit: self.unit(),
                what: "fastboot product".into(),
                expected: "demo-phone".into(),
                found: "other-phone".into(),
            }));
        }
        let cut = (slot % 8 == 6).then_some(300 * MB);
        if edl {
            self.transfer(Phase::UploadProgrammer, 2 * MB, None);
            self.log("<log value=\"INFO: Binary build date: Nov 28 2026\"/>");
            if let Outcome::Failed(v) = self.transfer(
                Phase::Flash {
                    partition: "rawprogram0.xml".into(),
                },
                480 * MB,
                cut,
            ) {
                return Outcome::Failed(v);
            }
            self.phase(Phase::Patch, 300);
        } else {
            self.transfer(
                Phase::Flash {
                    partition: "boot_a".into(),
                },
                64 * MB,
                None,
            );
            self.log("Writing 'boot_a' OKAY");
            if let Outcome::Failed(v) = self.transfer(
                Phase::Flash {
                    partition: "system_a".into(),
                },
                640 * MB,
                cut,
            ) {
                return Outcome::Failed(v);
            }
            self.log("Writing 'system_a' OKAY");
            self.phase(
                Phase::SetActive {
                    slot_suffix: "a".into(),
                },
                200,
            );
        }
        self.transfer(
            Phase::Verify {
                what: "activation client".into(),
            },
            6 * MB,
            None,
        );
        if slot == 12 {
            self.phase(Phase::WaitingForReenumeration, 3_000);
            return Outcome::Failed(Verdict::Fail(Failure::Timeout {
                unit: self.unit(),
                step: "reboot".into(),
                secs: 3,
            }));
        }
        if slot % 8 == 3 {
            return Outcome::Failed(Verdict::Fail(Failure::ActivationClientWrongRegion {
                unit: self.unit(),
                partition: "system_a".into(),
                location: "/priv-app/ActivationClient/ActivationClient.apk".into(),
                found_region: RegionCode::parse("00CN").expect("a literal region code"),
                work_order: "WO-1187".into(),
                needed_region: RegionCode::parse("00EEA").expect("a literal region code"),
            }));
        }
        self.phase(Phase::Reboot, 400);
        Outcome::Done
    }
}

/// Plays `events` into `sink` at their recorded pace divided by `speed` (2.0 = twice as fast),
/// re-stamped with the current time, as a live batch would arrive.
pub fn replay(events: &[Event], sink: &dyn EventSink, speed: f64) {
    let Some(first) = events.first() else { return };
    let speed = if speed.is_finite() && speed > 0.0 {
        speed
    } else {
        1.0
    };
    let started = Instant::now();
    for event in events {
        let offset = Duration::from_millis(event.ts_ms.saturating_sub(first.ts_ms)).div_f64(speed);
        let due = started + offset;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        sink.emit(Event::now(event.kind.clone()));
    }
}
