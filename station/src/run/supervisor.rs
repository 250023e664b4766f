//! The station's heart beat: watches the bus, starts one job per unit on its slot, routes
//! re-enumerations to the job that is waiting for them, and turns each job's outcome into a
//! journal row first and a shown verdict second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, Semaphore};

use crate::bus::{BusDevice, BusEvent, UsbBus};
use crate::events::{BatchSummary, Event, EventKind, EventSink, SlotNumber};
use crate::mode::Mode;
use crate::verdict::{NextStep, Verdict};

use super::standing::{Standing, StartGate};
use super::unit::{UnitContext, UnitInfo, UnitJob, UnitOutcome};

/// Makes the job for a unit that just arrived on a slot.
pub type JobFactory<O> = Arc<dyn Fn(&UnitInfo) -> Box<dyn UnitJob<O>> + Send + Sync>;

/// Writes a verdict durably. Called on a blocking thread; must return only once the row is on
/// disk, because the verdict is shown right after.
pub trait VerdictRecorder<O>: Send + Sync + 'static {
    fn record(&self, unit: &UnitInfo, outcome: &O) -> Result<Recorded, String>;
}

/// What the record of a verdict says about the work order as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Distinct units with a PASS under the work order, in every run the journal holds (None
    /// when the recorder does not count).
    pub units_passed: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot watch the USB bus: {0}")]
    Bus(#[from] crate::bus::BusError),
    /// The journal refused a verdict: the batch stops, since nothing may be shown that is not
    /// on disk.
    #[error("journal write failed for slot {slot}: {reason}; the batch was stopped — check the journal's disk and path")]
    Journal { slot: SlotNumber, reason: String },
}

/// When a batch ends on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopWhen {
    /// After this many verdicts (PASS, FAIL or ABORTED), once no job is running.
    pub verdicts: Option<usize>,
    /// The work order's quantity: once the units passed (this run and earlier ones) plus the
    /// units being flashed reach it, no further unit is started; the batch ends when the units
    /// passed reach it.
    pub quantity: Option<Quantity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub ordered: u32,
    /// Distinct units that passed under the work order before this run (from the journal).
    pub passed_before: u32,
}

pub struct Supervisor<O: UnitOutcome> {
    /// Port path → slot.
    pub slots: BTreeMap<String, SlotNumber>,
    pub bus: Arc<dyn UsbBus>,
    pub jobs: JobFactory<O>,
    pub recorder: Arc<dyn VerdictRecorder<O>>,
    pub events: Arc<dyn EventSink>,
    /// How many units may be worked on at once (others wait, detected, for a free place).
    pub parallel: usize,
    pub stop_when: StopWhen,
    /// The fleet's say over starting units (None: the station counts alone).
    pub gate: Option<Arc<dyn StartGate>>,
}

/// The running batch's book-keeping.
struct Batch<O> {
    launch: Launch<O>,
    states: BTreeMap<SlotNumber, SlotState>,
    summary: BatchSummary,
    running: usize,
    verdicts: usize,
    /// The gate's last word.
    standing: Standing,
    /// A recheck of the gate is under way (one at a time).
    rechecking: bool,
}

/// What starting a job needs besides the unit.
struct Launch<O> {
    permits: Arc<Semaphore>,
    done_tx: mpsc::UnboundedSender<Done<O>>,
    /// Why the batch is stopping, once it is: every job reads it for its ABORTED sentence.
    stop_why: Arc<OnceLock<String>>,
}

/// A job's end, as the supervisor receives it.
struct Done<O> {
    unit: UnitInfo,
    outcome: O,
    /// The phone the job found on the port instead of its unit, for a new attempt.
    handed_over: Option<BusDevice>,
}

enum SlotState {
    Waiting,
    /// A unit arrived while the units in flight could complete the work order, or while the
    /// fleet holds the station: it is started once a place is free.
    Held(BusDevice),
    Running {
        arrivals: std_mpsc::Sender<BusDevice>,
        cancelled: Arc<AtomicBool>,
        kind: Mode,
        /// The device has left the bus and not come back (yet).
        gone: bool,
    },
    /// Verdict shown; waiting for the operator to take the unit away.
    Done,
}

