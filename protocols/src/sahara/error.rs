//! What can go wrong talking Sahara to a device, each case worded for the engineer at the line.

use std::path::PathBuf;
use std::time::Duration;

use super::packet::PacketError;
use super::status::Status;
use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum SaharaError {
    #[error(
        "{link}: no answer from the device within {timeout:?} while waiting for {waiting_for}; \
         is it in EDL mode (05c6:9008) on this port? re-seat the cable or power-cycle it into EDL"
    )]
    Timeout {
        link: String,
        waiting_for: String,
        timeout: Duration,
    },

    #[error("{link}: device disconnected while {during}")]
    Disconnected { link: String, during: String },

    /// The caller asked the upload to stop ([`crate::progress::ProgressSink::stop_requested`]).
    #[error("{link}: stopped at the caller's request while {during}")]
    Stopped { link: String, during: String },

    #[error("{link}: transfer failed while {during}: {source}")]
    Transport {
        link: String,
        during: String,
        #[source]
        source: TransportError,
    },

    #[error(
        "{link}: device sent bytes that are not a Sahara packet while {during}: {source} \
         (first bytes: {head}); power-cycle it into EDL and retry"
    )]
    Malformed {
        link: String,
        during: String,
        #[source]
        source: PacketError,
        head: String,
    },

    #[error("{link}: device sent {got} while {during}, expected {expected}")]
    Unexpected {
        link: String,
        during: String,
        got: &'static str,
        expected: &'static str,
    },

    #[error(
        "{link}: device rejected {} (image {image}) with END_OF_IMAGE status {status}{}",
        file.display(),
        rejection_hint(*status)
    )]
    ImageRejected {
        link: String,
        file: PathBuf,
        image: u64,
        status: Status,
    },

    #[error(
        "{link}: device asked for image {image}, but only image(s) {available} were given; \
         pass every image it needs as ID:FILE"
    )]
    UnknownImage {
        link: String,
        image: u64,
        available: String,
    },

    #[error(
        "{link}: device asked for {length} bytes at offset {offset} of {} (image {image}), \
         which has only {size} bytes; is this the right programmer for this device?",
        file.display()
    )]
    OutOfRange {
        link: String,
        file: PathBuf,
        image: u64,
        offset: u64,
        length: u64,
        size: u64,
    },

    #[error("cannot read programmer image {}: {source}", file.display())]
    ImageFile {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{link}: device speaks Sahara version {version} (compatible down to {compatible}); \
         flashgate speaks versions 1 to 3"
    )]
    UnsupportedVersion {
        link: String,
        version: u32,
        compatible: u32,
    },

    #[error("{link}: device refused Sahara command mode with status {status}")]
    CommandModeRefused { link: String, status: Status },

    #[error(
        "{link}: device announced a {len}-byte answer to {command}, more than the {max} allowed"
    )]
    PayloadTooLong {
        link: String,
        command: String,
        len: u32,
        max: usize,
    },

    #[error(
        "{link}: device is in memory-debug (crash dump) mode, not waiting for a programmer; \
         power-cycle it into EDL"
    )]
    MemoryDebugMode { link: String },

    #[error(
        "{link}: device announced Sahara mode {mode} in HELLO, not memory debug (2): it has no \
         crash dump to collect (a phone that crashed re-enters EDL in memory-debug mode)"
    )]
    NotMemoryDebug { link: String, mode: u32 },

    #[error("{link}: {what}: {detail}")]
    MemoryTable {
        link: String,
        what: String,
        detail: String,
    },

    #[error(
        "{link}: device refused to read {length} bytes at {address:#x} ({what}) with status \
         {status}"
    )]
    MemoryReadRefused {
        link: String,
        what: String,
        address: u64,
        length: u64,
        status: Status,
    },

    #[error("cannot write the RAM dump file {}: {source}", path.display())]
    DumpFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{link}: device reset itself during the Sahara {during}")]
    DeviceReset { link: String, during: String },

    #[error("{link}: device ended the transfer with unknown status {status} in DONE_RESP")]
    BadDoneStatus { link: String, status: u32 },
}

fn rejection_hint(status: Status) -> &'static str {
    if status.is_authentication_failure() {
        "; the programmer is not signed for this device's OEM key: use the programmer that \
         matches its PK hash (`flashgate edl info` shows it)"
    } else {
        ""
    }
}

impl SaharaError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, SaharaError::Timeout { .. })
    }

    pub fn is_disconnect(&self) -> bool {
        matches!(self, SaharaError::Disconnected { .. })
    }
}
