//! Supervisor behaviour against the simulated bus with scripted jobs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocols::transport::{memory, Transport};

use super::*;
use crate::bus::sim::{Connector, SimBus, SimConnection};
use crate::bus::{BusDevice, UsbBus};
use crate::events::{EventKind, EventSink, RecordingSink};
use crate::mode::Mode;
use crate::verdict::{Failure, Interruption, UnitRef, Verdict};

const T: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) verdict: Verdict,
    pub(super) serial: Option<String>,
}

impl UnitOutcome for Outcome {
    fn verdict(&self) -> &Verdict {
        &self.verdict
    }
    fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }
    fn internal_error(_unit: &UnitInfo, message: String) -> Self {
        fail("INTERNAL_ERROR", &message)
    }
}

/// A failure with the given code; the sentence carries `reason`.
pub(super) fn fail(code: &str, reason: &str) -> Outcome {
    let unit = UnitRef {
        slot: 0,
        serial: None,
    };
    let step = reason.to_string();
    let failure = match code {
        "DISCONNECTED" => Failure::Disconnected { unit, step },
        "TIMEOUT" => Failure::Timeout {
            unit,
            step,
            secs: 2,
        },
        "PROTOCOL_ERROR" => Failure::ProtocolError {
            unit,
            step,
            detail: String::new(),
        },
        "DEVICE_FAIL" => Failure::DeviceFail {
            unit,
            step,
            reason: String::new(),
        },
        "IDENTITY_MISMATCH" => Failure::IdentityMismatch {
            unit,
            what: "serial".into(),
            expected: String::new(),
            found: step,
        },
        _ => Failure::HostError {
            unit,
            step,
            detail: code.to_string(),
        },
    };
    Outcome {
        verdict: Verdict::Fail(failure),
        serial: None,
    }
}

/// Records verdicts and, at each write, how many verdict events were already shown: a verdict
/// shown before its row was written would make that count exceed the rows.
pub(super) struct Recorder {
    pub(super) rows: Mutex<Vec<(u16, String)>>,
    shown: Arc<RecordingSink>,
}

impl VerdictRecorder<Outcome> for Recorder {
    fn record(&self, unit: &UnitInfo, outcome: &Outcome) -> Result<Recorded, String> {
        let shown = self
            .shown
            .events()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Verdict { .. }))
            .count();
        let mut rows = self.rows.lock().unwrap();
        assert_eq!(
            shown,
            rows.len(),
            "a verdict was shown before it was journaled"
        );
        let code = match &outcome.verdict {
            Verdict::Fail(failure) => failure.code().as_str().to_string(),
            other => other.result().to_string(),
        };
        rows.push((unit.slot, code));
        Ok(Recorded::default())
    }
}

/// A device that answers every packet with `OKAY<packet>`.
pub(super) fn echo(port: &str, kind: Mode) -> (BusDevice, Connector) {
    let device = BusDevice {
        port_path: port.into(),
        kind,
        vendor_id: 0x18d1,
        product_id: 0x4ee0,
        serial: Some(format!("SER-{port}")),
        speed: "high".into(),
    };
    let connector: Connector = Box::new(|| {
        let (host, mut dev, control) = memory::pair("echo");
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok(n) = dev.read_packet(&mut buf, Duration::from_secs(10)) {
                let mut answer = b"OKAY".to_vec();
                answer.extend_from_slice(&buf[..n]);
                if dev.write(&answer, T).is_err() {
                    break;
                }
            }
        });
        Ok(SimConnection {
            link: Box::new(host),
            control,
        })
    });
    (device, connector)
}

/// Talks to the device `rounds` times with `pause` between, optionally asking the bus to
/// re-enumerate it as fastboot in the middle.
pub(super) struct EchoJob {
    pub(super) rounds: usize,
    pub(super) pause: Duration,
    pub(super) reenumerate_on: Option<SimBus>,
}

