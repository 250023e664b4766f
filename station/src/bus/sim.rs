//! A simulated USB bus: tests and `flashgate run --sim` plug simulated phones into chosen port
//! paths, unplug them, and re-enumerate them (e.g. EDL → fastboot) with scripted timing.
//!
//! Each attached device has a connector that makes a new link to it (typically: start a
//! simulated phone's personality on the device end of an in-memory link). Unplugging cuts
//! every link opened to that device, like pulling the cable.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocols::transport::memory::LinkControl;
use protocols::transport::Transport;

use super::{BusDevice, BusError, BusEvent, UsbBus};
use crate::mode::Mode;

/// A fresh link to a simulated device, and the control that unplugs it.
pub struct SimConnection {
    pub link: Box<dyn Transport>,
    pub control: LinkControl,
}

/// Makes a new link to one attached simulated device; called once per `open`.
pub type Connector = Box<dyn FnMut() -> Result<SimConnection, String> + Send>;

struct Attached {
    device: BusDevice,
    connector: Connector,
    open_links: Vec<LinkControl>,
}

#[derive(Default)]
struct Inner {
    attached: BTreeMap<String, Attached>,
    watchers: Vec<Sender<BusEvent>>,
}

#[derive(Default, Clone)]
pub struct SimBus {
    inner: Arc<Mutex<Inner>>,
}

impl SimBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn broadcast(inner: &mut Inner, event: BusEvent) {
        inner.watchers.retain(|w| w.send(event.clone()).is_ok());
    }

    fn detach(inner: &mut Inner, port_path: &str) -> bool {
        let Some(old) = inner.attached.remove(port_path) else {
            return false;
        };
        for control in &old.open_links {
            control.cut();
        }
        Self::broadcast(
            inner,
            BusEvent::Left {
                port_path: old.device.port_path.clone(),
                kind: old.device.kind,
            },
        );
        true
    }

    /// Attach `device` at `device.port_path` (replacing whatever was there).
    pub fn plug(&self, device: BusDevice, connector: Connector) {
        let mut inner = self.lock();
        let port = device.port_path.clone();
        Self::detach(&mut inner, &port);
        inner.attached.insert(
            port,
            Attached {
                device: device.clone(),
                connector,
                open_links: Vec::new(),
            },
        );
        Self::broadcast(&mut inner, BusEvent::Arrived(device));
    }

    /// Pull the cable: links to the device fail with `Disconnected`. False if nothing was there.
    pub fn unplug(&self, port_path: &str) -> bool {
        Self::detach(&mut self.lock(), port_path)
    }

    /// Whether a device of `kind` is attached at `port_path` now.
    pub fn is_attached(&self, port_path: &str, kind: Mode) -> bool {
        self.lock()
            .attached
            .get(port_path)
            .is_some_and(|a| a.device.kind == kind)
    }

    /// Run `action` on this bus after `delay`, on a thread of its own (scripted timing).
    pub fn schedule(
        &self,
        delay: Duration,
        action: impl FnOnce(&SimBus) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let bus = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            action(&bus);
        })
    }

    /// Re-enumeration: the device leaves and, after `gap`, comes back on the same port as
    /// `device` (possibly another personality, e.g. EDL → fastboot after a power reset).
    pub fn re_enumerate(
        &self,
        port_path: &str,
        gap: Duration,
        device: BusDevice,
        connector: Connector,
    ) -> std::thread::JoinHandle<()> {
        self.unplug(port_path);
        self.schedule(gap, move |bus| bus.plug(device, connector))
    }
}

impl UsbBus for SimBus {
    fn snapshot(&self) -> Result<Vec<BusDevice>, BusError> {
        Ok(self
            .lock()
            .attached
            .values()
            .map(|a| a.device.clone())
            .collect())
    }

