//! What can go wrong talking fastboot, typed so callers can tell a device's refusal from a dead
//! link or a device that breaks the protocol.

use std::time::Duration;

use super::command::CommandError;
use super::fastbootd::FastbootMode;
use super::response::ResponseError;
use crate::transport::TransportError;

/// The ways a device can break the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("{0}")]
    BadResponse(#[from] ResponseError),
    #[error("response packet longer than the protocol's 256 bytes ({len} bytes)")]
    ResponseTooLong { len: usize },
    #[error("device asked for a data phase (DATA{size:08x}) where none belongs")]
    UnexpectedData { size: u32 },
    #[error("device answered OKAY where a DATA response was required")]
    MissingData,
    #[error("device offered DATA{offered:08x} but {requested} bytes were requested")]
    DataSizeMismatch { requested: u64, offered: u32 },
    #[error("device sent more than {limit} INFO/TEXT messages without finishing the command")]
    TooManyMessages { limit: usize },
}

#[derive(Debug, thiserror::Error)]
pub enum FastbootError {
    #[error("device refused `{command}`: {}", if message.is_empty() { "(no reason given)" } else { message.as_str() })]
    DeviceFail { command: String, message: String },
    #[error("no response to `{command}` from {link} within {timeout:?} (device stalled or busy; re-seat the cable or raise the timeout)")]
    Timeout {
        command: String,
        link: String,
        timeout: Duration,
    },
    #[error("{link} disconnected during `{command}`")]
    Disconnected { command: String, link: String },
    #[error("protocol violation by {link} during `{command}`: {violation}")]
    Protocol {
        command: String,
        link: String,
        violation: Violation,
    },
    #[error("link error on {link} during `{command}`: {source}")]
    Transport {
        command: String,
        link: String,
        #[source]
        source: TransportError,
    },
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A local file or writer failed (the image being sent, the file being written).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The device's answers do not allow the requested operation (e.g. a slot it does not have).
    #[error("{0}")]
    Unsupported(String),
    /// The command needs the phone in the other fastboot mode (the bootloader or fastbootd),
    /// as the device's own answers show (`is-userspace`, `is-logical`, or its FAIL). `command`
    /// is the one refused; nothing after the answers that decided it was sent.
    #[error("{reason}: reboot to {needs} first (`{}`)", needs.reboot_command())]
    WrongMode {
        command: String,
        needs: FastbootMode,
        reason: String,
    },
    /// An image file that cannot be flashed as it is (e.g. a corrupt sparse image).
    #[error("{0}")]
    Image(String),
    /// The caller asked the operation to stop ([`crate::progress::ProgressSink::stop_requested`]):
    /// the data phase ended between two chunks.
    #[error("`{command}` stopped at the caller's request after {done} bytes")]
    Stopped { command: String, done: u64 },
}

impl FastbootError {
    /// True when the device is gone and further commands on this link are pointless.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, FastbootError::Disconnected { .. })
    }

    pub(crate) fn from_transport(command: &str, link: String, e: TransportError) -> Self {
        let command = command.to_string();
        match e {
            TransportError::Timeout(timeout) => FastbootError::Timeout {
                command,
                link,
                timeout,
            },
            TransportError::Overflow { len, .. } => FastbootError::Protocol {
                command,
                link,
                violation: Violation::ResponseTooLong { len },
            },
            e if e.is_disconnect() => FastbootError::Disconnected { command, link },
            source => FastbootError::Transport {
                command,
                link,
                source,
            },
        }
    }
}