impl UnitJob<Outcome> for EchoJob {
    fn run(self: Box<Self>, unit: &mut UnitContext) -> Outcome {
        let serial = unit.device().serial.clone();
        let mut link = match unit.open() {
            Ok(l) => l,
            Err(e) => return fail("DISCONNECTED", &e.to_string()),
        };
        for round in 0..self.rounds {
            if round == self.rounds / 2 {
                if let Some(bus) = &self.reenumerate_on {
                    let (fb, c) = echo(&unit.info().port_path, Mode::Fastboot);
                    bus.re_enumerate(&unit.info().port_path, Duration::from_millis(30), fb, c);
                    if let Err(e) = unit.wait_for_reenumeration(&[Mode::Fastboot], T) {
                        return fail("TIMEOUT", &e.to_string());
                    }
                    link = match unit.open() {
                        Ok(l) => l,
                        Err(e) => return fail("DISCONNECTED", &e.to_string()),
                    };
                }
            }
            let mut buf = [0u8; 64];
            let io = link
                .write(b"ping", T)
                .and_then(|_| link.read_packet(&mut buf, T));
            match io {
                Ok(_) => {}
                Err(e) if e.is_disconnect() => {
                    return Outcome {
                        serial,
                        ..fail("DISCONNECTED", &e.to_string())
                    }
                }
                Err(e) => return fail("PROTOCOL_ERROR", &e.to_string()),
            }
            std::thread::sleep(self.pause);
        }
        Outcome {
            verdict: Verdict::Pass,
            serial,
        }
    }
}

pub(super) fn supervisor(
    bus: &SimBus,
    slots: &[(&str, u16)],
    jobs: JobFactory<Outcome>,
    stop_after: usize,
) -> (Supervisor<Outcome>, Arc<RecordingSink>, Arc<Recorder>) {
    let shown = Arc::new(RecordingSink::new());
    let recorder = Arc::new(Recorder {
        rows: Mutex::new(Vec::new()),
        shown: shown.clone(),
    });
    let sup = Supervisor {
        slots: slots
            .iter()
            .map(|(p, s)| (p.to_string(), *s))
            .collect::<BTreeMap<_, _>>(),
        bus: Arc::new(bus.clone()) as Arc<dyn UsbBus>,
        jobs,
        recorder: recorder.clone(),
        events: shown.clone() as Arc<dyn EventSink>,
        parallel: 4,
        stop_when: StopWhen {
            verdicts: Some(stop_after),
            quantity: None,
        },
        gate: None,
    };
    (sup, shown, recorder)
}

pub(super) fn run(sup: Supervisor<Outcome>) -> crate::events::BatchSummary {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sup.run(std::future::pending()))
        .unwrap()
}

#[test]
fn units_on_mapped_slots_start_on_their_own_and_unmapped_ports_are_ignored() {
    let bus = SimBus::new();
    let jobs: JobFactory<Outcome> = Arc::new(|_| {
        Box::new(EchoJob {
            rounds: 3,
            pause: Duration::from_millis(5),
            reenumerate_on: None,
        })
    });
    let (sup, shown, recorder) = supervisor(&bus, &[("1-1", 1), ("1-2", 2), ("1-3", 3)], jobs, 3);
    for (i, port) in ["1-1", "1-2", "9-9", "1-3"].into_iter().enumerate() {
        let bus = bus.clone();
        bus.clone()
            .schedule(Duration::from_millis(10 * i as u64), move |b| {
                let (d, c) = echo(port, Mode::Fastboot);
                b.plug(d, c);
            });
    }
    let summary = run(sup);
    assert_eq!((summary.passed, summary.failed), (3, 0));
    let mut rows = recorder.rows.lock().unwrap().clone();
    rows.sort();
    assert_eq!(
        rows,
        vec![(1, "PASS".into()), (2, "PASS".into()), (3, "PASS".into())]
    );
    assert!(shown.events().iter().any(|e| matches!(
        &e.kind,
        EventKind::Warning { slot: None, message } if message.contains("9-9") && message.contains("not flashed")
    )));
}

