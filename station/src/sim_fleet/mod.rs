//! Simulated phones on the simulated USB bus: each phone is plugged into a port path in the
//! personality its mode calls for (fastboot or EDL), serves every link the station opens with
//! the protocol simulators, and carries out its lifecycle after every session: when a reboot
//! or power reset takes it off the bus it is unplugged and, if its lifecycle brings it back,
//! plugged again on the same port after the lifecycle's gap, as the new mode's personality —
//! as a real phone on a hub does.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocols::sim::edl::{self as sim_edl, EdlSimConfig};
use protocols::sim::fastboot::{FastbootConfig, FastbootDevice};
use protocols::sim::{BusPersonality, Phone, Presence};
use protocols::transport::memory::{self, LinkFaults};

pub mod rig;
pub mod scripted;

use crate::bus::sim::{Connector, SimBus, SimConnection};
use crate::bus::BusDevice;
use crate::mode::Mode;

/// Fastboot's and Qualcomm's USB ids, as the real devices enumerate.
const FASTBOOT_VID_PID: (u16, u16) = (0x18d1, 0x4ee0);
const EDL_VID_PID: (u16, u16) = (0x05c6, 0x9008);

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
    /// Link faults (bandwidth, a cut after so many bytes) of the links opened from now on.
    link_faults: Mutex<LinkFaults>,
    /// The phone an operator puts on the port while this one is off the bus for its next
    /// reboot (this one then never comes back).
    swapped_in: Mutex<Option<SimUnit>>,
}

