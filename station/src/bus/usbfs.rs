//! The kernel's usbfs memory budget.
//!
//! Every in-flight libusb transfer is charged against `usbcore.usbfs_memory_mb` (16 MB by
//! default). With many phones and large bulk transfers the budget runs out and transfers fail
//! with ENOMEM, which looks like a flaky phone. The station therefore caps the bytes each slot
//! keeps in flight so the configured slots fit, and tells the engineer how to raise the budget.
//! The same cap sizes the usbfs memory each open link maps to send images from without a copy
//! (one transfer buffer of at most that many bytes, held while the link is open; see
//! `flashgate_protocols::transport::usb::SendPath`).

use std::path::Path;

/// Where Linux exposes the budget.
pub const USBFS_MEMORY_MB: &str = "/sys/module/usbcore/parameters/usbfs_memory_mb";

/// Never go below this per transfer: smaller transfers cost more in per-transfer overhead
/// than they save.
pub const MIN_TRANSFER_BYTES: usize = 64 * 1024;
/// No benefit above this on USB 2 high speed.
pub const MAX_TRANSFER_BYTES: usize = 16 * 1024 * 1024;

/// What the station should do about usbfs memory for `slots` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbfsPlan {
    /// The budget in MiB (None: unlimited, i.e. the parameter is 0, or unknown).
    pub budget_mb: Option<u64>,
    /// Bytes one slot may keep in flight.
    pub per_slot_bytes: usize,
    /// A warning for the engineer when the budget is tight.
    pub warning: Option<String>,
}

/// Plan from the value of `usbfs_memory_mb` (None if the file could not be read).
pub fn plan(budget_mb: Option<u64>, slots: usize, wanted_per_slot: usize) -> UsbfsPlan {
    let slots = slots.max(1);
    let wanted = wanted_per_slot.clamp(MIN_TRANSFER_BYTES, MAX_TRANSFER_BYTES);
    let Some(mb) = budget_mb.filter(|mb| *mb > 0) else {
        return UsbfsPlan {
            budget_mb: None,
            per_slot_bytes: wanted,
            warning: None,
        };
    };
    // Leave a quarter of the budget for control transfers and other USB users.
    let usable = (mb as usize * 1024 * 1024) / 4 * 3;
    let fair = usable / slots;
    let per_slot = fair.min(wanted).max(MIN_TRANSFER_BYTES);
    let needed_mb = (slots * wanted).div_ceil(1024 * 1024) * 4 / 3 + 1;
    let warning = (fair < wanted).then(|| {
        format!(
            "usbfs memory budget is {mb} MB for {slots} slots: transfers are capped at {} KiB per slot, \
             which slows flashing. Raise it to at least {needed_mb} MB: add `usbcore.usbfs_memory_mb={needed_mb}` \
             to the kernel command line, or now: `echo {needed_mb} | sudo tee {USBFS_MEMORY_MB}`",
            per_slot / 1024
        )
    });
    UsbfsPlan {
        budget_mb: Some(mb),
        per_slot_bytes: per_slot,
        warning,
    }
}

/// Read the budget from sysfs (None when not Linux or no usbcore).
pub fn read_budget_mb(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_budget_is_tight_for_many_slots() {
        let p = plan(Some(16), 16, 1024 * 1024);
        assert_eq!(p.per_slot_bytes, 16 * 1024 * 1024 / 4 * 3 / 16);
        let w = p.warning.unwrap();
        assert!(w.contains("usbcore.usbfs_memory_mb=22"), "{w}");
        assert!(w.contains("16 slots"));
    }

    #[test]
    fn enough_budget_means_no_warning() {
        let p = plan(Some(256), 8, 1024 * 1024);
        assert_eq!(p.per_slot_bytes, 1024 * 1024);
        assert_eq!(p.warning, None);
    }

    #[test]
    fn zero_means_unlimited_and_floor_holds() {
        assert_eq!(plan(Some(0), 32, 4 << 20).per_slot_bytes, 4 << 20);
        assert_eq!(plan(None, 32, 4 << 20).warning, None);
        assert_eq!(
            plan(Some(1), 32, 1 << 20).per_slot_bytes,
            MIN_TRANSFER_BYTES
        );
    }

    #[test]
    fn reads_the_parameter_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("usbfs_memory_mb");
        std::fs::write(&f, "16\n").unwrap();
        assert_eq!(read_budget_mb(&f), Some(16));
        assert_eq!(read_budget_mb(&dir.path().join("missing")), None);
    }
}
