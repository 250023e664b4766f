//! The real bus on libusb: enumerate, classify by interface, watch hotplug.
//!
//! libusb forbids synchronous descriptor reads inside hotplug callbacks, so a callback only
//! marks the bus dirty; the watcher thread then takes a full snapshot (with serial strings)
//! and reports the difference. Where libusb has no hotplug support the same thread polls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocols::transport::usb::{
    find_interface, port_path_of, DeviceSelector, UsbLink, EDL_INTERFACE, FASTBOOT_INTERFACE,
};
use protocols::transport::{Transport, TransportError};
use rusb::{Context, Device, Hotplug, HotplugBuilder, UsbContext};

use super::{diff, edl_serial_from_product, BusDevice, BusError, BusEvent, UsbBus};
use crate::mode::Mode;

/// How often the bus is re-read when libusb cannot tell us about hotplug.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const STRING_TIMEOUT: Duration = Duration::from_millis(500);

pub struct RusbBus {
    context: Context,
}

impl RusbBus {
    pub fn new() -> Result<Self, BusError> {
        let context = Context::new().map_err(|e| {
            BusError::NoUsbSubsystem(format!(
                "libusb could not start ({e}); this machine has no /dev/bus/usb"
            ))
        })?;
        Ok(RusbBus { context })
    }
}

fn speed_name(speed: rusb::Speed) -> &'static str {
    match speed {
        rusb::Speed::Low => "low",
        rusb::Speed::Full => "full",
        rusb::Speed::High => "high",
        rusb::Speed::Super => "super",
        rusb::Speed::SuperPlus => "super+",
        _ => "unknown",
    }
}

fn classify(device: &Device<Context>) -> Option<Mode> {
    if find_interface(device, &EDL_INTERFACE).is_some() {
        Some(Mode::Edl)
    } else if find_interface(device, &FASTBOOT_INTERFACE).is_some() {
        Some(Mode::Fastboot)
    } else {
        None
    }
}

fn describe(device: &Device<Context>, kind: Mode) -> Option<BusDevice> {
    let desc = device.device_descriptor().ok()?;
    // A device we may not open (permissions) is still listed, without its serial; one that is
    // already gone (libusb can list a device for a moment after it left the bus) is not listed,
    // or a pulled cable would show up as a phone arriving again.
    let (serial, product) = match device.open() {
        Ok(handle) => {
            let lang = match handle.read_languages(STRING_TIMEOUT) {
                Ok(langs) => langs.first().copied(),
                Err(rusb::Error::NoDevice) => return None,
                Err(_) => None,
            };
            match lang {
                Some(lang) => (
                    handle
                        .read_serial_number_string(lang, &desc, STRING_TIMEOUT)
                        .ok(),
                    handle.read_product_string(lang, &desc, STRING_TIMEOUT).ok(),
                ),
                None => (None, None),
            }
        }
        Err(rusb::Error::NoDevice) => return None,
        Err(_) => (None, None),
    };
    let serial = match kind {
        Mode::Edl => product
            .as_deref()
            .and_then(edl_serial_from_product)
            .or(serial),
        Mode::Fastboot => serial,
    };
    Some(BusDevice {
        port_path: port_path_of(device),
        kind,
        vendor_id: desc.vendor_id(),
        product_id: desc.product_id(),
        serial,
        speed: speed_name(device.speed()).to_string(),
    })
}

fn snapshot_of(context: &Context) -> Result<Vec<BusDevice>, BusError> {
    let devices = context
        .devices()
        .map_err(|e| BusError::Other(format!("cannot list USB devices: {e}")))?;
    let mut out: Vec<BusDevice> = devices
        .iter()
        .filter_map(|d| classify(&d).and_then(|kind| describe(&d, kind)))
        .collect();
    out.sort_by(|a, b| a.port_path.cmp(&b.port_path));
    Ok(out)
}

struct MarkDirty(Arc<AtomicBool>);

impl Hotplug<Context> for MarkDirty {
    fn device_arrived(&mut self, _device: Device<Context>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn device_left(&mut self, _device: Device<Context>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl UsbBus for RusbBus {
    fn snapshot(&self) -> Result<Vec<BusDevice>, BusError> {
        snapshot_of(&self.context)
    }

    fn watch(&self) -> Result<Receiver<BusEvent>, BusError> {
        let (tx, rx) = mpsc::channel();
        let context = self.context.clone();
        let mut known = snapshot_of(&context)?;
        for device in &known {
            let _ = tx.send(BusEvent::Arrived(device.clone()));
        }
        let dirty = Arc::new(AtomicBool::new(false));
        let registration = if rusb::has_hotplug() {
            HotplugBuilder::new()
                .enumerate(false)
                .register(&context, Box::new(MarkDirty(dirty.clone())))
                .ok()
        } else {
            None
        };
        std::thread::Builder::new()
            .name("usb-watch".into())
            .spawn(move || {
                let hotplug = registration;
                let mut last_poll = Instant::now();
                loop {
                    if hotplug.is_some() {
                        let _ = context.handle_events(Some(Duration::from_millis(200)));
                    } else {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let due = last_poll.elapsed() >= POLL_INTERVAL;
                    let changed = dirty.swap(false, Ordering::SeqCst);
                    let poll_now = due && hotplug.is_none();
                    if !(changed || poll_now) {
                        continue;
                    }
                    last_poll = Instant::now();
                    let Ok(now) = snapshot_of(&context) else {
                        continue;
                    };
                    for event in diff(&known, &now) {
                        if tx.send(event).is_err() {
                            return; // nobody listens any more
                        }
                    }
                    known = now;
                }
            })
            .map_err(|e| BusError::Other(format!("cannot start the USB watcher: {e}")))?;
        Ok(rx)
    }

    fn open(&self, port_path: &str, kind: Mode) -> Result<Box<dyn Transport>, BusError> {
        let want = match kind {
            Mode::Fastboot => &FASTBOOT_INTERFACE,
            Mode::Edl => &EDL_INTERFACE,
        };
        UsbLink::open(&DeviceSelector::PortPath(port_path.to_string()), want)
            .map(|link| Box::new(link) as Box<dyn Transport>)
            .map_err(|e| match e {
                // Gone between the bus listing and the open (a pulled cable, a flapping hub
                // port): the unit's absence, not the station's fault.
                TransportError::Disconnected | TransportError::NotFound(_) => {
                    BusError::NotPresent {
                        port_path: port_path.to_string(),
                        kind,
                    }
                }
                other => BusError::Open {
                    port_path: port_path.to_string(),
                    kind,
                    reason: other.to_string(),
                },
            })
    }
}
