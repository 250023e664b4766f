//! A whole batch: pre-flight has passed; open the journal, put the slots on a bus (libusb, or
//! simulated phones), run the supervisor with the station's unit job, and report.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use protocols::sim::edl::EdlSimConfig;
use protocols::sim::fastboot::{FastbootConfig, FetchAllow};
use protocols::sim::{Phone, PhoneMode, StorageError};

use crate::bus::sim::SimBus;
use crate::bus::UsbBus;
use crate::config::{SlotBinding, StationConfig};
use crate::events::{BatchInfo, BatchSummary, Event, EventKind, EventSink, SlotInfo, SlotNumber};
use crate::job::{BatchContext, JournalRecorder, StationJob, UnitResult};
use crate::journal::{Journal, JournalError};
use crate::logging::UnitLogs;
use crate::mode::Mode;
use crate::preflight::CheckedBatch;
use crate::run::{JobFactory, Quantity, StopWhen, Supervisor, SupervisorError};
use crate::sim_fleet::SimUnit;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error("station.yaml {station}: slots {usb:?} are USB ports and slots {simulated:?} are simulated; a station runs either real or simulated phones — split them into two station files")]
    MixedSlots {
        station: String,
        usb: Vec<SlotNumber>,
        simulated: Vec<SlotNumber>,
    },
    #[error("cannot build simulated phone for slot {slot}: {source}")]
    SimPhone {
        slot: SlotNumber,
        #[source]
        source: StorageError,
    },
}

/// The port path a simulated slot's phone is plugged into.
pub fn sim_port(slot: SlotNumber) -> String {
    format!("sim-{slot}")
}

/// Where each slot's phones come from.
pub enum SlotSource {
    /// Real phones on these USB port paths.
    Usb(BTreeMap<String, SlotNumber>),
    /// Simulated phones, one per slot, starting in this mode.
    Simulated(Vec<(SlotNumber, Mode)>),
}

/// The slots of `station`, or `sim` simulated slots instead: alternating fastboot and EDL
/// phones when the region has an EDL plan, fastboot phones otherwise.
pub fn slot_source(
    station: &StationConfig,
    batch: &CheckedBatch,
    sim: Option<u16>,
) -> Result<SlotSource, BatchError> {
    let edl_possible = batch.image_set.edl.is_some() && !batch.product.identity.edl.is_empty();
    if let Some(n) = sim {
        return Ok(SlotSource::Simulated(
            (1..=n)
                .map(|slot| {
                    let kind = if slot % 2 == 1 || !edl_possible {
                        Mode::Fastboot
                    } else {
                        Mode::Edl
                    };
                    (slot, kind)
                })
                .collect(),
        ));
    }
    let mut usb = BTreeMap::new();
    let mut simulated = Vec::new();
    for slot in &station.slots {
        match &slot.binding {
            SlotBinding::UsbPort(port) => {
                usb.insert(port.clone(), slot.slot);
            }
            SlotBinding::Simulated(Mode::Fastboot) => simulated.push((slot.slot, Mode::Fastboot)),
            SlotBinding::Simulated(Mode::Edl) => simulated.push((slot.slot, Mode::Edl)),
        }
    }
    match (usb.is_empty(), simulated.is_empty()) {
        (_, true) => Ok(SlotSource::Usb(usb)),
        (true, false) => Ok(SlotSource::Simulated(simulated)),
        (false, false) => Err(BatchError::MixedSlots {
            station: station.source.display().to_string(),
            usb: usb.values().copied().collect(),
            simulated: simulated.iter().map(|(s, _)| *s).collect(),
        }),
    }
}

/// A simulated phone of the batch's product, as the factory would deliver it: the manifest's
/// fastboot product and EDL identity, a secure boot that accepts the product's programmers.
pub fn product_phone(
    batch: &CheckedBatch,
    slot: SlotNumber,
    kind: Mode,
) -> Result<Phone, StorageError> {
    numbered_phone(batch, FIRST_RIG_SERIAL + u32::from(slot), kind)
}

/// The serials of a rig's phones are this plus the slot number (`FG000101` on slot 1).
pub const FIRST_RIG_SERIAL: u32 = 100;
const RIG_SERIAL_PREFIX: &str = "FG";

