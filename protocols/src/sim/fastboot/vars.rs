//! `getvar:` — the variables real bootloaders and fastbootd publish, and `getvar:all`. The
//! bootloader knows the GPT only; fastbootd also knows the logical partitions of the current
//! slot (`is-logical`, `partition-size`, `has-slot`, `super-partition-name`).

use super::{fail, info, okay, FastbootDevice};
use crate::fastboot::Variable;
use crate::sim::dynamic::SUPER;
use crate::sim::storage::{PartitionInfo, Storage};
use crate::transport::{Transport, TransportError};

/// ABL's answer to a variable it does not publish.
const UNKNOWN_VARIABLE: &str = "GetVar Variable Not found";

/// fastbootd's answer when a variable has no value for its argument, or is unknown
/// (AOSP's `fastboot/device/variables.cpp`).
fn fastbootd_refusal(var: Variable<'_>) -> &'static str {
    match var {
        Variable::IsLogical(_) => "Partition not found",
        Variable::PartitionSize(_) => "Could not open partition",
        Variable::PartitionType(_) => "Invalid partition",
        _ => "Unknown variable",
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// The name as given, or (like ABL and fastbootd) with the current slot's suffix when only the
/// suffixed partition exists.
pub(super) fn resolve(storage: &Storage, name: &str) -> Option<PartitionInfo> {
    if let Some(p) = storage.partition(name) {
        return Some(p);
    }
    let slot = storage.current_slot()?;
    storage.partition(&format!("{name}_{slot}"))
}

/// What fastboot reports as the partition's type: filesystems for the data partitions (the AOSP
/// client uses it to offer `format`), `raw` for images.
fn partition_type(name: &str) -> &'static str {
    match name {
        "userdata" | "metadata" | "cache" => "ext4",
        _ => "raw",
    }
}

/// A partition name without its slot suffix (`system_a` → `system`), if it has one.
fn slot_base<'a>(name: &'a str, slots: &[String]) -> Option<&'a str> {
    slots
        .iter()
        .find_map(|s| name.strip_suffix(&format!("_{s}")))
}

/// What `getvar:all` lists first, in ABL's order.
const DEVICE_VARIABLES: &[Variable<'static>] = &[
    Variable::Version,
    Variable::VersionBootloader,
    Variable::VersionBaseband,
    Variable::Product,
    Variable::SerialNo,
    Variable::Secure,
    Variable::Unlocked,
    Variable::CriticalUnlocked,
    Variable::MaxDownloadSize,
    Variable::MaxFetchSize,
    Variable::IsUserspace,
    Variable::Variant,
    Variable::LogicalBlockSize,
    Variable::SnapshotUpdateStatus,
    Variable::SlotCount,
    Variable::CurrentSlot,
];

