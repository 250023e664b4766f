//! The supervisor under a start gate's word: a hold keeps units on their slots unflashed and
//! lifts on its own; an order complete elsewhere ends the batch as the local quantity does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::tests::{echo, run, supervisor, EchoJob, Outcome};
use super::*;
use crate::bus::sim::SimBus;
use crate::events::EventKind;
use crate::mode::Mode;

/// A gate whose answers follow the time since it was made.
struct ScriptedGate {
    since: Instant,
    script: fn(Duration) -> Standing,
    last: Mutex<Standing>,
}

impl ScriptedGate {
    fn new(script: fn(Duration) -> Standing) -> Arc<Self> {
        Arc::new(ScriptedGate {
            since: Instant::now(),
            script,
            last: Mutex::new(script(Duration::ZERO)),
        })
    }
}

impl StartGate for ScriptedGate {
    fn standing(&self) -> Standing {
        self.last.lock().unwrap().clone()
    }
    fn recheck(&self) -> Standing {
        let now = (self.script)(self.since.elapsed());
        *self.last.lock().unwrap() = now.clone();
        now
    }
    fn recheck_every(&self) -> Duration {
        Duration::from_millis(20)
    }
}

fn echo_jobs(rounds: usize) -> JobFactory<Outcome> {
    Arc::new(move |_| {
        Box::new(EchoJob {
            rounds,
            pause: Duration::from_millis(5),
            reenumerate_on: None,
        })
    })
}

#[test]
fn a_hold_keeps_arriving_units_unflashed_on_their_slots_and_lifts_on_its_own() {
    let bus = SimBus::new();
    let (mut sup, shown, recorder) = supervisor(&bus, &[("1-1", 1), ("1-2", 2)], echo_jobs(2), 2);
    sup.gate = Some(ScriptedGate::new(|t| {
        if t < Duration::from_millis(300) {
            Standing::Hold {
                why: "waiting for a place: 2 held by other stations".into(),
            }
        } else {
            Standing::Open
        }
    }));
    for port in ["1-1", "1-2"] {
        let (d, c) = echo(port, Mode::Fastboot);
        bus.plug(d, c);
    }
    let summary = run(sup);
    assert_eq!((summary.passed, summary.failed, summary.aborted), (2, 0, 0));
    assert_eq!(summary.fleet_complete, None);
    let events = shown.events();
    let at = |wanted: &dyn Fn(&EventKind) -> bool| events.iter().position(|e| wanted(&e.kind));
    let held = at(&|k| matches!(k, EventKind::Holding { why: Some(why) } if why.contains("2 held by other stations")))
        .expect("the hold is shown");
    let lifted = at(&|k| matches!(k, EventKind::Holding { why: None })).expect("and lifted");
    let first_start = at(&|k| matches!(k, EventKind::UnitDetected { .. })).unwrap();
    assert!(held < lifted && lifted < first_start, "{events:?}");
    // Each phone was told why it waits, and what to do: leave it on the slot.
    for slot in [1, 2] {
        assert!(events.iter().any(|e| matches!(&e.kind,
            EventKind::Warning { slot: Some(s), message } if *s == slot
                && message.contains("held, not flashed: waiting for a place")
                && message.contains("leave it on the slot"))));
    }
    assert_eq!(recorder.rows.lock().unwrap().len(), 2);
}

/// Whether the fleet has reached the order's quantity, as the gate below reads it: set by the
/// test once unit 1 is flashing, so the order completes elsewhere while it is in flight however
/// slowly a loaded machine runs the test.
static FLEET_ORDER_DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn an_order_complete_across_the_fleet_ends_the_batch_and_leaves_late_units_unflashed() {
    use std::sync::atomic::Ordering;
    let bus = SimBus::new();
    // A rig of ten phones would run to ten verdicts: the fleet ends it sooner. Unit 1 flashes
    // long enough (60 rounds of 5 ms) for the gate's recheck (every 20 ms) to see the order end.
    let (mut sup, shown, recorder) = supervisor(&bus, &[("1-1", 1), ("1-2", 2)], echo_jobs(60), 10);
    let gate = ScriptedGate::new(|_| {
        if FLEET_ORDER_DONE.load(Ordering::SeqCst) {
            Standing::Complete {
                why: "work order WO-1 complete across the fleet (4 of 4 passed, this station 1)"
                    .into(),
            }
        } else {
            Standing::Open
        }
    });
    sup.gate = Some(gate.clone());
    let (d, c) = echo("1-1", Mode::Fastboot);
    bus.plug(d, c);
    // Unit 2 arrives once unit 1 is flashing and the station has heard that the order is done.
    let watched = shown.clone();
    bus.schedule(Duration::ZERO, move |b| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let started = || {
            watched
                .events()
                .iter()
                .any(|e| matches!(&e.kind, EventKind::UnitDetected { slot, .. } if *slot == 1))
        };
        while !started() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        FLEET_ORDER_DONE.store(true, Ordering::SeqCst);
        while !matches!(gate.standing(), Standing::Complete { .. }) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let (d, c) = echo("1-2", Mode::Fastboot);
        b.plug(d, c);
    });
    let summary = run(sup);
    // The unit in flight finished; the late one was never started.
    assert_eq!((summary.passed, summary.failed, summary.aborted), (1, 0, 0));
    assert_eq!(
        summary.fleet_complete.as_deref(),
        Some("work order WO-1 complete across the fleet (4 of 4 passed, this station 1)")
    );
    assert_eq!(
        *recorder.rows.lock().unwrap(),
        vec![(1, "PASS".to_string())]
    );
    let events = shown.events();
    assert!(events.iter().any(|e| matches!(&e.kind,
        EventKind::Warning { slot: Some(2), message }
            if message.contains("was not flashed: work order WO-1 complete across the fleet")
                && message.contains("take it off the slot"))));
    assert!(matches!(
        &events.last().unwrap().kind,
        EventKind::BatchFinished(s) if s.fleet_complete.is_some()
    ));
}
