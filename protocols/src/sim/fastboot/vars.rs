//! `getvar:` — the variables real bootloaders and fastbootd publish, and `getvar:all`.

use super::{send, FastbootDevice};
use crate::sim::phone::PhoneMode;
use crate::sim::storage::{PartitionInfo, Storage};
use crate::transport::{Transport, TransportError};

/// ABL's answer to a variable it does not publish.
const UNKNOWN_VARIABLE: &str = "GetVar Variable Not found";

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

impl FastbootDevice {
    /// The value of one variable, `None` if this device does not publish it.
    fn variable(&self, name: &str) -> Option<String> {
        let state = self.phone.lock();
        let id = &state.identity;
        let storage = &state.storage;
        let slots = storage.slot_suffixes();
        let userspace = state.mode == PhoneMode::Fastbootd;
        let value = match name {
            "version" => "0.4".to_string(),
            "version-bootloader" => id.bootloader_version.clone(),
            "version-baseband" => "FGSIM-MPSS-1.0".to_string(),
            "product" => id.product.clone(),
            "serialno" => id.serial.clone(),
            "secure" => yes_no(id.secure),
            "unlocked" => yes_no(id.unlocked),
            "critical-unlocked" => yes_no(id.critical_unlocked),
            "max-download-size" => format!("0x{:X}", self.config.max_download_size),
            "max-fetch-size" => format!("0x{:X}", self.config.max_fetch_size),
            "is-userspace" => yes_no(userspace),
            "variant" => "SIM UFS".to_string(),
            "logical-block-size" => {
                let ss = storage
                    .luns()
                    .first()
                    .map(|l| l.sector_size())
                    .unwrap_or(4096);
                format!("0x{ss:X}")
            }
            "snapshot-update-status" if userspace => "none".to_string(),
            "slot-count" if !slots.is_empty() => slots.len().to_string(),
            "current-slot" if !slots.is_empty() => storage.current_slot()?,
            _ => return self.parameterised(name, storage, &slots),
        };
        Some(value)
    }

    fn parameterised(&self, name: &str, storage: &Storage, slots: &[String]) -> Option<String> {
        let (var, arg) = name.split_once(':')?;
        match var {
            "has-slot" => {
                let has = !slots.is_empty()
                    && slots
                        .iter()
                        .all(|s| storage.partition(&format!("{arg}_{s}")).is_some());
                Some(yes_no(has))
            }
            "partition-size" => resolve(storage, arg).map(|p| format!("0x{:X}", p.size_bytes)),
            "partition-type" => resolve(storage, arg).map(|p| partition_type(&p.name).to_string()),
            // No `super` here: every partition is physical.
            "is-logical" => resolve(storage, arg).map(|_| yes_no(false)),
            "slot-successful" | "slot-unbootable" | "slot-retry-count" => {
                let slot = storage.slot(arg.trim_start_matches('_'))?;
                Some(match var {
                    "slot-successful" => yes_no(slot.successful),
                    "slot-unbootable" => yes_no(slot.unbootable),
                    _ => slot.retry_count.to_string(),
                })
            }
            _ => None,
        }
    }

    /// Every `name:value` line `getvar:all` prints, in ABL's order: device, then partitions,
    /// then slots.
    fn all_variables(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for name in [
            "version",
            "version-bootloader",
            "version-baseband",
            "product",
            "serialno",
            "secure",
            "unlocked",
            "critical-unlocked",
            "max-download-size",
            "max-fetch-size",
            "is-userspace",
            "variant",
            "logical-block-size",
            "snapshot-update-status",
            "slot-count",
            "current-slot",
        ] {
            if let Some(v) = self.variable(name) {
                lines.push(format!("{name}:{v}"));
            }
        }
        let (partitions, slots) = {
            let s = self.phone.lock();
            (s.storage.partitions(), s.storage.slot_suffixes())
        };
        let mut bases = Vec::new();
        for p in &partitions {
            lines.push(format!("partition-size:{}:0x{:X}", p.name, p.size_bytes));
            lines.push(format!(
                "partition-type:{}:{}",
                p.name,
                partition_type(&p.name)
            ));
            if let Some(base) = slot_base(&p.name, &slots) {
                if !bases.contains(&base.to_string()) {
                    bases.push(base.to_string());
                }
            }
        }
        for base in bases {
            lines.push(format!("has-slot:{base}:yes"));
        }
        for s in &slots {
            for var in ["slot-successful", "slot-unbootable", "slot-retry-count"] {
                if let Some(v) = self.variable(&format!("{var}:{s}")) {
                    lines.push(format!("{var}:{s}:{v}"));
                }
            }
        }
        lines
    }

    pub(super) fn getvar(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
    ) -> Result<(), TransportError> {
        if name == "all" {
            for line in self.all_variables() {
                send(link, b"INFO", &line)?;
            }
            return send(link, b"OKAY", "");
        }
        match self.variable(name) {
            Some(value) => send(link, b"OKAY", &value),
            None => send(link, b"FAIL", UNKNOWN_VARIABLE),
        }
    }
}