/// How the station's bus names a phone's USB personality.
pub fn kind_of(personality: BusPersonality) -> Mode {
    match personality {
        BusPersonality::Fastboot => Mode::Fastboot,
        BusPersonality::Edl => Mode::Edl,
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
        if let Some(personality) = self.inner.phone.mode().personality() {
            let kind = kind_of(personality);
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

    /// The phone waiting to take this one's place at its next reboot.
    pub fn swapped_in(&self) -> Option<SimUnit> {
        self.inner
            .swapped_in
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Pull the cable.
    pub fn unplug(&self) {
        self.inner.bus.unplug(&self.inner.port_path);
    }

    /// How the bus shows this phone in `kind`: the fastboot serial as iSerial; Qualcomm's
    /// `…_SN:XXXXXXXX` product string for EDL, which carries no serial descriptor of its own.
    pub fn device(&self, kind: Mode) -> BusDevice {
        let identity = self.inner.phone.identity();
        let ((vendor_id, product_id), serial) = match kind {
            Mode::Fastboot => (FASTBOOT_VID_PID, identity.serial),
            Mode::Edl => (
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

    fn connector(&self, kind: Mode) -> Connector {
        let unit = self.clone();
        Box::new(move || {
            let (host, mut device, control) = memory::pair(&unit.inner.port_path);
            control.arm(&unit.link_faults());
            let serving = unit.clone();
            std::thread::Builder::new()
                .name(format!("sim-{}-{kind}", unit.inner.port_path))
                .spawn(move || {
                    match kind {
                        Mode::Fastboot => serving.serve_fastboot(&mut device),
                        Mode::Edl => serving.serve_edl(&mut device),
                    }
                    crate::metrics::add_phone_thread_cpu();
                })
                .map_err(|e| format!("cannot start the simulated phone: {e}"))?;
            Ok(SimConnection {
                link: Box::new(host),
                control,
            })
        })
    }

    fn serve_fastboot(&self, link: &mut memory::MemoryLink) {
        self.inner
            .fastboot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .serve(link);
        self.carry_out_transition();
    }

    fn serve_edl(&self, link: &mut memory::MemoryLink) {
        if let Err(e) = sim_edl::serve(link, &self.inner.phone, &self.inner.edl) {
            tracing::debug!(port = %self.inner.port_path, "simulated EDL session ended: {e}");
        }
        self.carry_out_transition();
    }

    /// What the phone's lifecycle decided when the session ended: leave the bus, and come back
    /// on the same port after the gap when it says so.
    fn carry_out_transition(&self) {
        let Some(transition) = self.inner.phone.take_transition() else {
            return;
        };
        match transition.presence {
            Presence::Stays => {}
            Presence::Returns { after, .. } => self.leave_bus(after, true),
            Presence::Leaves => self.leave_bus(self.inner.phone.lifecycle().reboot_gap, false),
        }
    }

    /// The phone leaves the bus; after `gap` it comes back if `returns`, and a phone swapped
    /// in meanwhile arrives in its place either way.
    fn leave_bus(&self, gap: Duration, returns: bool) {
        let inner = &self.inner;
        inner.bus.unplug(&inner.port_path);
        let swapped = inner
            .swapped_in
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let arriving = match swapped {
            Some(other) => other,
            None if returns => self.clone(),
            None => return,
        };
        inner.bus.schedule(gap, move |_| arriving.plug());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::Receiver;

    use protocols::sahara::host::SaharaHost;
    use protocols::sahara::images::SaharaImages;
    use protocols::sim::PhoneMode;
    use protocols::transport::Transport;

    use super::*;
    use crate::bus::{BusEvent, UsbBus};

    const T: Duration = Duration::from_secs(5);
    /// Long enough for a phone that comes back to have come back.
    const SETTLE: Duration = Duration::from_millis(400);

    fn unit(bus: &SimBus, mode: PhoneMode, boots_to: PhoneMode) -> SimUnit {
        let phone = Phone::builder()
            .slotted_partition("boot", 1 << 20)
            .mode(mode)
            .boots_to(boots_to)
            .build()
            .unwrap();
        SimUnit::new(
            bus,
            "1-1",
            phone,
            FastbootConfig::default(),
            EdlSimConfig::default(),
        )
    }

    /// Send one fastboot command on a fresh link and return the answer.
    fn fastboot(bus: &SimBus, command: &str) -> String {
        let mut link = bus.open("1-1", Mode::Fastboot).unwrap();
        link.write(command.as_bytes(), T).unwrap();
        let mut buf = [0u8; 256];
        let n = link.read_packet(&mut buf, T).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Send a reboot command: the phone may leave the bus before its OKAY reaches the host (an
    /// unplug cuts the link with what was in flight), as a real one may.
    fn reboot(bus: &SimBus, command: &str) {
        let mut link = bus.open("1-1", Mode::Fastboot).unwrap();
        link.write(command.as_bytes(), T).unwrap();
        let mut buf = [0u8; 256];
        match link.read_packet(&mut buf, T) {
            Ok(n) => assert_eq!(&buf[..n], b"OKAY"),
            Err(e) => assert!(e.is_disconnect(), "{e}"),
        }
    }

    /// Events after the initial arrival, within `SETTLE`.
    fn later_events(events: &Receiver<BusEvent>) -> Vec<BusEvent> {
        std::thread::sleep(SETTLE);
        events.try_iter().collect()
    }

    fn left(kind: Mode) -> BusEvent {
        BusEvent::Left {
            port_path: "1-1".into(),
            kind,
        }
    }

    #[test]
    fn reboot_fastboot_comes_back_as_fastbootd_on_the_same_port() {
        let bus = SimBus::new();
        let u = unit(&bus, PhoneMode::Bootloader, PhoneMode::Android);
        u.plug();
        let events = bus.watch().unwrap();
        let _ = events.recv_timeout(T).unwrap();
        assert_eq!(fastboot(&bus, "getvar:is-userspace"), "OKAYno");
        reboot(&bus, "reboot-fastboot");
        let seen = later_events(&events);
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0], left(Mode::Fastboot));
        assert!(matches!(&seen[1], BusEvent::Arrived(d) if d.kind == Mode::Fastboot));
        assert_eq!(fastboot(&bus, "getvar:is-userspace"), "OKAYyes");
    }

    #[test]
    fn a_phone_that_boots_android_leaves_for_good() {
        let bus = SimBus::new();
        let u = unit(&bus, PhoneMode::Bootloader, PhoneMode::Android);
        u.plug();
        let events = bus.watch().unwrap();
        let _ = events.recv_timeout(T).unwrap();
        reboot(&bus, "reboot");
        assert_eq!(later_events(&events), [left(Mode::Fastboot)]);
        assert_eq!(u.phone().mode(), PhoneMode::Android);
    }

    /// The ROM answers END_OF_IMAGE with an error and waits in Sahara, as a real PBL does
    /// (qdl and qdlrs stop there): no re-enumeration, and the next host finds it as it was.
    #[test]
    fn a_refused_programmer_leaves_the_phone_waiting_in_edl_on_the_bus() {
        let dir = tempfile::tempdir().unwrap();
        let stranger = dir.path().join("unsigned.elf");
        std::fs::write(
            &stranger,
            protocols::sim::sahara_elf::programmer_elf(b"signed by nobody"),
        )
        .unwrap();
        let bus = SimBus::new();
        let u = unit(&bus, PhoneMode::Edl, PhoneMode::Bootloader);
        u.plug();
        let events = bus.watch().unwrap();
        let _ = events.recv_timeout(T).unwrap();
        let mut link = bus.open("1-1", Mode::Edl).unwrap();
        let err = SaharaHost::new(link.as_mut())
            .upload(
                &SaharaImages::programmer(&stranger),
                &protocols::progress::NoProgress,
            )
            .unwrap_err();
        assert!(err.to_string().contains("unsigned.elf"), "{err}");
        drop(link);
        assert_eq!(later_events(&events), []);
        assert_eq!(u.phone().mode(), PhoneMode::Edl);
        assert!(bus.is_attached("1-1", Mode::Edl));
    }
}
