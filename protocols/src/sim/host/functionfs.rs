//! Simulated phones served on FunctionFS: the same device logic as in memory or on a pty, on
//! the device end of a real USB link. The phone's lifecycle decides every re-enumeration; this
//! host unbinds and re-binds the gadget, as the other personality when the mode calls for it.

use std::path::Path;

use crate::sim::edl::{self, EdlOutcome, EdlSimConfig, EdlSimError};
use crate::sim::firehose::FirehoseOutcome;
use crate::sim::lifecycle::{BusPersonality, Presence, Transition};
use crate::sim::{FastbootConfig, FastbootDevice, Phone, SessionEnd};
use crate::transport::functionfs::{
    personality, serve, FunctionFsError, Gadget, Next, Personality,
};
use crate::transport::paced::Paced;
use crate::transport::Transport;

/// How `phone` looks on USB as `which`: fastboot with its serial, or EDL with its chip serial
/// in the product string.
pub fn usb_personality(phone: &Phone, which: BusPersonality) -> Personality {
    let id = phone.identity();
    match which {
        BusPersonality::Fastboot => personality::fastboot(&id.serial, &id.product),
        BusPersonality::Edl => personality::edl(id.chip_serial),
    }
}

/// What the gadget does for a transition out of a session served as `current`; `None` when
/// the phone stays as it was.
fn carry_out(phone: &Phone, transition: Transition, current: BusPersonality) -> Option<Next> {
    match transition.presence {
        Presence::Stays => None,
        Presence::Returns { personality, after } if personality == current => {
            Some(Next::Reenumerate { gone_for: after })
        }
        Presence::Returns { personality, after } => Some(Next::Become {
            personality: usb_personality(phone, personality),
            gone_for: after,
        }),
        Presence::Leaves => Some(Next::Stop),
    }
}

/// Serve EDL boots of `phone` on one host session until the phone leaves EDL (as its
/// lifecycle says) or the host goes.
fn serve_edl_session(link: &mut dyn Transport, phone: &Phone, config: &EdlSimConfig) -> Next {
    loop {
        let outcome = edl::serve(link, phone, config);
        tracing::info!(?outcome, link = %link.describe(), "EDL boot ended");
        let transition = phone.take_transition();
        if let Some(next) = transition.and_then(|t| carry_out(phone, t, BusPersonality::Edl)) {
            return next;
        }
        match outcome {
            Ok(EdlOutcome::HostGone) | Ok(EdlOutcome::Programmer(FirehoseOutcome::HostGone)) => {
                return Next::Continue
            }
            // The host stopped reading, or the ROM refused its programmer and waits: boot the
            // ROM again on this session, which queues a fresh HELLO for a host that comes back.
            Ok(_) => {}
            Err(EdlSimError::Sahara(e)) => {
                tracing::warn!(error = %e, "EDL session failed");
                return Next::Continue;
            }
            Err(EdlSimError::Firehose(e)) => {
                tracing::warn!(error = %e, "EDL session failed");
                return Next::Continue;
            }
        }
    }
}

/// Serve fastboot commands of one host session until the phone reboots or the host goes.
fn serve_fastboot_session(link: &mut dyn Transport, device: &mut FastbootDevice) -> Next {
    loop {
        let end = device.serve(link);
        tracing::info!(?end, link = %link.describe(), "fastboot session ended");
        let phone = device.phone().clone();
        let transition = phone.take_transition();
        if let Some(next) = transition.and_then(|t| carry_out(&phone, t, BusPersonality::Fastboot))
        {
            return next;
        }
        match end {
            // A data phase that timed out or failed: the device answers the next command.
            SessionEnd::LinkError(e) if !e.is_disconnect() => {}
            _ => return Next::Continue,
        }
    }
}

/// How a simulated phone behaves on USB (its lifecycle, on the phone, says where it goes).
pub struct PhoneOnUsb {
    pub phone: Phone,
    pub edl: EdlSimConfig,
    pub fastboot: FastbootConfig,
    /// Take in host data at most this fast (bytes per second): a phone writing to slow flash.
    /// `None` reads as fast as the bus delivers.
    pub ingress_bytes_per_second: Option<u64>,
}

/// Serve `setup.phone` on the FunctionFS instance at `dir` in the personality of its mode,
/// re-enumerating on `gadget` whenever its lifecycle says so. Returns the mode the phone left
/// the bus in (off, Android, recovery).
pub fn serve_phone(
    dir: &Path,
    gadget: Option<&Gadget>,
    setup: PhoneOnUsb,
) -> Result<crate::sim::PhoneMode, FunctionFsError> {
    let PhoneOnUsb {
        phone,
        edl,
        fastboot,
        ingress_bytes_per_second,
    } = setup;
    let mut device = FastbootDevice::new(phone.clone(), fastboot);
    let first = phone
        .mode()
        .personality()
        .unwrap_or(BusPersonality::Fastboot);
    let first = usb_personality(&phone, first);
    if let Some(g) = gadget {
        g.set_identity(&first.identity)
            .map_err(|source| FunctionFsError::Gadget {
                gadget: g.dir().to_path_buf(),
                source,
            })?;
    }
    serve(dir, &first, gadget, |link, _session| {
        let mut paced;
        let link: &mut dyn Transport = match ingress_bytes_per_second {
            Some(rate) => {
                paced = Paced::new(link, rate);
                &mut paced
            }
            None => link,
        };
        if phone.mode().personality() == Some(BusPersonality::Edl) {
            serve_edl_session(link, &phone, &edl)
        } else {
            serve_fastboot_session(link, &mut device)
        }
    })?;
    Ok(phone.mode())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sim::{Ending, PhoneMode};

    #[test]
    fn transitions_become_gadget_steps() {
        let phone = Phone::builder()
            .slotted_partition("boot", 1 << 20)
            .mode(PhoneMode::Edl)
            .boots_to(PhoneMode::Bootloader)
            .build()
            .unwrap();
        let gap = phone.lifecycle().reboot_gap;
        let refused = phone.end_session(Ending::ProgrammerRefused);
        assert_eq!(carry_out(&phone, refused, BusPersonality::Edl), None);
        let rom_reset = phone.end_session(Ending::RomReset);
        assert_eq!(
            carry_out(&phone, rom_reset, BusPersonality::Edl),
            Some(Next::Reenumerate { gone_for: gap })
        );
        let reset = phone.end_session(Ending::PowerReset);
        assert_eq!(
            carry_out(&phone, reset, BusPersonality::Edl),
            Some(Next::Become {
                personality: usb_personality(&phone, BusPersonality::Fastboot),
                gone_for: gap
            })
        );
        let off = phone.end_session(Ending::PowerOff);
        assert_eq!(
            carry_out(&phone, off, BusPersonality::Edl),
            Some(Next::Stop)
        );
        assert!(gap > Duration::ZERO);
    }
}