impl<O: UnitOutcome> Supervisor<O> {
    fn emit(&self, kind: EventKind) {
        self.events.emit(Event::now(kind));
    }

    /// Run until the stop condition is met or `shutdown` resolves; returns the batch summary.
    ///
    /// `shutdown` resolves with the reason of a stop (`SIGTERM`): every running unit is cut at
    /// its next safe point and recorded as ABORTED (or its verdict, if it reached one), all in
    /// the journal before this returns. A journal that stops answering stops the batch the same
    /// way: no unit is started after it.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = String>,
    ) -> Result<BatchSummary, SupervisorError> {
        let started = Instant::now();
        let bus_events = self.bus.watch()?;
        let (bus_tx, mut bus_rx) = mpsc::unbounded_channel();
        // The bus reports on a std channel from its own thread; bridge it into the runtime.
        std::thread::Builder::new()
            .name("bus-bridge".into())
            .spawn(move || {
                for event in bus_events {
                    if bus_tx.send(event).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning a thread at batch start");
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done<O>>();
        let mut batch = Batch {
            launch: Launch {
                permits: Arc::new(Semaphore::new(self.parallel.max(1))),
                done_tx,
                stop_why: Arc::default(),
            },
            states: self
                .slots
                .values()
                .map(|slot| (*slot, SlotState::Waiting))
                .collect(),
            summary: BatchSummary {
                ordered: self.stop_when.quantity.map(|q| q.ordered),
                units_passed: self.stop_when.quantity.map(|q| q.passed_before),
                ..BatchSummary::default()
            },
            running: 0,
            verdicts: 0,
            standing: Standing::Open,
            rechecking: false,
        };
        if let Some(gate) = &self.gate {
            self.apply_standing(gate.standing(), &mut batch);
        }
        // The gate is asked afresh at its interval (the first at once); its answers come back
        // here from a blocking thread.
        let every = self
            .gate
            .as_ref()
            .map_or(std::time::Duration::from_secs(3600), |g| g.recheck_every());
        let mut recheck = tokio::time::interval(every);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (standing_tx, mut standing_rx) = mpsc::unbounded_channel::<Standing>();
        tokio::pin!(shutdown);

        let outcome = loop {
            if self.stop_due(&batch) && batch.running == 0 {
                // Removals the bus already saw (a unit pulled as its job ended) are shown before
                // the batch closes; the bus reports from its own thread, so give it a moment.
                let settle = std::time::Duration::from_millis(100);
                while let Ok(Some(event)) = tokio::time::timeout(settle, bus_rx.recv()).await {
                    match event {
                        BusEvent::Left { port_path, .. } => {
                            self.left(&port_path, &mut batch.states)
                        }
                        // Nothing starts now; a phone put on a slot is told why.
                        BusEvent::Arrived(device) => self.arrived(device, &mut batch),
                    }
                }
                break Ok(());
            }
            tokio::select! {
                why = &mut shutdown => {
                    self.emit(EventKind::Stopping { why: why.clone(), units_running: batch.running as u32 });
                    break self.drain(&mut batch, &mut done_rx, &why).await;
                }
                Some(event) = bus_rx.recv() => match event {
                    BusEvent::Arrived(device) => self.arrived(device, &mut batch),
                    BusEvent::Left { port_path, .. } => self.left(&port_path, &mut batch.states),
                },
                _ = recheck.tick(), if self.gate.is_some() && !batch.rechecking => {
                    if let Some(gate) = self.gate.clone() {
                        batch.rechecking = true;
                        let answer = standing_tx.clone();
                        tokio::task::spawn_blocking(move || {
                            let _ = answer.send(gate.recheck());
                        });
                    }
                }
                Some(standing) = standing_rx.recv() => {
                    batch.rechecking = false;
                    self.apply_standing(standing, &mut batch);
                }
                Some(done) = done_rx.recv() => {
                    batch.running -= 1;
                    // A unit the fleet kept unflashed on its slot gets another attempt: its
                    // phone has not had its verdict (a rig counts phones).
                    if done.outcome.verdict().next_step() != NextStep::LeaveOnSlot {
                        batch.verdicts += 1;
                    }
                    if let Err(e) = self.finish(&done.unit, done.outcome, &mut batch.summary).await {
                        let why = "the journal stopped answering".to_string();
                        self.emit(EventKind::Stopping { why: format!("{why}: {e}"), units_running: batch.running as u32 });
                        // Verdicts of the units still running are tried once more each; none
                        // is shown unless it is on disk.
                        let _ = self.drain(&mut batch, &mut done_rx, &why).await;
                        break Err(e);
                    }
                    // The unit's admission may have changed the gate's word.
                    if let Some(gate) = &self.gate {
                        self.apply_standing(gate.standing(), &mut batch);
                    }
                    self.after_verdict(done.unit.slot, done.handed_over, &mut batch);
                }
            }
        };
        self.release_held(&mut batch.states, batch.summary.fleet_complete.as_deref());
        batch.summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.emit(EventKind::BatchFinished(batch.summary.clone()));
        outcome.map(|()| batch.summary)
    }

    fn stop_due(&self, batch: &Batch<O>) -> bool {
        batch.standing.complete().is_some()
            || self.stop_when.verdicts.is_some_and(|n| batch.verdicts >= n)
            || self
                .stop_when
                .quantity
                .is_some_and(|q| batch.summary.units_passed.unwrap_or(0) >= q.ordered)
    }

    /// The gate's word: a hold is shown (and lifted), held units start when it opens, and the
    /// order complete across the fleet ends the batch as the station's own quantity does.
    fn apply_standing(&self, standing: Standing, batch: &mut Batch<O>) {
        if standing == batch.standing || batch.standing.complete().is_some() {
            return;
        }
        let was_held = batch.standing.hold().is_some();
        match &standing {
            Standing::Hold { why } => self.emit(EventKind::Holding {
                why: Some(why.clone()),
            }),
            Standing::Open | Standing::Complete { .. } if was_held => {
                self.emit(EventKind::Holding { why: None });
            }
            Standing::Open | Standing::Complete { .. } => {}
        }
        if let Standing::Complete { why } = &standing {
            self.emit(EventKind::Warning {
                slot: None,
                message: format!(
                    "{why}: no new unit starts; the batch ends when the units being flashed \
                     have their verdicts"
                ),
            });
            batch.summary.fleet_complete = Some(why.clone());
        }
        batch.standing = standing;
        self.start_held(batch);
    }

    /// Whether one more unit may be started without risking more passes than ordered.
    fn may_start(&self, batch: &Batch<O>) -> bool {
        if self.stop_due(batch) || !batch.standing.is_open() {
            return false;
        }
        self.stop_when.quantity.is_none_or(|q| {
            let committed = batch.summary.units_passed.unwrap_or(0) as usize + batch.running;
            committed < q.ordered as usize
        })
    }

    fn arrived(&self, device: BusDevice, batch: &mut Batch<O>) {
        let Some(&slot) = self.slots.get(&device.port_path) else {
            self.emit(EventKind::Warning {
                slot: None,
                message: format!(
                    "{} device {} on port {} is not on any slot in station.yaml: not flashed",
                    device.kind,
                    device.serial.as_deref().unwrap_or("(no serial)"),
                    device.port_path
                ),
            });
            return;
        };
        let may_start = self.may_start(batch);
        let stop_due = self.stop_due(batch);
        let state = batch.states.entry(slot).or_insert(SlotState::Waiting);
        match state {
            SlotState::Waiting if may_start => {
                *state = self.start(slot, device, &batch.launch);
                batch.running += 1;
            }
            SlotState::Waiting if !stop_due => {
                let serial = device.serial.as_deref().unwrap_or("(serial not yet read)");
                let message = match batch.standing.hold() {
                    Some(why) => format!(
                        "slot {slot}: unit {serial} held, not flashed: {why}; leave it on the \
                         slot, it starts when the fleet lets it"
                    ),
                    None => format!(
                        "slot {slot}: unit {serial} held, not flashed: the units being flashed \
                         will complete the work order if they pass"
                    ),
                };
                self.emit(EventKind::Warning {
                    slot: Some(slot),
                    message,
                });
                *state = SlotState::Held(device);
            }
            SlotState::Running {
                arrivals,
                kind,
                gone,
                ..
            } => {
                if *kind != device.kind {
                    *kind = device.kind;
                    self.emit(EventKind::ModeChanged {
                        slot,
                        mode: device.kind,
                    });
                }
                *gone = false;
                let _ = arrivals.send(device);
            }
            SlotState::Held(held) => *held = device,
            SlotState::Waiting => {
                if let Some(why) = batch.standing.complete() {
                    self.emit(EventKind::Warning {
                        slot: Some(slot),
                        message: format!(
                            "slot {slot}: unit {} was not flashed: {why}; take it off the slot",
                            device.serial.as_deref().unwrap_or("(serial not read)")
                        ),
                    });
                    *state = SlotState::Done;
                }
            }
            SlotState::Done => {}
        }
    }

    /// After a verdict is shown: the slot waits for its unit to be taken away, or starts the
    /// phone that took the unit's place; a held unit may start if a place became free.
    fn after_verdict(
        &self,
        slot: SlotNumber,
        handed_over: Option<BusDevice>,
        batch: &mut Batch<O>,
    ) {
        let gone = matches!(
            batch.states.get(&slot),
            Some(SlotState::Running { gone: true, .. })
        );
        if gone {
            batch.states.insert(slot, SlotState::Waiting);
            self.emit(EventKind::UnitRemoved { slot });
        } else {
            match handed_over {
                Some(device) if self.may_start(batch) => {
                    // Another phone took the unit's place during a reboot: the old unit's
                    // verdict is shown, and the phone on the port is a new unit.
                    self.emit(EventKind::UnitRemoved { slot });
                    let next = self.start(slot, device, &batch.launch);
                    batch.states.insert(slot, next);
                    batch.running += 1;
                }
                // No place for it now (the fleet holds the station, or the units in flight may
                // complete the order): it waits on its slot, unflashed.
                Some(device) if !self.stop_due(batch) => {
                    batch.states.insert(slot, SlotState::Held(device));
                }
                _ => {
                    batch.states.insert(slot, SlotState::Done);
                }
            }
        }
        self.start_held(batch);
    }

    /// Held units start while there is room for them.
    fn start_held(&self, batch: &mut Batch<O>) {
        while self.may_start(batch) {
            let Some((&held_slot, _)) = batch
                .states
                .iter()
                .find(|(_, state)| matches!(state, SlotState::Held(_)))
            else {
                break;
            };
            let Some(SlotState::Held(device)) = batch.states.remove(&held_slot) else {
                break;
            };
            let next = self.start(held_slot, device, &batch.launch);
            batch.states.insert(held_slot, next);
            batch.running += 1;
        }
    }

    /// A stop: every running unit is cut at its next safe point; each outcome is journaled
    /// (verdict or ABORTED) before the batch ends.
    async fn drain(
        &self,
        batch: &mut Batch<O>,
        done_rx: &mut mpsc::UnboundedReceiver<Done<O>>,
        why: &str,
    ) -> Result<(), SupervisorError> {
        let _ = batch.launch.stop_why.set(why.to_string());
        for state in batch.states.values() {
            if let SlotState::Running { cancelled, .. } = state {
                cancelled.store(true, Ordering::SeqCst);
            }
        }
        let mut first_error = None;
        while batch.running > 0 {
            let Some(done) = done_rx.recv().await else {
                break;
            };
            batch.running -= 1;
            batch.verdicts += 1;
            let slot = done.unit.slot;
            if let Err(e) = self
                .finish(&done.unit, done.outcome, &mut batch.summary)
                .await
            {
                self.emit(EventKind::Warning {
                    slot: Some(slot),
                    message: format!(
                        "slot {slot}: the attempt's verdict could not be written ({e}); its row \
                         stays open and is closed as ABORTED when the station next starts"
                    ),
                });
                first_error.get_or_insert(e);
            }
            batch.states.insert(slot, SlotState::Done);
        }
        tracing::info!(why, "batch stopped");
        first_error.map_or(Ok(()), Err)
    }

    /// Units held back because the order could complete without them are told so.
    fn release_held(&self, states: &mut BTreeMap<SlotNumber, SlotState>, fleet: Option<&str>) {
        let why = fleet.unwrap_or("the work order is complete");
        for (slot, state) in states.iter_mut() {
            if let SlotState::Held(device) = state {
                self.emit(EventKind::Warning {
                    slot: Some(*slot),
                    message: format!(
                        "slot {slot}: unit {} was not flashed: {why}; take it off the slot",
                        device.serial.as_deref().unwrap_or("(serial not read)")
                    ),
                });
                *state = SlotState::Done;
            }
        }
    }

    /// A device left its port: a running unit is marked gone (its job sees the link die), a
    /// finished one has been taken away and its slot waits for the next.
    fn left(&self, port_path: &str, states: &mut BTreeMap<SlotNumber, SlotState>) {
        let Some(&slot) = self.slots.get(port_path) else {
            return;
        };
        match states.get_mut(&slot) {
            Some(SlotState::Running { gone, .. }) => *gone = true,
            Some(state @ (SlotState::Done | SlotState::Held(_))) => {
                *state = SlotState::Waiting;
                self.emit(EventKind::UnitRemoved { slot });
            }
            _ => {}
        }
    }

    fn start(&self, slot: SlotNumber, device: BusDevice, launch: &Launch<O>) -> SlotState {
        self.emit(EventKind::UnitDetected {
            slot,
            port_path: device.port_path.clone(),
            mode: device.kind,
            serial: device.serial.clone(),
        });
        let (arrivals_tx, arrivals_rx) = std_mpsc::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let info = UnitInfo::new(
            slot,
            device.port_path.clone(),
            device.clone(),
            SystemTime::now(),
        );
        let job = (self.jobs)(&info);
        let mut context = UnitContext::new(
            info.clone(),
            self.bus.clone(),
            arrivals_rx,
            cancelled.clone(),
            launch.stop_why.clone(),
            self.events.clone(),
        );
        let permits = launch.permits.clone();
        let done_tx = launch.done_tx.clone();
        tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let worker_info = info.clone();
            let (outcome, handed_over) = tokio::task::spawn_blocking(move || {
                let outcome = job.run(&mut context);
                (outcome, context.take_handed_over())
            })
            .await
            .unwrap_or_else(|e| {
                let message = format!("the unit's job crashed: {e}");
                (O::internal_error(&worker_info, message), None)
            });
            let _ = done_tx.send(Done {
                unit: info,
                outcome,
                handed_over,
            });
        });
        SlotState::Running {
            arrivals: arrivals_tx,
            cancelled,
            kind: device.kind,
            gone: false,
        }
    }

    /// Journal first (synced), then show.
    async fn finish(
        &self,
        unit: &UnitInfo,
        outcome: O,
        summary: &mut BatchSummary,
    ) -> Result<(), SupervisorError> {
        let recorder = self.recorder.clone();
        let unit_for_write = unit.clone();
        let (outcome, written) = tokio::task::spawn_blocking(move || {
            let written = recorder.record(&unit_for_write, &outcome);
            (outcome, written)
        })
        .await
        .map_err(|e| SupervisorError::Journal {
            slot: unit.slot,
            reason: format!("journal writer crashed: {e}"),
        })?;
        let recorded = written.map_err(|reason| SupervisorError::Journal {
            slot: unit.slot,
            reason,
        })?;
        match outcome.verdict() {
            Verdict::Pass => summary.passed += 1,
            Verdict::Fail(failure) => {
                summary.failed += 1;
                *summary
                    .failures_by_code
                    .entry(failure.code().as_str().to_string())
                    .or_default() += 1;
            }
            Verdict::Aborted(interruption) if interruption.not_flashed.is_some() => {
                summary.not_flashed += 1;
            }
            Verdict::Aborted(_) => summary.aborted += 1,
        }
        match (recorded.units_passed, &mut summary.units_passed) {
            (Some(counted), total) => *total = Some(counted),
            // A recorder that does not count: every PASS is a unit.
            (None, Some(total)) if outcome.verdict().is_pass() => *total += 1,
            (None, _) => {}
        }
        self.emit(EventKind::Verdict {
            slot: unit.slot,
            serial: outcome.serial().map(str::to_string),
            verdict: outcome.verdict().clone(),
        });
        Ok(())
    }
}
