//! What one unit's job sees of the station while it runs on its own blocking thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use protocols::transport::Transport;

use crate::bus::{BusDevice, BusError, UsbBus};
use crate::events::{Event, EventKind, EventSink, Phase, SlotNumber, SlotProgress};
use crate::mode::Mode;
use crate::verdict::Verdict;

/// What a finished job hands back: the verdict plus whatever the journal row needs.
pub trait UnitOutcome: Send + 'static {
    fn verdict(&self) -> &Verdict;
    fn serial(&self) -> Option<&str>;
    /// The outcome for a job that died without producing one (a bug, never a device's doing):
    /// it still gets a FAIL row in the journal.
    fn internal_error(unit: &UnitInfo, message: String) -> Self;
}

/// One unit's job from identification to verdict. Blocking: protocol I/O happens here.
pub trait UnitJob<O: UnitOutcome>: Send + 'static {
    fn run(self: Box<Self>, unit: &mut UnitContext) -> O;
}

/// Where a unit sits, for its verdict and journal row.
#[derive(Debug, Clone)]
pub struct UnitInfo {
    pub slot: SlotNumber,
    pub port_path: String,
    /// The device as it first arrived (its kind may change on re-enumeration).
    pub first_seen: BusDevice,
    pub attempt_started: std::time::SystemTime,
    /// The id the job's recorder gave this attempt once it opened it (a journal row), shared so
    /// that a job that crashes still gets its verdict on that row.
    record_id: Arc<OnceLock<i64>>,
}

impl UnitInfo {
    pub fn new(
        slot: SlotNumber,
        port_path: String,
        first_seen: BusDevice,
        attempt_started: std::time::SystemTime,
    ) -> Self {
        UnitInfo {
            slot,
            port_path,
            first_seen,
            attempt_started,
            record_id: Arc::default(),
        }
    }

    pub fn record_id(&self) -> Option<i64> {
        self.record_id.get().copied()
    }

    pub fn set_record_id(&self, id: i64) {
        let _ = self.record_id.set(id);
    }
}

/// Why waiting for the unit to come back failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReenumerationError {
    #[error(
        "slot {slot}: the unit did not come back as {expected} on port {port_path} within {secs} s"
    )]
    Timeout {
        slot: SlotNumber,
        port_path: String,
        expected: String,
        secs: u64,
    },
    #[error("slot {slot}: the batch was stopped")]
    Cancelled { slot: SlotNumber },
    /// A device came back on the port, but as another kind (the unit fell into EDL, or another
    /// phone was plugged in): it is now the context's current device.
    #[error("slot {slot}: a {found} device came back on port {port_path}, not {expected}")]
    OtherKind {
        slot: SlotNumber,
        port_path: String,
        expected: String,
        found: Mode,
    },
}

/// Handed to [`UnitJob::run`].
pub struct UnitContext {
    info: UnitInfo,
    device: BusDevice,
    bus: Arc<dyn UsbBus>,
    arrivals: Receiver<BusDevice>,
    cancelled: Arc<AtomicBool>,
    stop_why: Arc<OnceLock<String>>,
    events: Arc<dyn EventSink>,
    /// Set when the device now on the port is not this job's unit (see
    /// [`UnitContext::hand_over_device`]).
    handed_over: Option<BusDevice>,
    /// The step the job last announced, for a sentence about a job that crashed in it.
    phase: Mutex<Option<Phase>>,
}

impl UnitContext {
    pub(crate) fn new(
        info: UnitInfo,
        bus: Arc<dyn UsbBus>,
        arrivals: Receiver<BusDevice>,
        cancelled: Arc<AtomicBool>,
        stop_why: Arc<OnceLock<String>>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        UnitContext {
            device: info.first_seen.clone(),
            info,
            bus,
            arrivals,
            cancelled,
            stop_why,
            events,
            handed_over: None,
            phase: Mutex::new(None),
        }
    }