impl FastbootDevice {
    /// The value of one variable, `None` if this device does not publish it.
    fn variable(&self, var: Variable<'_>) -> Option<String> {
        let userspace = self.userspace();
        // fastbootd looks for a logical partition first, as AOSP's does.
        let logical_size = |name: &str| {
            if !userspace {
                return None;
            }
            let (metadata, index) = self.logical(name)?;
            Some(metadata.partition_size(&metadata.partitions[index]))
        };
        let logical_value = match var {
            Variable::IsLogical(name) => logical_size(name).map(|_| yes_no(true)),
            Variable::PartitionSize(name) => logical_size(name).map(|size| format!("0x{size:X}")),
            Variable::PartitionType(name) => logical_size(name).map(|_| "raw".to_string()),
            Variable::HasSlot(base) => {
                let slot = self.phone.lock().storage.current_slot();
                slot.and_then(|s| logical_size(&format!("{base}_{s}")))
                    .map(|_| yes_no(true))
            }
            _ => None,
        };
        if logical_value.is_some() {
            return logical_value;
        }
        let state = self.phone.lock();
        let id = &state.identity;
        let storage = &state.storage;
        let slots = storage.slot_suffixes();
        let value = match var {
            Variable::Version => "0.4".to_string(),
            Variable::VersionBootloader => id.bootloader_version.clone(),
            Variable::VersionBaseband => "FGSIM-MPSS-1.0".to_string(),
            Variable::Product => id.product.clone(),
            Variable::SerialNo => id.serial.clone(),
            Variable::Secure => yes_no(id.secure),
            Variable::Unlocked => yes_no(id.unlocked),
            Variable::CriticalUnlocked => yes_no(id.critical_unlocked),
            Variable::MaxDownloadSize => format!("0x{:X}", self.config.max_download_size),
            Variable::MaxFetchSize if self.config.fetch_allow != super::FetchAllow::None => {
                format!("0x{:X}", self.config.max_fetch_size)
            }
            Variable::IsUserspace => yes_no(userspace),
            Variable::Variant => "SIM UFS".to_string(),
            Variable::LogicalBlockSize => {
                let ss = storage
                    .luns()
                    .first()
                    .map(|l| l.sector_size())
                    .unwrap_or(4096);
                format!("0x{ss:X}")
            }
            Variable::SnapshotUpdateStatus if userspace => "none".to_string(),
            Variable::SuperPartitionName if userspace => SUPER.to_string(),
            Variable::SlotCount if !slots.is_empty() => slots.len().to_string(),
            Variable::CurrentSlot if !slots.is_empty() => storage.current_slot()?,
            Variable::HasSlot(base) => {
                let has = !slots.is_empty()
                    && slots
                        .iter()
                        .all(|s| storage.partition(&format!("{base}_{s}")).is_some());
                yes_no(has)
            }
            Variable::PartitionSize(name) => {
                format!("0x{:X}", resolve(storage, name)?.size_bytes)
            }
            Variable::PartitionType(name) => {
                partition_type(&resolve(storage, name)?.name).to_string()
            }
            // A GPT partition is physical; the bootloader knows no other kind.
            Variable::IsLogical(name) => resolve(storage, name).map(|_| yes_no(false))?,
            Variable::SlotSuccessful(s) => {
                yes_no(storage.slot(s.trim_start_matches('_'))?.successful)
            }
            Variable::SlotUnbootable(s) => {
                yes_no(storage.slot(s.trim_start_matches('_'))?.unbootable)
            }
            Variable::SlotRetryCount(s) => storage
                .slot(s.trim_start_matches('_'))?
                .retry_count
                .to_string(),
            Variable::Other(name) => id
                .vendor_variables
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, value)| value.clone())?,
            // `all` is answered by `getvar` itself; the rest this device does not publish.
            Variable::All
            | Variable::MaxFetchSize
            | Variable::SnapshotUpdateStatus
            | Variable::SlotCount
            | Variable::CurrentSlot
            | Variable::SuperPartitionName
            | Variable::HwRevision => return None,
        };
        Some(value)
    }

    /// Every `name:value` line `getvar:all` prints, in ABL's order: device, then partitions,
    /// then slots.
    fn all_variables(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for &var in DEVICE_VARIABLES {
            if let Some(v) = self.variable(var) {
                lines.push(format!("{var}:{v}"));
            }
        }
        let (partitions, slots) = {
            let s = self.phone.lock();
            (s.storage.partitions(), s.storage.slot_suffixes())
        };
        let mut bases = Vec::new();
        for p in &partitions {
            for var in [
                Variable::PartitionSize(&p.name),
                Variable::PartitionType(&p.name),
            ] {
                if let Some(v) = self.variable(var) {
                    lines.push(format!("{var}:{v}"));
                }
            }
            if let Some(base) = slot_base(&p.name, &slots) {
                if !bases.contains(&base.to_string()) {
                    bases.push(base.to_string());
                }
            }
        }
        if self.userspace() {
            lines.extend(self.logical_lines(&partitions));
        }
        for base in &bases {
            let var = Variable::HasSlot(base);
            lines.push(format!("{var}:yes"));
        }
        for s in &slots {
            for var in [
                Variable::SlotSuccessful(s),
                Variable::SlotUnbootable(s),
                Variable::SlotRetryCount(s),
            ] {
                if let Some(v) = self.variable(var) {
                    lines.push(format!("{var}:{v}"));
                }
            }
        }
        lines
    }

    /// fastbootd's lines for `getvar:all`: every logical partition's size and type, and
    /// `is-logical` for every partition.
    fn logical_lines(&self, physical: &[PartitionInfo]) -> Vec<String> {
        let mut lines = Vec::new();
        for name in &self.logical_names() {
            for var in [
                Variable::PartitionSize(name),
                Variable::PartitionType(name),
                Variable::IsLogical(name),
            ] {
                if let Some(v) = self.variable(var) {
                    lines.push(format!("{var}:{v}"));
                }
            }
        }
        for p in physical {
            lines.push(format!("{}:no", Variable::IsLogical(&p.name)));
        }
        lines
    }

    pub(super) fn getvar(
        &mut self,
        link: &mut dyn Transport,
        var: Variable<'_>,
    ) -> Result<(), TransportError> {
        if var == Variable::All {
            for line in self.all_variables() {
                info(link, line)?;
            }
            return okay(link, "");
        }
        match self.variable(var) {
            Some(value) => okay(link, value),
            None if self.userspace() => fail(link, fastbootd_refusal(var)),
            None => fail(link, UNKNOWN_VARIABLE),
        }
    }
}
