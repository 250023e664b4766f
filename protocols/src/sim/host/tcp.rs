//! Fastboot TCP as a host of a simulated phone: the AOSP client connects once per command, so
//! the host serves one connection after another, and a phone that reboots is away for its
//! lifecycle's gap (clients retry their connection meanwhile, as `fastboot reboot fastboot`
//! does after a second's pause).

use std::net::TcpListener;
use std::ops::ControlFlow;
use std::time::Duration;

use crate::sim::fastboot::{FastbootDevice, SessionEnd};
use crate::sim::lifecycle::{BusPersonality, Presence};
use crate::transport::tcp::TcpLink;
use crate::transport::Transport;

impl FastbootDevice {
    /// Accept fastboot TCP connections one after another and serve each. After each session
    /// the phone's transition is carried out: a reboot into a fastboot mode keeps the listener
    /// (after the reboot gap, connections wait in its backlog); a phone that leaves fastboot
    /// (Android, recovery, EDL, off) ends serving — `phone().mode()` says where it went.
    /// `after_session` sees how each session ended and may stop first. Handshake failures are
    /// skipped.
    pub fn serve_tcp(
        &mut self,
        listener: &TcpListener,
        mut after_session: impl FnMut(&SessionEnd) -> ControlFlow<()>,
    ) {
        loop {
            let mut link = match TcpLink::accept(listener, Duration::from_secs(5)) {
                Ok(link) => link,
                Err(e) => {
                    tracing::warn!("fastboot TCP accept/handshake failed: {e}");
                    // A listener that keeps failing (e.g. out of descriptors) must not spin.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let end = self.serve(&mut link);
            tracing::info!(peer = %link.describe(), "fastboot session ended: {end:?}");
            drop(link);
            if after_session(&end).is_break() {
                return;
            }
            let Some(transition) = self.phone().take_transition() else {
                continue;
            };
            match transition.presence {
                Presence::Stays => {}
                Presence::Returns {
                    personality: BusPersonality::Fastboot,
                    after,
                } => std::thread::sleep(after),
                Presence::Returns { .. } | Presence::Leaves => {
                    tracing::info!(mode = ?transition.mode, "the phone left fastboot");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::ops::ControlFlow;
    use std::time::Duration;

    use crate::sim::{FastbootConfig, FastbootDevice, Phone, PhoneMode};
    use crate::transport::tcp::TcpLink;
    use crate::transport::Transport;

    const T: Duration = Duration::from_secs(5);

    /// One fastboot command on its own connection, as the AOSP client sends it.
    fn command(addr: &str, text: &str) -> String {
        let mut link = TcpLink::connect(addr, T).unwrap();
        link.write(text.as_bytes(), T).unwrap();
        let mut buf = [0u8; 256];
        let n = link.read_packet(&mut buf, T).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn the_listener_follows_the_phone_through_fastbootd_and_ends_when_it_leaves_fastboot() {
        let phone = Phone::builder()
            .slotted_partition("boot", 1 << 20)
            .boots_to(PhoneMode::Bootloader)
            .build()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut device = FastbootDevice::new(phone.clone(), FastbootConfig::default());
        let served = std::thread::spawn(move || {
            device.serve_tcp(&listener, |_| ControlFlow::Continue(()));
        });
        assert_eq!(command(&addr, "getvar:is-userspace"), "OKAYno");
        assert_eq!(command(&addr, "reboot-fastboot"), "OKAY");
        assert_eq!(command(&addr, "getvar:is-userspace"), "OKAYyes");
        // A normal boot of this factory build ends in the bootloader again.
        assert_eq!(command(&addr, "reboot"), "OKAY");
        assert_eq!(command(&addr, "getvar:is-userspace"), "OKAYno");
        // EDL is out of fastboot TCP's reach: the host stops serving.
        assert_eq!(command(&addr, "oem edl"), "OKAY");
        served.join().unwrap();
        assert_eq!(phone.mode(), PhoneMode::Edl);
    }
}
