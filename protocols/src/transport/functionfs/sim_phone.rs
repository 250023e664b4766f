//! Simulated phones served on FunctionFS: the same device logic as in memory or on a pty, on
//! the device end of a real USB link, with re-enumeration modelled on the gadget.

use std::path::Path;

use super::{personality, serve, FunctionFsError, FunctionFsLink, Gadget, Next, Personality};
use crate::sim::edl::{self, EdlOutcome, EdlSimConfig, EdlSimError};
use crate::sim::firehose::FirehoseOutcome;
use crate::sim::{Phone, PhoneMode};
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
pub fn serve_edl_session(
    link: &mut FunctionFsLink,
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

/// Serve `phone` in EDL on the FunctionFS instance at `dir` until it powers off. After a
/// programmer `power reset` the phone re-enumerates in EDL again (an EDL-only simulator, like
/// a phone on a deep-flash cable), so EDL commands can run one after another.
pub fn serve_edl(
    dir: &Path,
    gadget: Option<&Gadget>,
    phone: &Phone,
    config: &EdlSimConfig,
) -> Result<(), FunctionFsError> {
    let mut back_to_edl = |phone: &Phone| {
        phone.set_mode(PhoneMode::Edl);
        Next::Reenumerate
    };
    serve(dir, &edl_personality(phone), gadget, |link, _session| {
        serve_edl_session(link, phone, config, &mut back_to_edl)
    })
}
