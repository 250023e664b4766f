//! Whole batches through the station library on a simulated bus: a private copy of the demo
//! station, a runner that records every event, and a witness that looks into the journal at the
//! moment each verdict is shown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use station::batch::{BatchEnd, BatchRun};
use station::bus::sim::SimBus;
use station::config::{PhonesFile, StationConfig, YamlDocument};
use station::events::{
    BatchSummary, Event, EventKind, EventSink, Fanout, RecordingSink, SlotNumber,
};
use station::journal::{AttemptRow, Journal};
use station::preflight::{load_and_check, CheckedBatch};
use station::sim_fleet::rig::{sim_port, FIRST_RIG_SERIAL};
use station::sim_fleet::scripted::{scripted_rig, ScriptedRig};
use station::sim_fleet::SimUnit;
use station::verdict::Verdict;

/// A batch that has not ended after this long is stuck (a bug), not slow: fail instead of
/// hanging CI. Never a timing assertion — every batch here takes a second or two.
pub const BATCH_DEADLINE: Duration = Duration::from_secs(120);

pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo")
}

/// Copies a configuration tree, leaving out any `state/` (journal, logs) of earlier runs.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "state" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A private copy of `configs/demo` for a test that runs the `flashgate` binary on it (its
/// journal and logs land inside it); keep the tempdir as long as the copy is used.
pub fn demo_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    copy_tree(&demo_dir(), &demo);
    (dir, demo)
}

/// A private copy of `configs/demo`: the journal and logs land in the tempdir.
pub struct DemoStation {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Default for DemoStation {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoStation {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("demo");
        copy_tree(&demo_dir(), &root);
        DemoStation { _dir: dir, root }
    }

    pub fn station_file(&self) -> PathBuf {
        self.root.join("station.yaml")
    }

    pub fn work_order_file(&self, id: &str) -> PathBuf {
        self.root.join(format!("work-orders/{id}.yaml"))
    }

    pub fn manifest_file(&self) -> PathBuf {
        self.root.join("products/fgdemo.yaml")
    }

    pub fn image(&self, relative: &str) -> PathBuf {
        self.root.join("images").join(relative)
    }

    /// Rewrite the product manifest (e.g. another flash plan for one region).
    pub fn edit_manifest(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.manifest_file()).unwrap();
        let edited = edit(text.clone());
        assert_ne!(edited, text, "the manifest edit changed nothing");
        std::fs::write(self.manifest_file(), edited).unwrap();
        crate::sign_manifest(&self.manifest_file());
    }

    /// Rewrite `station.yaml` (e.g. shorter timeouts for a test whose phone stalls).
    pub fn edit_station(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.station_file()).unwrap();
        let edited = edit(text.clone());
        assert_ne!(edited, text, "the station edit changed nothing");
        std::fs::write(self.station_file(), edited).unwrap();
    }

    /// Station and pre-flight-checked batch for work order `id`.
    pub fn load(&self, id: &str) -> (StationConfig, CheckedBatch) {
        load_and_check(&self.station_file(), &self.work_order_file(id))
            .unwrap_or_else(|e| panic!("pre-flight of {id} refused the demo: {e}"))
    }

    /// Work order `id`'s batch on the phones a phones file describes (`phones_yaml`, read as
    /// the demo folder's `phones.yaml`, so relative image paths start there), not yet plugged:
    /// what `flashgate run --phones` builds.
    pub fn phones(&self, id: &str, phones_yaml: &str) -> ScriptedBatch {
        let (station, batch) = self.load(id);
        let file = PhonesFile::from_document(YamlDocument::from_text(
            self.root.join("phones.yaml"),
            phones_yaml,
        ))
        .unwrap_or_else(|e| panic!("the phones file was refused: {e}"));
        let rig = scripted_rig(&batch, &file, FIRST_RIG_SERIAL)
            .unwrap_or_else(|e| panic!("the phones file's phones cannot be built: {e}"));
        ScriptedBatch {
            station,
            batch,
            rig,
        }
    }
}

