//! The USB bus seen by the station: which phones are attached on which port paths, and when
//! they come and go.
//!
//! A slot is a physical port path (`1-4.2`), so a phone keeps its slot when it re-enumerates
//! (EDL → fastboot, bootloader → fastbootd). The real bus is libusb ([`rusb_bus::RusbBus`]);
//! scenario tests and `flashgate run --sim` plug simulated phones into a [`sim::SimBus`].

use std::sync::mpsc::Receiver;

use protocols::transport::Transport;

use crate::mode::Mode;

pub mod rusb_bus;
pub mod sim;
pub mod sysfs;
pub mod usbfs;

/// One attached phone as the bus reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BusDevice {
    pub port_path: String,
    pub kind: Mode,
    pub vendor_id: u16,
    pub product_id: u16,
    /// USB serial string; for Qualcomm EDL taken from the `…_SN:XXXXXXXX` product string.
    pub serial: Option<String>,
    /// `high`, `super`, … as libusb reports it.
    pub speed: String,
}

impl BusDevice {
    /// A slot entry for station.yaml, ready to paste.
    pub fn slot_entry(&self, slot: u16) -> String {
        format!("  - {{ slot: {slot}, port: \"{}\" }}", self.port_path)
    }
}

/// A change on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    Arrived(BusDevice),
    Left { port_path: String, kind: Mode },
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The machine has no USB subsystem: nothing can ever be attached. Not a failure for
    /// listing commands, which print "no devices".
    #[error("no USB subsystem: {0}")]
    NoUsbSubsystem(String),
    #[error("no {kind} device on port {port_path} (unplugged or re-enumerating)")]
    NotPresent { port_path: String, kind: Mode },
    #[error("cannot open {kind} device on port {port_path}: {reason}")]
    Open {
        port_path: String,
        kind: Mode,
        reason: String,
    },
    #[error("USB bus error: {0}")]
    Other(String),
}

/// Discovery, hotplug and opening of devices.
pub trait UsbBus: Send + Sync {
    /// Every fastboot and EDL device attached now, in port-path order.
    fn snapshot(&self) -> Result<Vec<BusDevice>, BusError>;

    /// A stream of arrivals and departures. Devices already attached arrive first.
    fn watch(&self) -> Result<Receiver<BusEvent>, BusError>;

    /// Open a link to the device of `kind` at `port_path`.
    fn open(&self, port_path: &str, kind: Mode) -> Result<Box<dyn Transport>, BusError>;
}

/// The events that turn `before` into `after` (departures first, then arrivals). A device that
/// changed kind on the same port shows as a departure and an arrival.
pub fn diff(before: &[BusDevice], after: &[BusDevice]) -> Vec<BusEvent> {
    let mut events = Vec::new();
    for old in before {
        if !after.contains(old) {
            events.push(BusEvent::Left {
                port_path: old.port_path.clone(),
                kind: old.kind,
            });
        }
    }
    for new in after {
        if !before.contains(new) {
            events.push(BusEvent::Arrived(new.clone()));
        }
    }
    events
}

/// Qualcomm EDL devices put the chip serial in the product string (`QUSB__BULK_SN:1A2B3C4D`)
/// rather than in a serial descriptor.
pub fn edl_serial_from_product(product: &str) -> Option<String> {
    let (_, rest) = product.split_once("_SN:")?;
    let serial: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (!serial.is_empty()).then_some(serial)
}

/// How an EDL phone's chip serial is written everywhere the station shows or records it: as
/// the USB product string carries it (`QUSB__BULK_SN:1A2B3C4D`), so the serial on the
/// dashboard at detection, after Sahara identification and in the journal is one string.
pub fn edl_serial_text(chip_serial: u32) -> String {
    format!("{chip_serial:08X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(port: &str, kind: Mode) -> BusDevice {
        BusDevice {
            port_path: port.into(),
            kind,
            vendor_id: 0x18d1,
            product_id: 0x4ee0,
            serial: Some("S".into()),
            speed: "high".into(),
        }
    }

    #[test]
    fn diff_reports_departures_then_arrivals() {
        let before = vec![dev("1-1", Mode::Edl), dev("1-2", Mode::Fastboot)];
        let after = vec![dev("1-1", Mode::Fastboot), dev("1-2", Mode::Fastboot)];
        assert_eq!(
            diff(&before, &after),
            vec![
                BusEvent::Left {
                    port_path: "1-1".into(),
                    kind: Mode::Edl
                },
                BusEvent::Arrived(dev("1-1", Mode::Fastboot)),
            ]
        );
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn edl_serial_comes_from_the_product_string() {
        assert_eq!(
            edl_serial_from_product("QUSB__BULK_SN:1A2B3C4D").as_deref(),
            Some("1A2B3C4D")
        );
        assert_eq!(
            edl_serial_from_product("Qualcomm CDMA Technologies MSM_SN:0badf00d trailing")
                .as_deref(),
            Some("0BADF00D")
        );
        assert_eq!(edl_serial_text(0x0bad_f00d), "0BADF00D");
        assert_eq!(edl_serial_from_product("QUSB__BULK"), None);
        assert_eq!(edl_serial_from_product("x_SN:"), None);
    }

    #[test]
    fn slot_entry_is_yaml() {
        assert_eq!(
            dev("1-4.2", Mode::Fastboot).slot_entry(3),
            "  - { slot: 3, port: \"1-4.2\" }"
        );
    }
}
