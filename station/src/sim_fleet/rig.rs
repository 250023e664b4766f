//! A rig of simulated phones of one product, on a simulated bus: what `flashgate run --sim`,
//! a station whose slots are `simulated:`, and the scenario tests flash. Production batches
//! never come here; `batch::Assembly::simulated` does, when the station asks for phones that
//! are not real.
//!
//! The phones are the product's, as the manifest describes it:
//! - **Dynamic partitions**: a phone with a physical `super` (Android 10+; logical partitions
//!   in its LP metadata) when the manifest declares a `super` size (`sizes.partitions.super`)
//!   or the region's fastboot plan writes `super` or has a `fastbootd:` part (logical
//!   partitions). Its `super` has the declared size, else the size of the largest image the
//!   plan writes to `super` (a factory `super.img` spans the whole partition), else
//!   [`DEFAULT_SUPER_SIZE`]. Otherwise the phone has the 2018 layout (`system` physical).
//! - **Mode**: a slot asks for a fastboot or an EDL phone; a product with no EDL route (no EDL
//!   plan for the region, or no EDL identity) gets a fastboot phone on an EDL slot, as a line
//!   that flashes it would plug one there: one station file serves both kinds of products.

use protocols::sim::edl::EdlSimConfig;
use protocols::sim::fastboot::{FastbootConfig, FetchAllow};
use protocols::sim::{Phone, PhoneMode, StorageError};

use crate::config::FastbootPlan;

use super::SimUnit;
use crate::bus::sim::SimBus;
use crate::config::{UnitCodeSource, VerifyMethod};
use crate::events::SlotNumber;
use crate::journal::Journal;
use crate::mode::Mode;
use crate::preflight::CheckedBatch;

#[derive(Debug, thiserror::Error)]
#[error("cannot build simulated phone for slot {slot}: {source}")]
pub struct RigError {
    pub slot: SlotNumber,
    #[source]
    pub source: StorageError,
}

/// The port path a simulated slot's phone is plugged into.
pub fn sim_port(slot: SlotNumber) -> String {
    format!("sim-{slot}")
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
        // the phone is back in fastboot on its slot, where the station reads back. A product
        // verified through EDL is played by production phones, whose reset boots Android.
        .boots_to(if verified_through_edl(batch) {
            PhoneMode::Android
        } else {
            PhoneMode::Bootloader
        });
    if let Some(product) = &identity.fastboot_product {
        builder = builder.product(product);
    }
    // The factory programmed each phone's code where the product says it reads it.
    if let Some(UnitCodeSource::Getvar(name)) = &identity.unit_code {
        builder = builder.vendor_variable(name, &imei_for(number));
    }
    if let Some(size) = super_size(batch) {
        builder = builder.dynamic_partitions(size);
    }
    if let Some(edl) = identity.edl.first() {
        builder = builder.msm_hw_id(edl.hw_id).oem_pk_hash(&edl.oem_pk_hash);
    }
    for programmer in &batch.programmers {
        builder = builder.accept_programmer(programmer.sha256().0);
    }
    builder.build()
}

/// A valid IMEI for rig phone `number`: a test TAC, the number as the serial, the Luhn check
/// digit (what an MES checks before it takes the code).
pub fn imei_for(number: u32) -> String {
    let body = format!("35693803{:06}", number % 1_000_000);
    format!("{body}{}", luhn_check_digit(&body))
}

fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// The `super` of a product's phones when it has no declared size and no super image says it.
pub const DEFAULT_SUPER_SIZE: u64 = 4 << 30;

/// The physical partition of a dynamic-partition phone that holds its logical partitions.
const SUPER: &str = "super";

/// The size of the `super` partition of the batch's phones, or `None` for a phone without
/// dynamic partitions (the rule is in the module documentation).
pub fn super_size(batch: &CheckedBatch) -> Option<u64> {
    let declared = batch.product.sizes.partition(SUPER);
    let plan = batch.image_set.fastboot.as_ref();
    let writes_super = |plan: &FastbootPlan| {
        plan.fastbootd.is_some() || plan.all_steps().any(|step| step.partition == SUPER)
    };
    if declared.is_none() && !plan.is_some_and(writes_super) {
        return None;
    }
    let super_images = plan
        .into_iter()
        .flat_map(|plan| plan.all_steps())
        .filter(|step| step.partition == SUPER)
        .filter_map(|step| batch.image(&step.file))
        .map(|image| image.partition_bytes())
        .max();
    Some(declared.or(super_images).unwrap_or(DEFAULT_SUPER_SIZE))
}

/// Whether the batch's phones can be flashed in EDL: the region has an EDL plan and the
/// product an EDL identity (the programmer to upload).
pub fn edl_possible(batch: &CheckedBatch) -> bool {
    batch.image_set.edl.is_some() && !batch.product.identity.edl.is_empty()
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

/// The product's route is `edl_readback`: its phones need no `fetch` and are not followed
/// after their reset.
fn verified_through_edl(batch: &CheckedBatch) -> bool {
    batch.image_set.activation_client.verify == VerifyMethod::EdlReadback
}

/// A simulated bus with one phone of the batch's product per slot (serials `FG000101`…).
pub fn simulated_bus(
    batch: &CheckedBatch,
    slots: &[(SlotNumber, Mode)],
) -> Result<(SimBus, Vec<SimUnit>), RigError> {
    simulated_bus_numbered(batch, slots, FIRST_RIG_SERIAL)
}

/// As [`simulated_bus`], the phone on slot N having serial number `first + N`: a rig run again
/// on the same journal brings new phones, as a line does. A slot that asks for an EDL phone gets
/// a fastboot one when the product cannot be flashed in EDL ([`edl_possible`]).
pub fn simulated_bus_numbered(
    batch: &CheckedBatch,
    slots: &[(SlotNumber, Mode)],
    first: u32,
) -> Result<(SimBus, Vec<SimUnit>), RigError> {
    let bus = SimBus::new();
    let mut units = Vec::new();
    let edl = edl_possible(batch);
    for (slot, kind) in slots {
        let kind = match kind {
            Mode::Edl if !edl => {
                tracing::info!(
                    slot = *slot,
                    "product {} has no EDL plan for region {}: the simulated phone on this EDL \
                     slot comes up in fastboot",
                    batch.product.name,
                    batch.region()
                );
                &Mode::Fastboot
            }
            kind => kind,
        };
        let phone = numbered_phone(batch, first.saturating_add(u32::from(*slot)), *kind).map_err(
            |source| RigError {
                slot: *slot,
                source,
            },
        )?;
        let bootloader = if verified_through_edl(batch) {
            // A production bootloader: no `fetch` at all.
            FastbootConfig {
                fetch_allow: FetchAllow::None,
                ..factory_fastboot()
            }
        } else {
            factory_fastboot()
        };
        units.push(SimUnit::new(
            &bus,
            &sim_port(*slot),
            phone,
            bootloader,
            EdlSimConfig::default(),
        ));
    }
    Ok((bus, units))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rig_imeis_carry_a_valid_luhn_digit() {
        // The IMEI example of 3GPP TS 23.003 Annex B: 49015420323751 → 8.
        assert_eq!(luhn_check_digit("49015420323751"), 8);
        assert_eq!(imei_for(101), "356938030001011");
        assert_eq!(imei_for(101).len(), 15);
        assert_ne!(imei_for(101), imei_for(102));
    }
}