/// A batch on phones from a phones file ([`DemoStation::phones`]).
pub struct ScriptedBatch {
    pub station: StationConfig,
    pub batch: CheckedBatch,
    pub rig: ScriptedRig,
}

impl ScriptedBatch {
    /// The phone first on `slot`.
    pub fn unit(&self, slot: SlotNumber) -> &SimUnit {
        let i = self.rig.slots.iter().position(|(s, _)| *s == slot);
        &self.rig.units[i.unwrap_or_else(|| panic!("no phone on slot {slot}"))]
    }

    /// Plug every phone and run until each slot's first phone has its verdict (a phone
    /// swapped in is not counted), with `reactions` seeing every event.
    pub fn run(self, reactions: Vec<Box<dyn EventSink>>) -> BatchOutcome {
        for unit in &self.rig.units {
            unit.plug();
        }
        run_batch(BatchSetup {
            slots: self
                .rig
                .slots
                .iter()
                .map(|(slot, _)| (sim_port(*slot), *slot))
                .collect(),
            stop_after_verdicts: Some(self.rig.slots.len()),
            station: self.station,
            batch: self.batch,
            bus: self.rig.bus,
            reactions,
        })
    }
}

/// Reacts to events as they are emitted, on the emitting thread: a scripted operator or
/// cable fault that happens at an exact point of a unit's job (e.g. pull the cable once the
/// system image is half sent), with no sleeps and no race against the job.
pub struct OnEvent<F>(Mutex<F>);

pub fn on_event<F: FnMut(&Event) + Send + 'static>(reaction: F) -> OnEvent<F> {
    OnEvent(Mutex::new(reaction))
}

impl<F: FnMut(&Event) + Send + 'static> EventSink for OnEvent<F> {
    fn emit(&self, event: Event) {
        (self.0.lock().unwrap_or_else(PoisonError::into_inner))(&event)
    }
}

/// What the journal held for a unit at the instant its verdict was shown.
#[derive(Debug, Clone)]
pub struct WitnessedVerdict {
    pub slot: SlotNumber,
    pub serial: Option<String>,
    pub verdict: Verdict,
    /// The unit's finished rows on that slot (oldest first) when the event was emitted.
    pub finished_rows: Vec<AttemptRow>,
}

/// Opens the journal (a second connection, as `flashgate history` would) whenever a verdict
/// event is emitted and records what was committed at that moment.
pub struct JournalWitness {
    path: PathBuf,
    journal: Mutex<Option<Journal>>,
    seen: Mutex<Vec<WitnessedVerdict>>,
}

