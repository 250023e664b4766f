//! The EDL personality of a simulated phone: the boot ROM's Sahara, then — once it accepted a
//! programmer — that programmer's Firehose, on the same link and over the phone's shared
//! storage (so what EDL writes, the fastboot personality reads back).

use super::firehose::{self, FirehoseOutcome, FirehoseSimConfig, FirehoseSimError};
use super::lifecycle::Ending;
use super::phone::{Phone, PhoneMode};
use super::sahara::{SaharaDevice, SaharaIdentity, SaharaServeOutcome, SaharaSimError};
use crate::sahara::Status;
use crate::transport::Transport;

#[derive(Debug, Clone)]
pub struct EdlSimConfig {
    /// The boot ROM. Its identity and signed list are refreshed from the phone at every boot.
    pub rom: SaharaDevice,
    pub programmer: FirehoseSimConfig,
}

impl EdlSimConfig {
    /// A ROM speaking Sahara `version` and a programmer with default limits.
    pub fn new(sahara_version: u32) -> Self {
        EdlSimConfig {
            rom: SaharaDevice::new(sahara_version, SaharaIdentity::default()),
            programmer: FirehoseSimConfig::default(),
        }
    }
}

impl Default for EdlSimConfig {
    fn default() -> Self {
        Self::new(2)
    }
}

/// How one EDL boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdlOutcome {
    /// The programmer ran and its session ended this way (a power command moved the phone
    /// through its lifecycle).
    Programmer(FirehoseOutcome),
    /// Secure boot refused the programmer (END_OF_IMAGE with this status); the ROM waits.
    ProgrammerRejected {
        status: Status,
    },
    /// The host reset the ROM (Sahara RESET): it boots again.
    RomReset,
    HostGone,
    HostSilent,
}

#[derive(Debug, thiserror::Error)]
pub enum EdlSimError {
    #[error(transparent)]
    Sahara(#[from] SaharaSimError),
    #[error(transparent)]
    Firehose(#[from] FirehoseSimError),
}

/// Serve one EDL boot on `link`: Sahara until a programmer is accepted, then Firehose until it
/// powers off, resets or the host leaves. Endings of the phone's own go through its lifecycle
/// ([`Phone::end_session`]); the host carries out [`Phone::take_transition`].
pub fn serve(
    link: &mut dyn Transport,
    phone: &Phone,
    config: &EdlSimConfig,
) -> Result<EdlOutcome, EdlSimError> {
    phone.set_mode(PhoneMode::Edl);
    let mut rom = config.rom.clone();
    rom.identity = SaharaIdentity::from(&phone.identity());
    match rom.serve(link)? {
        SaharaServeOutcome::ProgrammerAccepted { .. } => {
            let outcome = firehose::serve(link, phone, &config.programmer, &[])?;
            Ok(EdlOutcome::Programmer(outcome))
        }
        SaharaServeOutcome::ProgrammerRejected { status, .. } => {
            phone.end_session(Ending::ProgrammerRefused);
            Ok(EdlOutcome::ProgrammerRejected { status })
        }
        SaharaServeOutcome::Reset => {
            phone.end_session(Ending::RomReset);
            Ok(EdlOutcome::RomReset)
        }
        SaharaServeOutcome::HostGone => Ok(EdlOutcome::HostGone),
        SaharaServeOutcome::HostSilent => Ok(EdlOutcome::HostSilent),
    }
}