    fn watch(&self) -> Result<Receiver<BusEvent>, BusError> {
        let (tx, rx) = mpsc::channel();
        let mut inner = self.lock();
        for attached in inner.attached.values() {
            let _ = tx.send(BusEvent::Arrived(attached.device.clone()));
        }
        inner.watchers.push(tx);
        Ok(rx)
    }

    fn open(&self, port_path: &str, kind: Mode) -> Result<Box<dyn Transport>, BusError> {
        let mut inner = self.lock();
        let attached = inner
            .attached
            .get_mut(port_path)
            .filter(|a| a.device.kind == kind)
            .ok_or_else(|| BusError::NotPresent {
                port_path: port_path.to_string(),
                kind,
            })?;
        let connection = (attached.connector)().map_err(|reason| BusError::Open {
            port_path: port_path.to_string(),
            kind,
            reason,
        })?;
        attached.open_links.retain(|c| !c.is_cut());
        attached.open_links.push(connection.control);
        Ok(connection.link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocols::transport::memory;

    const T: Duration = Duration::from_millis(500);

    fn echo_device(port: &str, kind: Mode) -> (BusDevice, Connector) {
        let device = BusDevice {
            port_path: port.into(),
            kind,
            vendor_id: 0x18d1,
            product_id: 0x4ee0,
            serial: Some(format!("SIM-{port}")),
            speed: "high".into(),
        };
        let connector: Connector = Box::new(|| {
            let (host, mut dev, control) = memory::pair("echo");
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n) = dev.read_packet(&mut buf, Duration::from_secs(5)) {
                    if dev.write(&buf[..n], Duration::from_secs(5)).is_err() {
                        break;
                    }
                }
            });
            Ok(SimConnection {
                link: Box::new(host),
                control,
            })
        });
        (device, connector)
    }

    #[test]
    fn watchers_see_existing_devices_then_changes() {
        let bus = SimBus::new();
        let (d1, c1) = echo_device("1-1", Mode::Fastboot);
        bus.plug(d1.clone(), c1);
        let events = bus.watch().unwrap();
        assert_eq!(events.recv_timeout(T).unwrap(), BusEvent::Arrived(d1));
        assert!(bus.unplug("1-1"));
        assert_eq!(
            events.recv_timeout(T).unwrap(),
            BusEvent::Left {
                port_path: "1-1".into(),
                kind: Mode::Fastboot
            }
        );
        assert!(!bus.unplug("1-1"));
    }

    #[test]
    fn open_links_die_on_unplug() {
        let bus = SimBus::new();
        let (d, c) = echo_device("1-2", Mode::Fastboot);
        bus.plug(d, c);
        let mut link = bus.open("1-2", Mode::Fastboot).unwrap();
        link.write(b"ping", T).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(link.read_packet(&mut buf, T).unwrap(), 4);
        bus.unplug("1-2");
        assert!(link.write(b"ping", T).unwrap_err().is_disconnect());
        assert!(matches!(
            bus.open("1-2", Mode::Fastboot),
            Err(BusError::NotPresent { .. })
        ));
    }

    #[test]
    fn re_enumeration_changes_kind_on_the_same_port() {
        let bus = SimBus::new();
        let (edl, c) = echo_device("1-3", Mode::Edl);
        bus.plug(edl, c);
        let events = bus.watch().unwrap();
        let _ = events.recv_timeout(T).unwrap();
        let (fb, c) = echo_device("1-3", Mode::Fastboot);
        bus.re_enumerate("1-3", Duration::from_millis(20), fb.clone(), c)
            .join()
            .unwrap();
        assert!(matches!(
            events.recv_timeout(T).unwrap(),
            BusEvent::Left {
                kind: Mode::Edl,
                ..
            }
        ));
        assert_eq!(events.recv_timeout(T).unwrap(), BusEvent::Arrived(fb));
        assert!(bus.is_attached("1-3", Mode::Fastboot));
        assert!(bus.open("1-3", Mode::Edl).is_err());
    }
}
