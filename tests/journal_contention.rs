//! The journal held by another program (a backup tool, an engineer's `sqlite3` shell): verdicts
//! wait for it, loudly, and are written when it lets go; if it does not within the station's
//! patience, the batch stops, no unit is started after the journal stopped answering, and
//! nothing is shown that is not on disk.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use flashgate_scenarios::batch::{on_event, DemoStation, JournalWitness, BATCH_DEADLINE};
use station::batch::{BatchEnd, BatchRun};
use station::bus::UsbBus;
use station::events::{EventKind, Fanout, RecordingSink};
use station::journal::Journal;
use station::mode::Mode;
use station::sim_fleet::rig::{sim_port, simulated_bus};

/// The lock's holder: tell it to let go, then join it.
type HeldJournal = (mpsc::Sender<()>, std::thread::JoinHandle<()>);

/// Holds an exclusive lock on the journal from its own connection until told to let go.
fn hold_journal(path: std::path::PathBuf) -> HeldJournal {
    let (release, released) = mpsc::channel::<()>();
    let (taken_tx, taken) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        taken_tx.send(()).unwrap();
        let _ = released.recv();
        conn.execute_batch("COMMIT").unwrap();
    });
    taken.recv().unwrap();
    (release, holder)
}

struct Outcome {
    ended: Result<BatchEnd, station::batch::BatchError>,
    events: Vec<EventKind>,
    witness: Arc<JournalWitness>,
}

/// A batch of `n` fastboot phones; `react` sees every event as it is emitted.
fn batch(
    demo: &DemoStation,
    n: u16,
    patience: Duration,
    react: impl FnMut(&station::events::Event) + Send + 'static,
) -> Outcome {
    let (station, checked) = demo.load("WO-DEMO-EEA");
    let slots: Vec<(u16, Mode)> = (1..=n).map(|s| (s, Mode::Fastboot)).collect();
    let (bus, units) = simulated_bus(&checked, &slots).unwrap();
    for unit in &units {
        unit.plug();
    }
    let recording = Arc::new(RecordingSink::new());
    let witness = Arc::new(JournalWitness::new(&station.journal));
    let run = BatchRun {
        slots: slots.iter().map(|(s, _)| (sim_port(*s), *s)).collect(),
        station,
        batch: checked,
        events: Arc::new(
            Fanout::new()
                .with(recording.clone())
                .with(witness.clone())
                .with(on_event(react)),
        ),
        stop_after_verdicts: Some(usize::from(n)),
        journal_patience: patience,
        unit_logs: None,
        transfer_bytes: 1 << 20,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bus: Arc<dyn UsbBus> = Arc::new(bus);
    let ended = runtime
        .block_on(async {
            tokio::time::timeout(BATCH_DEADLINE, run.run(bus, std::future::pending())).await
        })
        .expect("the batch ended");
    drop(runtime);
    Outcome {
        ended,
        events: recording.events().into_iter().map(|e| e.kind).collect(),
        witness,
    }
}

fn warned(events: &[EventKind], text: &str) -> Option<usize> {
    events
        .iter()
        .position(|e| matches!(e, EventKind::Warning { message, .. } if message.contains(text)))
}

#[test]
fn a_verdict_waits_for_a_journal_held_by_another_program_and_is_written_when_it_lets_go() {
    let demo = DemoStation::new();
    let journal = demo.root.join("state/journal.sqlite");
    // Hold the journal as the first unit starts verifying; let go once the station has said
    // that a verdict waits for it (so the wait is certain, however slow the machine).
    let holder: Arc<std::sync::Mutex<Option<HeldJournal>>> = Arc::default();
    let journal_for_hold = journal.clone();
    let outcome = batch(
        &demo,
        2,
        Duration::from_secs(30),
        move |event| match &event.kind {
            EventKind::PhaseChanged {
                phase: station::events::Phase::Verify { .. },
                ..
            } => {
                let mut held = holder.lock().unwrap();
                if held.is_none() {
                    *held = Some(hold_journal(journal_for_hold.clone()));
                }
            }
            EventKind::Warning { message, .. } if message.contains("JOURNAL NOT ANSWERING") => {
                if let Some((release, thread)) = holder.lock().unwrap().take() {
                    release.send(()).unwrap();
                    thread.join().unwrap();
                }
            }
            _ => {}
        },
    );
    let BatchEnd::Ran(summary) = outcome.ended.expect("the batch ran") else {
        panic!("the order was already complete")
    };
    assert_eq!(
        (summary.passed, summary.failed),
        (2, 0),
        "{:?}",
        outcome.events
    );
    let waiting = warned(&outcome.events, "JOURNAL NOT ANSWERING").expect("a loud warning");
    let answering = warned(&outcome.events, "journal answers again").expect("told when it clears");
    assert!(waiting < answering);
    // Every verdict shown found its row already committed.
    for seen in outcome.witness.seen() {
        assert!(!seen.finished_rows.is_empty(), "{seen:?}");
    }
    let report = Journal::open_existing(&journal)
        .unwrap()
        .report("WO-DEMO-EEA")
        .unwrap();
    assert_eq!(
        (
            report.counts.attempts_passed,
            report.counts.attempts_in_progress
        ),
        (2, 0)
    );
}

#[test]
fn a_journal_that_stays_held_stops_the_batch_and_no_unit_starts_after() {
    let demo = DemoStation::new();
    let journal = demo.root.join("state/journal.sqlite");
    // Taken as soon as the first unit has been identified (its row exists), and kept until the
    // test ends: every later journal write fails.
    let release = Arc::new(std::sync::Mutex::new(None));
    let keep = release.clone();
    let journal_for_hold = journal.clone();
    let outcome = batch(&demo, 3, Duration::from_secs(1), move |event| {
        if matches!(event.kind, EventKind::UnitIdentified { .. }) {
            let mut slot = keep.lock().unwrap();
            if slot.is_none() {
                *slot = Some(hold_journal(journal_for_hold.clone()));
            }
        }
    });
    let error = match outcome.ended {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the batch should stop: {:?}", outcome.events),
    };
    assert!(error.contains("journal"), "{error}");
    // Nothing was shown without its row, and no unit was detected after the journal stopped
    // answering.
    assert!(
        !outcome
            .events
            .iter()
            .any(|e| matches!(e, EventKind::Verdict { .. })),
        "{:?}",
        outcome.events
    );
    if let Some(stopped) = outcome
        .events
        .iter()
        .position(|e| matches!(e, EventKind::Stopping { .. }))
    {
        assert!(
            !outcome.events[stopped..]
                .iter()
                .any(|e| matches!(e, EventKind::UnitDetected { .. })),
            "{:?}",
            outcome.events
        );
    } else {
        panic!(
            "the batch did not say it was stopping: {:?}",
            outcome.events
        );
    }
    // Once the other program lets go, the next start closes what was left open.
    if let Some((release, holder)) = release.lock().unwrap().take() {
        release.send(()).unwrap();
        holder.join().unwrap();
    }
    let (mut journal, _lock, closed) =
        Journal::open_for_station(&journal, std::time::SystemTime::now()).unwrap();
    let report = journal.report("WO-DEMO-EEA").unwrap();
    assert_eq!(report.counts.attempts_in_progress, 0);
    assert_eq!(report.counts.attempts_aborted as usize, closed.len());
    assert!(journal
        .close_interrupted(std::time::SystemTime::now())
        .unwrap()
        .is_empty());
}