#[test]
fn unplug_mid_job_fails_only_that_unit_and_the_slot_waits_again() {
    let bus = SimBus::new();
    let jobs: JobFactory<Outcome> = Arc::new(|_| {
        Box::new(EchoJob {
            rounds: 40,
            pause: Duration::from_millis(5),
            reenumerate_on: None,
        })
    });
    let (sup, shown, recorder) = supervisor(&bus, &[("1-1", 1), ("1-2", 2)], jobs, 2);
    for port in ["1-1", "1-2"] {
        let (d, c) = echo(port, Mode::Fastboot);
        bus.plug(d, c);
    }
    bus.schedule(Duration::from_millis(60), |b| {
        b.unplug("1-2");
    });
    let summary = run(sup);
    assert_eq!((summary.passed, summary.failed), (1, 1));
    assert_eq!(summary.failures_by_code.get("DISCONNECTED"), Some(&1));
    let rows = recorder.rows.lock().unwrap().clone();
    assert!(rows.contains(&(2, "DISCONNECTED".into())), "{rows:?}");
    assert!(shown
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::UnitRemoved { slot: 2 })));
}

#[test]
fn a_unit_that_re_enumerates_stays_on_its_slot() {
    let bus = SimBus::new();
    let bus_for_jobs = bus.clone();
    let jobs: JobFactory<Outcome> = Arc::new(move |_| {
        Box::new(EchoJob {
            rounds: 4,
            pause: Duration::from_millis(1),
            reenumerate_on: Some(bus_for_jobs.clone()),
        })
    });
    let (sup, shown, recorder) = supervisor(&bus, &[("1-4.2", 7)], jobs, 1);
    let (d, c) = echo("1-4.2", Mode::Edl);
    bus.plug(d, c);
    let summary = run(sup);
    assert_eq!((summary.passed, summary.failed), (1, 0));
    assert_eq!(
        *recorder.rows.lock().unwrap(),
        vec![(7, "PASS".to_string())]
    );
    let events = shown.events();
    let detected = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::UnitDetected { .. }))
        .count();
    assert_eq!(detected, 1, "re-enumeration must not start a second unit");
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::ModeChanged {
            slot: 7,
            mode: crate::mode::Mode::Fastboot
        }
    )));
}

#[test]
fn a_failing_journal_stops_the_batch_and_shows_nothing() {
    struct Broken;
    impl VerdictRecorder<Outcome> for Broken {
        fn record(&self, _: &UnitInfo, _: &Outcome) -> Result<Recorded, String> {
            Err("disk full".into())
        }
    }
    let bus = SimBus::new();
    let jobs: JobFactory<Outcome> = Arc::new(|_| {
        Box::new(EchoJob {
            rounds: 1,
            pause: Duration::ZERO,
            reenumerate_on: None,
        })
    });
    let (mut sup, shown, _) = supervisor(&bus, &[("1-1", 1)], jobs, 1);
    sup.recorder = Arc::new(Broken);
    let (d, c) = echo("1-1", Mode::Fastboot);
    bus.plug(d, c);
    let err = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sup.run(std::future::pending()))
        .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(!shown
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::Verdict { .. })));
}

/// A job that reboots its unit; another phone (serial `SER-NEW`) comes back on the port, and the
/// job hands it over. The newcomer's own job just passes.
struct SwapJob {
    bus: SimBus,
}

impl UnitJob<Outcome> for SwapJob {
    fn run(self: Box<Self>, unit: &mut UnitContext) -> Outcome {
        let serial = unit.device().serial.clone();
        if serial.as_deref() == Some("SER-NEW") {
            return Outcome {
                verdict: Verdict::Pass,
                serial,
            };
        }
        let port = unit.info().port_path.clone();
        let (mut newcomer, connector) = echo(&port, Mode::Fastboot);
        newcomer.serial = Some("SER-NEW".into());
        self.bus
            .re_enumerate(&port, Duration::from_millis(20), newcomer, connector);
        if let Err(e) = unit.wait_for_reenumeration(&[Mode::Fastboot], T) {
            return fail("TIMEOUT", &e.to_string());
        }
        unit.hand_over_device();
        Outcome {
            serial,
            ..fail("IDENTITY_MISMATCH", "another phone came back")
        }
    }
}

