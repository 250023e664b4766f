//! A whole batch: pre-flight has passed; the phones' side is assembled ([`Assembly`]: libusb
//! for a line, or a rig of simulated phones); open the journal, run the supervisor with the
//! station's unit job, and report.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

mod assembly;

pub use assembly::{assemble, slot_source, Assembly, SlotSource};

use crate::bus::UsbBus;
use crate::config::StationConfig;
use crate::events::{BatchInfo, BatchSummary, Event, EventKind, EventSink, SlotInfo, SlotNumber};
use crate::job::{BatchContext, JournalRecorder, StationJob, UnitResult};
use crate::journal::{Journal, JournalError};
use crate::logging::UnitLogs;
use crate::preflight::CheckedBatch;
use crate::run::{JobFactory, Quantity, StopWhen, Supervisor, SupervisorError};
use crate::sim_fleet::rig::RigError;
use crate::trust::station_key::StationSigner;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error("station.yaml {station}: slots {usb:?} are USB ports and slots {simulated:?} are simulated; a station runs either real or simulated phones — split them into two station files")]
    MixedSlots {
        station: String,
        usb: Vec<SlotNumber>,
        simulated: Vec<SlotNumber>,
    },
    #[error(transparent)]
    SimPhone(#[from] RigError),
    /// A phone of a phones file cannot be built as described.
    #[error(transparent)]
    PhonesFile(#[from] crate::config::ConfigError),
    #[error("this station's slots are USB ports, but USB cannot be used: {0}; to try flashgate without phones use --sim N")]
    Usb(#[source] crate::bus::BusError),
    /// The station's signing key (station.yaml `station_key`) cannot sign.
    #[error("station.yaml `station_key`: {0}")]
    StationKey(#[from] crate::trust::station_key::StationKeyError),
}

/// Everything a batch run needs besides the bus.
pub struct BatchRun {
    pub station: StationConfig,
    pub batch: CheckedBatch,
    /// Port path → slot.
    pub slots: BTreeMap<String, SlotNumber>,
    pub events: Arc<dyn EventSink>,
    /// A simulated rig ends after this many verdicts (every phone it holds has one); a line
    /// runs until the work order's quantity has passed, which also ends a rig.
    pub stop_after_verdicts: Option<usize>,
    /// Before a verdict waits no longer for a journal that does not answer.
    pub journal_patience: std::time::Duration,
    /// Per-unit log files, when flashgate's logging is installed.
    pub unit_logs: Option<UnitLogs>,
    /// Bulk transfer size per unit (see [`crate::bus::usbfs::plan`]).
    pub transfer_bytes: usize,
}

/// How long a verdict waits for a journal another program holds locked before the batch stops.
pub const DEFAULT_JOURNAL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// How a batch run ended.
#[derive(Debug)]
pub enum BatchEnd {
    /// The batch ran; its summary.
    Ran(BatchSummary),
    /// The work order had already passed its quantity in earlier runs: nothing was flashed.
    AlreadyComplete {
        work_order: String,
        passed: u32,
        ordered: u32,
    },
}

impl BatchRun {
    /// The station's signing key, loaded and checked, with what to warn about: no key, or the
    /// published demo key.
    fn station_signer(&self) -> Result<(Option<Arc<StationSigner>>, Option<String>), BatchError> {
        let Some(key) = &self.station.station_key else {
            return Ok((
                None,
                Some(
                    "no unit proofs: passes are journaled but not signed (station.yaml has no \
                     `station_key` — make one with `flashgate station keygen` — or this is a \
                     run of simulated phones, which are never signed for)"
                        .into(),
                ),
            ));
        };
        let pinned = crate::trust::station_key::parse_public_key(&key.public_key)?;
        let signer = StationSigner::load(&key.secret_key_file, &pinned)?;
        let warning = signer.is_demo().then(|| {
            "unit proofs are signed with flashgate's published DEMO key: they prove nothing; a \
             line station needs its own key (`flashgate station keygen`)"
                .to_string()
        });
        Ok((Some(Arc::new(signer)), warning))
    }

    /// Run on `bus` until the stop condition or `shutdown` (which resolves with the reason for
    /// the stop). Every verdict is in the journal before it is shown.
    ///
    /// The journal is taken for this station first (one station process per journal); attempts
    /// a previous run left open are closed as ABORTED and named in a warning; the work order's
    /// quantity counts the units the journal says passed before.
    pub async fn run(
        self,
        bus: Arc<dyn UsbBus>,
        shutdown: impl Future<Output = String>,
    ) -> Result<BatchEnd, BatchError> {
        // The key first: a station that cannot sign its proofs stops before any phone (what
        // it has to say about its key comes once the batch has started).
        let (signer, key_warning) = self.station_signer()?;
        let (mut journal, _lock, interrupted) =
            Journal::open_for_station(&self.station.journal, std::time::SystemTime::now())?;
        if let Some(signer) = signer {
            journal.sign_passes_with(signer);
        }
        for row in &interrupted {
            self.events.emit(Event::now(EventKind::Warning {
                slot: None,
                message: format!(
                    "attempt #{} (slot {}, unit {}, work order {}, started {}) had no verdict when \
                     the station last stopped: closed as ABORTED; flash that unit again",
                    row.id,
                    row.slot,
                    row.unit_serial.as_deref().unwrap_or("not identified"),
                    row.work_order,
                    row.started_at
                ),
            }));
        }
        // The outbox drains first thing (a backlog from an earlier run included), and goes on
        // while the batch runs; the gate holds the fleet-wide rules.
        let (fleet_sync, fleet_gate) = match &self.station.fleet {
            Some(fleet) => {
                let sync = crate::fleet::SyncHandle::start(
                    fleet.clone(),
                    self.station.journal.clone(),
                    self.station.station_id.clone(),
                    self.events.clone(),
                )?;
                let gate = crate::fleet::FleetGate::new(
                    fleet.clone(),
                    self.station.station_id.clone(),
                    journal.uid()?,
                    self.batch.work_order.id.clone(),
                    self.batch.work_order.quantity,
                );
                (Some(sync), Some(Arc::new(gate)))
            }
            None => (None, None),
        };
        // The fleet's word before the first unit: an order complete elsewhere, or a database
        // away under the `stop` policy, is known before any phone is started.
        if let Some(gate) = fleet_gate.clone() {
            tokio::task::spawn_blocking(move || crate::run::StartGate::recheck(&*gate))
                .await
                .ok();
        }
        let batch = &self.batch;
        let ordered = batch.work_order.quantity;
        let passed_before = journal.units_passed(&batch.work_order.id)?;
        if passed_before >= ordered {
            return Ok(BatchEnd::AlreadyComplete {
                work_order: batch.work_order.id.clone(),
                passed: passed_before,
                ordered,
            });
        }
        let journal = Arc::new(Mutex::new(journal));
        self.events
            .emit(Event::now(EventKind::BatchStarted(BatchInfo {
                station_id: self.station.station_id.clone(),
                work_order: batch.work_order.id.clone(),
                product: batch.product.name.clone(),
                region: batch.region().as_str().to_string(),
                build_id: batch.image_set.build_id.clone(),
                quantity: ordered,
                passed_before,
                slots: self
                    .slots
                    .iter()
                    .map(|(port, slot)| SlotInfo {
                        slot: *slot,
                        port_path: port.clone(),
                    })
                    .collect(),
                stop_line_after: self.station.stop_line_after,
                operator: self.station.operator.clone(),
            })));
        // Under the slots for the whole run (a warning of no slot is never cleared), and on
        // every plain-lines and JSON consumer.
        let warnings = [batch.product.trust.engineering_warning(), key_warning];
        for message in warnings.into_iter().flatten() {
            self.events.emit(Event::now(EventKind::Warning {
                slot: None,
                message,
            }));
        }
        let parallel = usize::from(self.station.limits.parallel_slots.max(1));
        let recorder = Arc::new(JournalRecorder {
            journal: journal.clone(),
            work_order: batch.work_order.id.clone(),
            patience: self.journal_patience,
            events: self.events.clone(),
            fleet_sync: fleet_sync.as_ref().map(crate::fleet::SyncHandle::waker),
        });
        let context = Arc::new(BatchContext {
            station: self.station,
            batch: self.batch,
            journal,
            unit_logs: self.unit_logs,
            transfer_bytes: self.transfer_bytes,
            fleet: fleet_gate.clone(),
        });
        let jobs: JobFactory<UnitResult> = Arc::new(move |_| {
            Box::new(StationJob {
                context: context.clone(),
            })
        });
        let supervisor = Supervisor {
            slots: self.slots,
            bus,
            jobs,
            recorder,
            events: self.events,
            parallel,
            stop_when: StopWhen {
                verdicts: self.stop_after_verdicts,
                quantity: Some(Quantity {
                    ordered,
                    passed_before,
                }),
            },
            gate: fleet_gate.map(|gate| gate as Arc<dyn crate::run::StartGate>),
        };
        let summary = supervisor.run(shutdown).await;
        if let Some(sync) = fleet_sync {
            // One last shipment; what it cannot ship waits in the journal for the next start.
            let state = tokio::task::spawn_blocking(move || sync.stop())
                .await
                .unwrap_or_default();
            if state.backlog > 0 {
                tracing::warn!(
                    backlog = state.backlog,
                    "the station stops with attempts not yet in the fleet database; they are \
                     shipped when it next runs (`flashgate sync status` shows them)"
                );
            }
        }
        Ok(BatchEnd::Ran(summary?))
    }
}
