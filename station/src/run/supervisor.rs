//! The station's heart beat: watches the bus, starts one job per unit on its slot, routes
//! re-enumerations to the job that is waiting for them, and turns each job's outcome into a
//! journal row first and a shown verdict second.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, Semaphore};

use crate::bus::{BusDevice, BusEvent, DeviceKind, UsbBus};
use crate::events::{BatchSummary, Event, EventKind, EventSink, Mode, SlotNumber, Verdict};

use super::unit::{UnitContext, UnitInfo, UnitJob, UnitOutcome};

/// Makes the job for a unit that just arrived on a slot.
pub type JobFactory<O> = Arc<dyn Fn(&UnitInfo) -> Box<dyn UnitJob<O>> + Send + Sync>;

/// Writes a verdict durably. Called on a blocking thread; must return only once the row is on
/// disk, because the verdict is shown right after.
pub trait VerdictRecorder<O>: Send + Sync + 'static {
    fn record(&self, unit: &UnitInfo, outcome: &O) -> Result<(), String>;
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
    /// After this many verdicts (PASS or FAIL), once no job is running.
    pub verdicts: Option<usize>,
    /// After this many PASS verdicts (a work order's quantity).
    pub passes: Option<usize>,
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
    Running {
        arrivals: std_mpsc::Sender<BusDevice>,
        cancelled: Arc<AtomicBool>,
        kind: DeviceKind,
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
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
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
        let permits = Arc::new(Semaphore::new(self.parallel.max(1)));
        let mut states: BTreeMap<SlotNumber, SlotState> = self
            .slots
            .values()
            .map(|slot| (*slot, SlotState::Waiting))
            .collect();
        let mut summary = BatchSummary::default();
        let mut running = 0usize;
        let mut verdicts = 0usize;
        tokio::pin!(shutdown);

        loop {
            let stop_due = self.stop_when.verdicts.is_some_and(|n| verdicts >= n)
                || self
                    .stop_when
                    .passes
                    .is_some_and(|n| summary.passed as usize >= n);
            if stop_due && running == 0 {
                // Removals the bus already saw (a unit pulled as its job ended) are shown before
                // the batch closes; the bus reports from its own thread, so give it a moment.
                let settle = std::time::Duration::from_millis(100);
                while let Ok(Some(event)) = tokio::time::timeout(settle, bus_rx.recv()).await {
                    if let BusEvent::Left { port_path, .. } = event {
                        self.left(&port_path, &mut states);
                    }
                }
                break;
            }
            tokio::select! {
                _ = &mut shutdown => {
                    for state in states.values() {
                        if let SlotState::Running { cancelled, .. } = state {
                            cancelled.store(true, Ordering::SeqCst);
                        }
                    }
                    // Let running jobs reach a verdict (they see the cancellation between
                    // chunks); every one is journaled before we return.
                    while running > 0 {
                        let Some(done) = done_rx.recv().await else { break };
                        running -= 1;
                        self.finish(&done.unit, done.outcome, &mut summary).await?;
                    }
                    break;
                }
                Some(event) = bus_rx.recv() => match event {
                    BusEvent::Arrived(device) => {
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
                            continue;
                        };
                        let state = states.entry(slot).or_insert(SlotState::Waiting);
                        match state {
                            SlotState::Waiting if !stop_due => {
                                *state = self.start(slot, device, &permits, &done_tx);
                                running += 1;
                            }
                            SlotState::Running { arrivals, kind, gone, .. } => {
                                if *kind != device.kind {
                                    *kind = device.kind;
                                    self.emit(EventKind::ModeChanged { slot, mode: Mode::from(device.kind) });
                                }
                                *gone = false;
                                let _ = arrivals.send(device);
                            }
                            SlotState::Waiting | SlotState::Done => {}
                        }
                    }
                    BusEvent::Left { port_path, .. } => self.left(&port_path, &mut states),
                },
                Some(Done { unit, outcome, handed_over }) = done_rx.recv() => {
                    running -= 1;
                    verdicts += 1;
                    self.finish(&unit, outcome, &mut summary).await?;
                    let gone = matches!(states.get(&unit.slot), Some(SlotState::Running { gone: true, .. }));
                    let stop_due = self.stop_when.verdicts.is_some_and(|n| verdicts >= n)
                        || self.stop_when.passes.is_some_and(|n| summary.passed as usize >= n);
                    if gone {
                        states.insert(unit.slot, SlotState::Waiting);
                        self.emit(EventKind::UnitRemoved { slot: unit.slot });
                    } else if let Some(device) = handed_over.filter(|_| !stop_due) {
                        // Another phone took the unit's place during a reboot: the old unit's
                        // verdict is shown, and the phone on the port is a new unit.
                        self.emit(EventKind::UnitRemoved { slot: unit.slot });
                        let next = self.start(unit.slot, device, &permits, &done_tx);
                        states.insert(unit.slot, next);
                        running += 1;
                    } else {
                        states.insert(unit.slot, SlotState::Done);
                    }
                }
            }
        }
        summary.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.emit(EventKind::BatchFinished(summary.clone()));
        Ok(summary)
    }

    /// A device left its port: a running unit is marked gone (its job sees the link die), a
    /// finished one has been taken away and its slot waits for the next.
    fn left(&self, port_path: &str, states: &mut BTreeMap<SlotNumber, SlotState>) {
        let Some(&slot) = self.slots.get(port_path) else {
            return;
        };
        match states.get_mut(&slot) {
            Some(SlotState::Running { gone, .. }) => *gone = true,
            Some(state @ SlotState::Done) => {
                *state = SlotState::Waiting;
                self.emit(EventKind::UnitRemoved { slot });
            }
            _ => {}
        }
    }

    fn start(
        &self,
        slot: SlotNumber,
        device: BusDevice,
        permits: &Arc<Semaphore>,
        done_tx: &mpsc::UnboundedSender<Done<O>>,
    ) -> SlotState {
        self.emit(EventKind::UnitDetected {
            slot,
            port_path: device.port_path.clone(),
            mode: Mode::from(device.kind),
            serial: device.serial.clone(),
        });
        let (arrivals_tx, arrivals_rx) = std_mpsc::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let info = UnitInfo {
            slot,
            port_path: device.port_path.clone(),
            first_seen: device.clone(),
            attempt_started: SystemTime::now(),
        };
        let job = (self.jobs)(&info);
        let mut context = UnitContext::new(
            info.clone(),
            self.bus.clone(),
            arrivals_rx,
            cancelled.clone(),
            self.events.clone(),
        );
        let permits = permits.clone();
        let done_tx = done_tx.clone();
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
        written.map_err(|reason| SupervisorError::Journal {
            slot: unit.slot,
            reason,
        })?;
        match outcome.verdict() {
            Verdict::Pass => summary.passed += 1,
            Verdict::Fail { code, .. } => {
                summary.failed += 1;
                *summary.failures_by_code.entry(code.clone()).or_default() += 1;
            }
        }
        self.emit(EventKind::Verdict {
            slot: unit.slot,
            serial: outcome.serial().map(str::to_string),
            verdict: outcome.verdict().clone(),
        });
        Ok(())
    }
}