    pub fn info(&self) -> &UnitInfo {
        &self.info
    }

    pub fn slot(&self) -> SlotNumber {
        self.info.slot
    }

    /// The device as the bus shows it now (after any re-enumeration).
    pub fn device(&self) -> &BusDevice {
        &self.device
    }

    /// The device now on the port is another phone, not this job's unit (it was swapped in
    /// during a reboot): once this attempt's verdict is recorded, the supervisor starts a new
    /// attempt for it on the same slot.
    pub fn hand_over_device(&mut self) {
        self.handed_over = Some(self.device.clone());
    }

    pub(crate) fn take_handed_over(&mut self) -> Option<BusDevice> {
        self.handed_over.take()
    }

    /// Open a link to the unit in its current mode.
    pub fn open(&self) -> Result<Box<dyn Transport>, BusError> {
        self.bus.open(&self.device.port_path, self.device.kind)
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Why the station stopped, once it did (`the station was stopped (SIGTERM)`).
    pub fn stop_reason(&self) -> Option<String> {
        self.stop_why.get().cloned()
    }

    pub fn emit(&self, kind: EventKind) {
        self.events.emit(Event::now(kind));
    }

    pub fn phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = Some(phase.clone());
        self.emit(EventKind::PhaseChanged {
            slot: self.info.slot,
            phase,
        });
    }

    /// The step the job last announced with [`UnitContext::phase`].
    pub fn current_phase(&self) -> Option<Phase> {
        self.phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn identified(&self, serial: &str) {
        self.emit(EventKind::UnitIdentified {
            slot: self.info.slot,
            serial: serial.to_string(),
        });
    }

    pub fn warn(&self, message: String) {
        self.emit(EventKind::Warning {
            slot: Some(self.info.slot),
            message,
        });
    }

    /// A progress sink that shows nothing but stops the operation when the station stops.
    pub fn stop_only(&self) -> crate::events::StopOnly {
        crate::events::StopOnly(self.cancelled.clone())
    }

    /// Progress and device messages of protocol operations, as this slot's events; the
    /// operations stop at their next safe point when the station stops.
    pub fn progress(&self) -> SlotProgress<Arc<dyn EventSink>> {
        SlotProgress::new(self.info.slot, self.events.clone()).stop_on(self.cancelled.clone())
    }

    /// After a reboot or power reset: wait until the unit is back on the same port path as one
    /// of `kinds`, then make it the current device.
    pub fn wait_for_reenumeration(
        &mut self,
        kinds: &[Mode],
        deadline: Duration,
    ) -> Result<&BusDevice, ReenumerationError> {
        self.phase(Phase::WaitingForReenumeration);
        let until = Instant::now() + deadline;
        loop {
            if self.is_cancelled() {
                return Err(ReenumerationError::Cancelled {
                    slot: self.info.slot,
                });
            }
            let left = until.saturating_duration_since(Instant::now());
            // Wake up now and then to notice cancellation.
            match self
                .arrivals
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(device) if kinds.contains(&device.kind) => {
                    self.device = device;
                    return Ok(&self.device);
                }
                // Waiting on would only end in a timeout: nothing else arrives on this port
                // while that device stays.
                Ok(device) => {
                    let found = device.kind;
                    self.device = device;
                    return Err(ReenumerationError::OtherKind {
                        slot: self.info.slot,
                        port_path: self.info.port_path.clone(),
                        expected: expected_kinds(kinds),
                        found,
                    });
                }
                Err(RecvTimeoutError::Timeout) if !left.is_zero() => continue,
                _ => {
                    return Err(ReenumerationError::Timeout {
                        slot: self.info.slot,
                        port_path: self.info.port_path.clone(),
                        expected: expected_kinds(kinds),
                        secs: deadline.as_secs(),
                    });
                }
            }
        }
    }
}

fn expected_kinds(kinds: &[Mode]) -> String {
    let names: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    names.join(" or ")
}
