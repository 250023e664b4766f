//! Simulated phones served on FunctionFS: the same device logic as in memory or on a pty, on
//! the device end of a real USB link, with re-enumeration modelled on the gadget.

use std::path::Path;

use super::{personality, serve, FunctionFsError, Gadget, Next, Personality};
use crate::sim::edl::{self, EdlOutcome, EdlSimConfig, EdlSimError};
use crate::sim::firehose::FirehoseOutcome;
use crate::sim::{FastbootConfig, FastbootDevice, Phone, PhoneMode, SessionEnd};
use crate::transport::paced::Paced;
use crate::transport::Transport;

/// The EDL personality of `phone` (its chip serial in the product string).
pub fn edl_personality(phone: &Phone) -> Personality {
    personality::edl(phone.identity().chip_serial)
}

/// The bootloader-fastboot personality of `phone`.
pub fn fastboot_personality(phone: &Phone) -> Personality {
    let id = phone.identity();
    personality::fastboot(&id.serial, &id.product)
}

/// Serve EDL boots of `phone` on one host session until the phone leaves EDL or the host goes.
/// `after_reset` decides what the bus sees when the programmer resets the phone (its mode is
/// then the programmer's `after_reset`, normally the bootloader): re-enumerate as EDL again,
/// become a fastboot device, or leave.
fn serve_edl_session(
    link: &mut dyn Transport,
    phone: &Phone,
    config: &EdlSimConfig,
    after_reset: &mut dyn FnMut(&Phone) -> Next,
) -> Next {
    loop {
        let outcome = edl::serve(link, phone, config);
        tracing::info!(?outcome, link = %link.describe(), "EDL boot ended");
        match outcome {
            // The host stopped reading (it may come back on the same session): boot again,
            // which queues a fresh HELLO.
            Ok(EdlOutcome::HostSilent) | Ok(EdlOutcome::Programmer(FirehoseOutcome::Idle)) => {}
            Ok(EdlOutcome::HostGone) | Ok(EdlOutcome::Programmer(FirehoseOutcome::HostGone)) => {
                return Next::Continue
            }
            // A ROM reset, a refused programmer (after the host reset it) and reset_to_edl all
            // reboot into the ROM: the phone drops off the bus and comes back in EDL.
            Ok(EdlOutcome::RomReset)
            | Ok(EdlOutcome::ProgrammerRejected { .. })
            | Ok(EdlOutcome::Programmer(FirehoseOutcome::ResetToEdl)) => return Next::Reenumerate,
            Ok(EdlOutcome::Programmer(FirehoseOutcome::Reset)) => return after_reset(phone),
            Ok(EdlOutcome::Programmer(FirehoseOutcome::PowerOff)) => return Next::Stop,
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
        let phone = device.phone();
        match end {
            SessionEnd::Disconnected => return Next::Continue,
            SessionEnd::LinkError(e) if e.is_disconnect() => return Next::Continue,
            // A data phase that timed out or failed: the device answers the next command.
            SessionEnd::LinkError(_) => {}
            SessionEnd::Reboot(_) | SessionEnd::Continue | SessionEnd::BootDownloaded => {
                return match phone.mode() {
                    PhoneMode::Edl => Next::Become(edl_personality(phone)),
                    PhoneMode::Bootloader | PhoneMode::Fastbootd => Next::Reenumerate,
                    // Android, recovery, off: gone from the station's bus. A simulator has no
                    // one to hold the power key: it comes back in the bootloader, as the TCP
                    // simulator does.
                    _ => {
                        phone.set_mode(PhoneMode::Bootloader);
                        Next::Reenumerate
                    }
                };
            }
        }
    }
}

/// How a simulated phone behaves on USB.
pub struct PhoneOnUsb {
    pub phone: Phone,
    pub edl: EdlSimConfig,
    pub fastboot: FastbootConfig,
    /// After a Firehose `power reset` the phone boots on (into the programmer's
    /// `after_reset` mode, the bootloader by default) and re-enumerates as a fastboot device;
    /// `false` keeps it in EDL (a phone on a deep-flash cable), so EDL commands can repeat.
    pub edl_reset_leaves_edl: bool,
    /// Take in host data at most this fast (bytes per second): a phone writing to slow flash.
    /// `None` reads as fast as the bus delivers.
    pub ingress_bytes_per_second: Option<u64>,
}

/// Serve `setup.phone` on the FunctionFS instance at `dir` in the personality of its mode
/// (EDL, or fastboot for the bootloader and fastbootd), re-enumerating on `gadget` whenever it
/// reboots — as the other personality when the mode changes (`oem edl`, EDL reset → fastboot).
/// Returns when the phone powers off.
pub fn serve_phone(
    dir: &Path,
    gadget: Option<&Gadget>,
    setup: PhoneOnUsb,
) -> Result<(), FunctionFsError> {
    let PhoneOnUsb {
        phone,
        edl,
        fastboot,
        edl_reset_leaves_edl,
        ingress_bytes_per_second,
    } = setup;
    let mut device = FastbootDevice::new(phone.clone(), fastboot);
    let mut after_reset = |phone: &Phone| {
        if edl_reset_leaves_edl {
            if phone.mode() == PhoneMode::Edl {
                Next::Reenumerate
            } else {
                Next::Become(fastboot_personality(phone))
            }
        } else {
            phone.set_mode(PhoneMode::Edl);
            Next::Reenumerate
        }
    };
    let first = match phone.mode() {
        PhoneMode::Edl => edl_personality(&phone),
        _ => fastboot_personality(&phone),
    };
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
        if phone.mode() == PhoneMode::Edl {
            serve_edl_session(link, &phone, &edl, &mut after_reset)
        } else {
            serve_fastboot_session(link, &mut device)
        }
    })
}