fn swap_batch(stop_after: usize) -> (Vec<(u16, String)>, Vec<EventKind>) {
    let bus = SimBus::new();
    let bus_for_jobs = bus.clone();
    let jobs: JobFactory<Outcome> = Arc::new(move |_| {
        Box::new(SwapJob {
            bus: bus_for_jobs.clone(),
        })
    });
    let (sup, shown, recorder) = supervisor(&bus, &[("1-1", 1)], jobs, stop_after);
    let (d, c) = echo("1-1", Mode::Fastboot);
    bus.plug(d, c);
    run(sup);
    let rows = recorder.rows.lock().unwrap().clone();
    let events = shown.events().into_iter().map(|e| e.kind).collect();
    (rows, events)
}

#[test]
fn a_handed_over_device_becomes_a_new_attempt_after_the_old_verdict() {
    let (rows, events) = swap_batch(2);
    assert_eq!(
        rows,
        vec![
            (1, "IDENTITY_MISMATCH".to_string()),
            (1, "PASS".to_string())
        ]
    );
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
                EventKind::UnitRemoved { slot: 1 },
                EventKind::UnitDetected { slot: 1, serial: Some(s), .. },
                ..
            ] if s == "SER-NEW"
        ),
        "{events:?}"
    );
}

#[test]
fn a_handed_over_device_waits_when_the_batch_is_complete() {
    let (rows, events) = swap_batch(1);
    assert_eq!(rows, vec![(1, "IDENTITY_MISMATCH".to_string())]);
    let detected = events
        .iter()
        .filter(|e| matches!(e, EventKind::UnitDetected { .. }))
        .count();
    assert_eq!(detected, 1, "{events:?}");
}

/// Fails on port `1-1` once `ready` says so; elsewhere talks a while and passes.
fn failing_on_1_1(ready: impl Fn() -> bool + Send + Sync + Clone + 'static) -> JobFactory<Outcome> {
    Arc::new(move |info: &UnitInfo| -> Box<dyn UnitJob<Outcome>> {
        if info.port_path == "1-1" {
            struct Fails<F>(F);
            impl<F: Fn() -> bool + Send + 'static> UnitJob<Outcome> for Fails<F> {
                fn run(self: Box<Self>, _unit: &mut UnitContext) -> Outcome {
                    while !(self.0)() {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    fail("DEVICE_FAIL", "refused flash")
                }
            }
            Box::new(Fails(ready.clone()))
        } else {
            Box::new(EchoJob {
                rounds: 10,
                pause: Duration::from_millis(5),
                reenumerate_on: None,
            })
        }
    })
}

fn held_warnings(shown: &RecordingSink) -> Vec<(u16, String)> {
    shown
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Warning {
                slot: Some(slot),
                message,
            } if message.contains("not flashed") => Some((slot, message)),
            _ => None,
        })
        .collect()
}

#[test]
fn no_unit_starts_past_the_quantity_counting_earlier_runs() {
    let bus = SimBus::new();
    let slots = [("1-2", 2), ("1-3", 3), ("1-4", 4), ("1-5", 5)];
    let (mut sup, shown, recorder) = supervisor(&bus, &slots, failing_on_1_1(|| true), usize::MAX);
    sup.stop_when = StopWhen {
        verdicts: None,
        quantity: Some(Quantity {
            ordered: 3,
            passed_before: 1,
        }),
    };
    for (port, _) in slots {
        let (d, c) = echo(port, Mode::Fastboot);
        bus.plug(d, c);
    }
    let summary = run(sup);
    assert_eq!((summary.passed, summary.failed), (2, 0));
    assert_eq!(summary.units_passed, Some(3));
    assert_eq!(summary.ordered, Some(3));
    assert_eq!(
        recorder.rows.lock().unwrap().len(),
        2,
        "only two units may start"
    );
    let held = held_warnings(&shown);
    let told_complete: Vec<u16> = held
        .iter()
        .filter(|(_, m)| m.contains("the work order is complete"))
        .map(|(slot, _)| *slot)
        .collect();
    assert_eq!(told_complete.len(), 2, "{held:?}");
    let detected = shown
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::UnitDetected { .. }))
        .count();
    assert_eq!(detected, 2, "held units are not detected as started units");
}