impl JournalWitness {
    pub fn new(path: &Path) -> Self {
        JournalWitness {
            path: path.to_path_buf(),
            journal: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn seen(&self) -> Vec<WitnessedVerdict> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for JournalWitness {
    fn emit(&self, event: Event) {
        let EventKind::Verdict {
            slot,
            serial,
            verdict,
        } = event.kind
        else {
            return;
        };
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        if journal.is_none() {
            *journal = Journal::open_existing(&self.path).ok();
        }
        let finished_rows = match (journal.as_ref(), serial.as_deref()) {
            (Some(journal), Some(serial)) => journal
                .history(serial)
                .unwrap_or_default()
                .into_iter()
                .filter(|row| row.slot == slot && row.result != "IN_PROGRESS")
                .collect(),
            // A unit that failed before it could be identified has a row without a serial.
            (Some(journal), None) => unidentified_rows(journal)
                .into_iter()
                .filter(|row| row.slot == slot && row.result != "IN_PROGRESS")
                .collect(),
            (None, _) => Vec::new(),
        };
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(WitnessedVerdict {
                slot,
                serial,
                verdict,
                finished_rows,
            });
    }
}

/// Every attempt row without a unit serial, oldest first (attempt ids count up from 1).
fn unidentified_rows(journal: &Journal) -> Vec<AttemptRow> {
    let mut rows = Vec::new();
    for id in 1.. {
        match journal.attempt(station::journal::AttemptId(id)) {
            Ok(Some(row)) if row.unit_serial.is_none() => rows.push(row),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    rows
}

/// A batch ready to run: the caller has built the bus, tweaked the phones and scheduled plugs.
pub struct BatchSetup {
    pub station: StationConfig,
    pub batch: CheckedBatch,
    pub bus: SimBus,
    /// Port path → slot.
    pub slots: BTreeMap<String, SlotNumber>,
    /// The rig ends after this many verdicts (or when the work order's quantity has passed).
    pub stop_after_verdicts: Option<usize>,
    /// Extra sinks (scripted reactions), called after the recorder for every event.
    pub reactions: Vec<Box<dyn EventSink>>,
}

/// What a finished batch left behind.
pub struct BatchOutcome {
    pub work_order: String,
    pub summary: BatchSummary,
    pub events: Vec<Event>,
    pub witnessed: Vec<WitnessedVerdict>,
    pub journal: Journal,
}

/// Run the batch through the library (`BatchRun::run`) until its stop condition.
pub fn run_batch(setup: BatchSetup) -> BatchOutcome {
    run_batch_until(setup, std::future::pending())
}

/// [`run_batch`], stopped as a signal would when `stop` resolves (with the reason).
pub fn run_batch_until(
    setup: BatchSetup,
    stop: impl std::future::Future<Output = String>,
) -> BatchOutcome {
    let recording = Arc::new(RecordingSink::new());
    let witness = Arc::new(JournalWitness::new(&setup.station.journal));
    let mut fanout = Fanout::new().with(recording.clone()).with(witness.clone());
    for reaction in setup.reactions {
        fanout.push(reaction);
    }
    let journal_path = setup.station.journal.clone();
    let work_order = setup.batch.work_order.id.clone();
    let run = BatchRun {
        station: setup.station,
        batch: setup.batch,
        slots: setup.slots,
        events: Arc::new(fanout),
        stop_after_verdicts: setup.stop_after_verdicts,
        journal_patience: station::batch::DEFAULT_JOURNAL_PATIENCE,
        unit_logs: None,
        // What `flashgate run --sim` uses.
        transfer_bytes: 1 << 20,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bus: Arc<dyn station::bus::UsbBus> = Arc::new(setup.bus);
    let result =
        runtime.block_on(async { tokio::time::timeout(BATCH_DEADLINE, run.run(bus, stop)).await });
    let summary = match result {
        Ok(Ok(BatchEnd::Ran(summary))) => summary,
        Ok(Ok(BatchEnd::AlreadyComplete { work_order, .. })) => {
            panic!("work order {work_order} was already complete: nothing ran")
        }
        Ok(Err(e)) => panic!("the batch failed: {e}"),
        Err(_) => {
            runtime.shutdown_background();
            let tail: Vec<String> = recording
                .events()
                .iter()
                .rev()
                .take(40)
                .map(|e| format!("{:?}", e.kind))
                .collect();
            panic!(
                "the batch did not end within {BATCH_DEADLINE:?}; last events (newest first):\n{}",
                tail.join("\n")
            );
        }
    };
    drop(runtime);
    BatchOutcome {
        work_order,
        summary,
        events: recording.events(),
        witnessed: witness.seen(),
        journal: Journal::open_existing(&journal_path).unwrap(),
    }
}

impl BatchOutcome {
    /// Every verdict event: (slot, serial, verdict), in emission order.
    pub fn verdicts(&self) -> Vec<(SlotNumber, Option<String>, Verdict)> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Verdict {
                    slot,
                    serial,
                    verdict,
                } => Some((*slot, serial.clone(), verdict.clone())),
                _ => None,
            })
            .collect()
    }

    /// The one verdict shown for `slot`.
    pub fn verdict_on(&self, slot: SlotNumber) -> Verdict {
        let on_slot: Vec<_> = self
            .verdicts()
            .into_iter()
            .filter(|(s, _, _)| *s == slot)
            .collect();
        assert_eq!(
            on_slot.len(),
            1,
            "slot {slot}: expected one verdict, got {on_slot:?}"
        );
        on_slot[0].2.clone()
    }

    /// The failure (code, sentence) shown for `slot`; panics on PASS.
    pub fn failure_on(&self, slot: SlotNumber) -> (String, String) {
        match self.verdict_on(slot) {
            Verdict::Fail(failure) => (failure.code().as_str().to_string(), failure.sentence()),
            Verdict::Pass => panic!("slot {slot} passed; a failure was expected"),
            Verdict::Aborted(interruption) => {
                panic!("slot {slot} was aborted ({interruption}); a failure was expected")
            }
        }
    }

    pub fn history(&self, serial: &str) -> Vec<AttemptRow> {
        self.journal.history(serial).unwrap()
    }

    /// The events of one slot, in order.
    pub fn slot_events(&self, slot: SlotNumber) -> Vec<EventKind> {
        self.events
            .iter()
            .filter(|e| e.slot() == Some(slot))
            .map(|e| e.kind.clone())
            .collect()
    }

    /// "Every verdict is in the journal" and the supervisor's "journal first": every
    /// verdict event found its row committed (same slot, result, code and sentence) when it was
    /// emitted; the journal holds no other finished or unfinished attempt of this work order;
    /// the summary counts what the journal counts.
    pub fn assert_every_verdict_journaled_first(&self) {
        let verdicts = self.verdicts();
        assert_eq!(self.witnessed.len(), verdicts.len());
        let mut shown_per_unit: BTreeMap<(SlotNumber, String), usize> = BTreeMap::new();
        for seen in &self.witnessed {
            // Units never identified are counted together per slot, as their rows are found.
            let serial = seen.serial.clone().unwrap_or_default();
            let shown = shown_per_unit
                .entry((seen.slot, serial.clone()))
                .or_default();
            *shown += 1;
            assert!(
                seen.finished_rows.len() >= *shown,
                "slot {} serial {serial}: verdict #{shown} {:?} was shown while the journal held \
                 only {} finished row(s) for it",
                seen.slot,
                seen.verdict,
                seen.finished_rows.len()
            );
            let row = &seen.finished_rows[*shown - 1];
            match &seen.verdict {
                Verdict::Pass => {
                    assert_eq!(row.result, "PASS", "{row:?}");
                    assert_eq!(row.failure_code, None);
                }
                Verdict::Fail(failure) => {
                    let reason = failure.sentence();
                    assert_eq!(row.result, "FAIL", "{row:?}");
                    assert_eq!(row.failure_code.as_deref(), Some(failure.code().as_str()));
                    let message = row.failure_message.clone().unwrap_or_default();
                    assert!(
                        message.contains(reason.as_str()),
                        "journal message {message:?} does not carry the shown sentence {reason:?}"
                    );
                }
                Verdict::Aborted(interruption) => {
                    let reason = interruption.sentence();
                    assert_eq!(row.result, "ABORTED", "{row:?}");
                    assert_eq!(row.failure_code, None);
                    let message = row.failure_message.clone().unwrap_or_default();
                    assert!(
                        message.contains(reason.as_str()),
                        "{message:?} / {reason:?}"
                    );
                }
            }
            assert!(row.finished_at.is_some(), "{row:?}");
        }
        let report = self.journal.report(&self.work_order).unwrap();
        assert_eq!(report.counts.attempts, verdicts.len() as u64, "{report:?}");
        assert_eq!(report.counts.attempts_in_progress, 0, "{report:?}");
        assert_eq!(
            report.counts.attempts_passed,
            u64::from(self.summary.passed),
            "{report:?}"
        );
        assert_eq!(
            report.counts.attempts_failed,
            u64::from(self.summary.failed),
            "{report:?}"
        );
        assert_eq!(
            report.counts.attempts_aborted,
            u64::from(self.summary.aborted),
            "{report:?}"
        );
        let journal_codes: BTreeMap<String, u32> = report
            .counts
            .failures_by_code
            .iter()
            .map(|c| (c.code.clone(), c.count as u32))
            .collect();
        assert_eq!(journal_codes, self.summary.failures_by_code);
    }
}
