//! Simulated phones on the simulated USB bus: each phone is plugged into a port path in the
//! personality its mode calls for (fastboot or EDL), serves every link the station opens with
//! the protocol simulators, and re-enumerates on the same port when a reboot or power reset
//! moves it to another mode — unplugged, a short pause, plugged again as the new personality —
//! as a real phone on a hub does.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocols::sim::edl::{self as sim_edl, EdlOutcome, EdlSimConfig};
use protocols::sim::fastboot::{FastbootConfig, FastbootDevice, SessionEnd};
use protocols::sim::firehose::FirehoseOutcome;
use protocols::sim::{Phone, PhoneMode};
use protocols::transport::memory::{self, LinkFaults};

use crate::bus::sim::{Connector, SimBus, SimConnection};
use crate::bus::{BusDevice, DeviceKind};

/// Fastboot's and Qualcomm's USB ids, as the real devices enumerate.
const FASTBOOT_VID_PID: (u16, u16) = (0x18d1, 0x4ee0);
const EDL_VID_PID: (u16, u16) = (0x05c6, 0x9008);

/// How long a rebooting phone is gone from the bus.
pub const DEFAULT_REENUMERATION_GAP: Duration = Duration::from_millis(50);

/// One simulated phone attached to a port of a [`SimBus`].
#[derive(Clone)]
pub struct SimUnit {
    inner: Arc<Inner>,
}

struct Inner {
    bus: SimBus,
    port_path: String,
    phone: Phone,
    /// The bootloader keeps its download buffer and logs across the host's connections.
    fastboot: Mutex<FastbootDevice>,
    edl: EdlSimConfig,
    gap: Duration,
    /// Link faults (bandwidth, a cut after so many bytes) of the links opened from now on.
    link_faults: Mutex<LinkFaults>,
    /// The phone an operator puts on the port while this one is off the bus for its next
    /// reboot (this one then never comes back).
    swapped_in: Mutex<Option<SimUnit>>,
}

/// The bus personality of a phone mode; `None` when the phone is off the bus (Android, off).
pub fn kind_of(mode: PhoneMode) -> Option<DeviceKind> {
    match mode {
        PhoneMode::Bootloader | PhoneMode::Fastbootd => Some(DeviceKind::Fastboot),
        PhoneMode::Edl => Some(DeviceKind::Edl),
        PhoneMode::Recovery | PhoneMode::Android | PhoneMode::Off => None,
    }
}

impl SimUnit {
    pub fn new(
        bus: &SimBus,
        port_path: &str,
        phone: Phone,
        fastboot: FastbootConfig,
        edl: EdlSimConfig,
    ) -> Self {
        SimUnit {
            inner: Arc::new(Inner {
                bus: bus.clone(),
                port_path: port_path.to_string(),
                fastboot: Mutex::new(FastbootDevice::new(phone.clone(), fastboot)),
                phone,
                edl,
                gap: DEFAULT_REENUMERATION_GAP,
                link_faults: Mutex::new(LinkFaults::default()),
                swapped_in: Mutex::new(None),
            }),
        }
    }

    pub fn phone(&self) -> &Phone {
        &self.inner.phone
    }

    pub fn port_path(&self) -> &str {
        &self.inner.port_path
    }

    /// Attach the phone in the personality of its current mode (nothing if it is off the bus).
    pub fn plug(&self) {
        if let Some(kind) = kind_of(self.inner.phone.mode()) {
            self.inner.bus.plug(self.device(kind), self.connector(kind));
        }
    }

    /// Limit the bandwidth of every link opened to this phone from now on (a slow hub, a bad
    /// cable); tests use it to keep a unit mid-transfer long enough to pull its cable.
    pub fn set_link_bytes_per_second(&self, rate: Option<u64>) {
        self.set_link_faults(LinkFaults {
            bytes_per_second: rate,
            ..self.link_faults()
        });
    }

    /// Arm these link faults on every link opened to this phone from now on (a bad cable: it
    /// drops after so many bytes of host data, every time).
    pub fn set_link_faults(&self, faults: LinkFaults) {
        *self
            .inner
            .link_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = faults;
    }

    pub fn link_faults(&self) -> LinkFaults {
        *self
            .inner
            .link_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Change this phone's bootloader behaviour from its next command on (e.g. arm a
    /// `set_active` that is acknowledged but not honoured).
    pub fn configure_fastboot(&self, edit: impl FnOnce(&mut FastbootConfig)) {
        edit(
            self.inner
                .fastboot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .config_mut(),
        );
    }

    /// An operator swaps phones during this phone's next reboot: it leaves the bus as usual and
    /// `other` (a phone on the same port path) arrives in its place.
    pub fn swap_on_next_reboot(&self, other: SimUnit) {
        *self
            .inner
            .swapped_in
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(other);
    }

    /// Pull the cable.
    pub fn unplug(&self) {
        self.inner.bus.unplug(&self.inner.port_path);
    }

    /// How the bus shows this phone in `kind`: the fastboot serial as iSerial; Qualcomm's
    /// `…_SN:XXXXXXXX` product string for EDL, which carries no serial descriptor of its own.
    pub fn device(&self, kind: DeviceKind) -> BusDevice {
        let identity = self.inner.phone.identity();
        let ((vendor_id, product_id), serial) = match kind {
            DeviceKind::Fastboot => (FASTBOOT_VID_PID, identity.serial),
            DeviceKind::Edl => (
                EDL_VID_PID,
                crate::bus::edl_serial_text(identity.chip_serial),
            ),
        };
        BusDevice {
            port_path: self.inner.port_path.clone(),
            kind,
            vendor_id,
            product_id,
            serial: Some(serial),
            speed: "high".into(),
        }
    }

    fn connector(&self, kind: DeviceKind) -> Connector {
        let unit = self.clone();
        Box::new(move || {
            let (host, mut device, control) = memory::pair(&unit.inner.port_path);
            control.arm(&unit.link_faults());
            let serving = unit.clone();
            std::thread::Builder::new()
                .name(format!("sim-{}-{kind}", unit.inner.port_path))
                .spawn(move || match kind {
                    DeviceKind::Fastboot => serving.serve_fastboot(&mut device),
                    DeviceKind::Edl => serving.serve_edl(&mut device),
                })
                .map_err(|e| format!("cannot start the simulated phone: {e}"))?;
            Ok(SimConnection {
                link: Box::new(host),
                control,
            })
        })
    }

    fn serve_fastboot(&self, link: &mut memory::MemoryLink) {
        let end = self
            .inner
            .fastboot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .serve(link);
        match end {
            SessionEnd::Reboot(_) | SessionEnd::Continue | SessionEnd::BootDownloaded => {
                self.re_enumerate()
            }
            SessionEnd::Disconnected | SessionEnd::LinkError(_) => {}
        }
    }

    fn serve_edl(&self, link: &mut memory::MemoryLink) {
        match sim_edl::serve(link, &self.inner.phone, &self.inner.edl) {
            Ok(EdlOutcome::Programmer(
                FirehoseOutcome::Reset | FirehoseOutcome::ResetToEdl | FirehoseOutcome::PowerOff,
            ))
            | Ok(EdlOutcome::RomReset) => self.re_enumerate(),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(port = %self.inner.port_path, "simulated EDL session ended: {e}")
            }
        }
    }

    /// The phone left the bus for a reboot; it comes back on the same port in its new mode.
    fn re_enumerate(&self) {
        let inner = &self.inner;
        inner.bus.unplug(&inner.port_path);
        let unit = inner
            .swapped_in
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| self.clone());
        inner.bus.schedule(inner.gap, move |_| unit.plug());
    }
}