#[test]
fn a_held_unit_starts_when_a_unit_in_flight_fails() {
    let bus = SimBus::new();
    let slots = [("1-1", 1), ("1-2", 2), ("1-3", 3)];
    let (mut sup, shown, recorder) = supervisor(&bus, &slots, failing_on_1_1(|| true), usize::MAX);
    // Slot 1's unit fails only once slot 3's unit has been held back.
    let watched = shown.clone();
    sup.jobs = failing_on_1_1(move || !held_warnings(&watched).is_empty());
    sup.stop_when = StopWhen {
        verdicts: None,
        quantity: Some(Quantity {
            ordered: 2,
            passed_before: 0,
        }),
    };
    // Plugged in slot order (the supervisor sees them arrive in that order): slot 3's unit is the
    // one held back.
    for (port, _) in slots {
        let (d, c) = echo(port, Mode::Fastboot);
        bus.plug(d, c);
    }
    let summary = run(sup);
    assert_eq!((summary.passed, summary.failed), (2, 1));
    let mut rows = recorder.rows.lock().unwrap().clone();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            (1, "DEVICE_FAIL".to_string()),
            (2, "PASS".to_string()),
            (3, "PASS".to_string())
        ]
    );
    let held = held_warnings(&shown);
    assert!(
        held.iter()
            .any(|(slot, m)| *slot == 3 && m.contains("held")),
        "{held:?}"
    );
}

/// Talks until the station asks it to stop, then says it was cut.
struct UntilStopped;

impl UnitJob<Outcome> for UntilStopped {
    fn run(self: Box<Self>, unit: &mut UnitContext) -> Outcome {
        while !unit.is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Outcome {
            verdict: Verdict::Aborted(Interruption {
                unit: UnitRef {
                    slot: unit.slot(),
                    serial: None,
                },
                step: "talking".into(),
                why: unit.stop_reason().unwrap_or_default(),
                not_flashed: None,
            }),
            serial: unit.device().serial.clone(),
        }
    }
}

#[test]
fn a_stop_cuts_running_units_journals_them_and_starts_nothing_new() {
    let bus = SimBus::new();
    let jobs: JobFactory<Outcome> = Arc::new(|_| Box::new(UntilStopped));
    let (sup, shown, recorder) = supervisor(&bus, &[("1-1", 1), ("1-2", 2), ("1-3", 3)], jobs, 99);
    for port in ["1-1", "1-2"] {
        let (d, c) = echo(port, Mode::Fastboot);
        bus.plug(d, c);
    }
    let summary = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sup.run(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            "the station was stopped (SIGTERM)".to_string()
        }))
        .unwrap();
    // A phone plugged after the stop is not started (the batch has ended by then).
    let (d, c) = echo("1-3", Mode::Fastboot);
    bus.plug(d, c);
    assert_eq!((summary.passed, summary.failed, summary.aborted), (0, 0, 2));
    let mut rows = recorder.rows.lock().unwrap().clone();
    rows.sort();
    assert_eq!(
        rows,
        vec![(1, "ABORTED".to_string()), (2, "ABORTED".to_string())]
    );
    let events = shown.events();
    let stopping = events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::Stopping { why, units_running: 2 } if why.contains("SIGTERM")))
        .expect("a Stopping event before the verdicts");
    let first_verdict = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::Verdict { .. }))
        .unwrap();
    assert!(stopping < first_verdict);
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::Verdict { verdict: Verdict::Aborted(interruption), .. } if interruption.why.contains("SIGTERM")
    )));
}