/// A simulated phone of the batch's product whose serial is `FG{number:06}` and whose EDL chip
/// serial reads the same digits (`5EC00105` for `FG000105`).
pub fn numbered_phone(
    batch: &CheckedBatch,
    number: u32,
    kind: Mode,
) -> Result<Phone, StorageError> {
    let identity = &batch.product.identity;
    let mut builder = Phone::builder()
        .serial(&format!("{RIG_SERIAL_PREFIX}{number:06}"))
        .chip_serial(
            0x5EC0_0000_u32
                .wrapping_add(u32::from_str_radix(&number.to_string(), 16).unwrap_or(number)),
        )
        .mode(match kind {
            Mode::Fastboot => PhoneMode::Bootloader,
            Mode::Edl => PhoneMode::Edl,
        })
        // A factory build whose boot chain stops in the bootloader: after EDL's power reset
        // the phone is back in fastboot on its slot, where the station reads back.
        .boots_to(PhoneMode::Bootloader);
    if let Some(product) = &identity.fastboot_product {
        builder = builder.product(product);
    }
    if let Some(edl) = identity.edl.first() {
        builder = builder.msm_hw_id(edl.hw_id).oem_pk_hash(&edl.oem_pk_hash);
    }
    for programmer in &batch.programmers {
        builder = builder.accept_programmer(programmer.sha256().0);
    }
    builder.build()
}

/// The serial base for a rig run on `journal`: the next hundred past the highest rig serial
/// the journal holds, so that no two runs' phones share a serial (`FG000101`… on a new journal,
/// `FG000201`… after one run).
pub fn next_rig_serials(journal: &std::path::Path) -> u32 {
    let highest = Journal::open_existing(journal)
        .and_then(|j| j.highest_serial_with_prefix(RIG_SERIAL_PREFIX))
        .ok()
        .flatten()
        .and_then(|serial| serial.get(RIG_SERIAL_PREFIX.len()..)?.parse::<u32>().ok());
    match highest {
        None => FIRST_RIG_SERIAL,
        Some(n) => (n / 100).saturating_add(1).saturating_mul(100),
    }
}

/// The simulated bootloader a station's demo phones run: a factory bootloader lets the station
/// read back any partition (production ABLs are configured so; fastbootd's list is narrower).
pub fn factory_fastboot() -> FastbootConfig {
    FastbootConfig {
        fetch_allow: FetchAllow::All,
        fetch_requires_unlocked: false,
        ..FastbootConfig::default()
    }
}

/// A simulated bus with one phone of the batch's product per slot (serials `FG000101`…).
pub fn simulated_bus(
    batch: &CheckedBatch,
    slots: &[(SlotNumber, Mode)],
) -> Result<(SimBus, Vec<SimUnit>), BatchError> {
    simulated_bus_numbered(batch, slots, FIRST_RIG_SERIAL)
}

/// As [`simulated_bus`], the phone on slot N having serial number `first + N`: a rig run again
/// on the same journal brings new phones, as a line does.
pub fn simulated_bus_numbered(
    batch: &CheckedBatch,
    slots: &[(SlotNumber, Mode)],
    first: u32,
) -> Result<(SimBus, Vec<SimUnit>), BatchError> {
    let bus = SimBus::new();
    let mut units = Vec::new();
    for (slot, kind) in slots {
        let phone = numbered_phone(batch, first.saturating_add(u32::from(*slot)), *kind).map_err(
            |source| BatchError::SimPhone {
                slot: *slot,
                source,
            },
        )?;
        units.push(SimUnit::new(
            &bus,
            &sim_port(*slot),
            phone,
            factory_fastboot(),
            EdlSimConfig::default(),
        ));
    }
    Ok((bus, units))
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
        let (journal, _lock, interrupted) =
            Journal::open_for_station(&self.station.journal, std::time::SystemTime::now())?;
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
            })));
        let parallel = usize::from(self.station.limits.parallel_slots.max(1));
        let recorder = Arc::new(JournalRecorder {
            journal: journal.clone(),
            work_order: batch.work_order.id.clone(),
            patience: self.journal_patience,
            events: self.events.clone(),
        });
        let context = Arc::new(BatchContext {
            station: self.station,
            batch: self.batch,
            journal,
            unit_logs: self.unit_logs,
            transfer_bytes: self.transfer_bytes,
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
        };
        Ok(BatchEnd::Ran(supervisor.run(shutdown).await?))
    }
}
