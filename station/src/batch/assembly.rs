//! Where a batch's phones come from, assembled for the supervisor: the bus, the slots on it, and
//! when the batch ends besides the work order's quantity. A line gets libusb and runs until the
//! order is complete; a rig of simulated phones gets a simulated bus and also ends when each of
//! its phones has a verdict. Both run the same batch, the same stop rule for the quantity, and
//! the same jobs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::bus::rusb_bus::RusbBus;
use crate::bus::{usbfs, UsbBus};
use crate::config::{PhonesFile, SlotBinding, StationConfig};
use crate::events::SlotNumber;
use crate::mode::Mode;
use crate::preflight::CheckedBatch;
use crate::sim_fleet::rig::{next_rig_serials, sim_port, simulated_bus_numbered};
use crate::sim_fleet::scripted::scripted_rig;
use crate::sim_fleet::SimUnit;

use super::BatchError;

/// Bulk transfer size a unit asks for when nothing limits it.
const DEFAULT_TRANSFER_BYTES: usize = 1 << 20;

/// The phones' side of a batch, ready to run.
pub struct Assembly {
    pub bus: Arc<dyn UsbBus>,
    /// Port path → slot.
    pub slots: BTreeMap<String, SlotNumber>,
    /// A rig ends after this many verdicts (one per phone it holds); a line has no such end.
    pub stop_after_verdicts: Option<usize>,
    /// Largest bulk transfer one unit keeps in flight (see [`usbfs::plan`]).
    pub transfer_bytes: usize,
    /// Something the engineer should know before the batch starts (a small usbfs budget).
    pub warning: Option<String>,
    /// The rig's phones, kept alive for the batch (empty for a line).
    pub rig: Vec<SimUnit>,
}

impl Assembly {
    /// Real phones on the station's USB ports, through libusb.
    pub fn usb(slots: BTreeMap<String, SlotNumber>) -> Result<Self, BatchError> {
        let bus = RusbBus::new().map_err(BatchError::Usb)?;
        let plan = usbfs::plan(
            usbfs::read_budget_mb(std::path::Path::new(usbfs::USBFS_MEMORY_MB)),
            slots.len(),
            DEFAULT_TRANSFER_BYTES,
        );
        Ok(Assembly {
            bus: Arc::new(bus),
            slots,
            stop_after_verdicts: None,
            transfer_bytes: plan.per_slot_bytes,
            warning: plan.warning,
            rig: Vec::new(),
        })
    }

    /// A rig of simulated phones of the batch's product, one per slot in its mode, plugged one
    /// after another as an operator fills a hub. Each run on a journal brings new phones (serials
    /// no earlier run used).
    pub fn simulated(
        station: &StationConfig,
        batch: &CheckedBatch,
        slots: &[(SlotNumber, Mode)],
    ) -> Result<Self, BatchError> {
        let first = next_rig_serials(&station.journal);
        let (bus, units) = simulated_bus_numbered(batch, slots, first)?;
        for (i, unit) in units.iter().enumerate() {
            let unit = unit.clone();
            bus.schedule(Duration::from_millis(40 * i as u64), move |_| unit.plug());
        }
        Ok(Assembly {
            bus: Arc::new(bus),
            slots: slots
                .iter()
                .map(|(slot, _)| (sim_port(*slot), *slot))
                .collect(),
            stop_after_verdicts: Some(slots.len()),
            transfer_bytes: DEFAULT_TRANSFER_BYTES,
            warning: None,
            rig: units,
        })
    }

    /// The phones a phones file describes, one per slot it names, each arriving as described
    /// (plugged one after another, as [`Assembly::simulated`]'s).
    pub fn scripted(
        station: &StationConfig,
        batch: &CheckedBatch,
        phones: &PhonesFile,
    ) -> Result<Self, BatchError> {
        let first = next_rig_serials(&station.journal);
        let rig = scripted_rig(batch, phones, first)?;
        for (i, unit) in rig.units.iter().enumerate() {
            let unit = unit.clone();
            rig.bus
                .schedule(Duration::from_millis(40 * i as u64), move |_| unit.plug());
        }
        Ok(Assembly {
            bus: Arc::new(rig.bus),
            slots: rig
                .slots
                .iter()
                .map(|(slot, _)| (sim_port(*slot), *slot))
                .collect(),
            stop_after_verdicts: Some(rig.phones),
            transfer_bytes: DEFAULT_TRANSFER_BYTES,
            warning: None,
            rig: rig.units,
        })
    }
}

/// The station's phones: its USB slots, its simulated slots, or `sim` simulated phones instead.
pub fn assemble(
    station: &StationConfig,
    batch: &CheckedBatch,
    sim: Option<u16>,
) -> Result<Assembly, BatchError> {
    match slot_source(station, batch, sim)? {
        SlotSource::Usb(slots) => Assembly::usb(slots),
        SlotSource::Simulated(slots) => Assembly::simulated(station, batch, &slots),
    }
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
