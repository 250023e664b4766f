//! What a Sahara session yields: the device's identity, or a report of what was uploaded.

use std::path::PathBuf;

use super::identity::{ChipIdV3, HwId};
use super::packet::ExecCommand;
use super::status::Status;

/// The identity a device gives in command mode. A field is `None` when the device refused or
/// does not have that command (v3 ROMs refuse MSM_HW_ID_READ; some refuse the SBL version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Protocol version from the device's HELLO; `None` if it answered an unsolicited
    /// HELLO_RESP without one.
    pub version: Option<u32>,
    pub serial: Option<u32>,
    /// MSM/OEM/model id: from MSM_HW_ID_READ (v1/v2) or from the v3 chip id.
    pub hw_id: Option<HwId>,
    /// Only on v3 devices.
    pub chip_id_v3: Option<ChipIdV3>,
    /// The OEM public-key hash, reduced to one digest.
    pub oem_pk_hash: Option<Vec<u8>>,
    pub sbl_version: Option<u32>,
    /// Client commands the device refused, with its status.
    pub refused: Vec<(ExecCommand, Status)>,
}

/// One image served during an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTransfer {
    pub image_id: u64,
    pub file: PathBuf,
    pub size: u64,
    /// Bytes written in answer to READ_DATA(_64); more than `size` if the ROM re-read parts.
    pub bytes_sent: u64,
    pub requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    pub version: Option<u32>,
    pub images: Vec<ImageTransfer>,
}

/// How an upload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaharaOutcome {
    /// The device accepted every image (DONE_RESP complete) and is starting the programmer.
    ProgrammerLoaded(UploadReport),
    /// A Firehose programmer was already running (its first bytes were `<?xml`), so Sahara was
    /// skipped. `already_read` holds what was read from the link; the Firehose client must
    /// treat it as the start of its input.
    FirehoseAlreadyRunning { already_read: Vec<u8> },
}

/// How an identity read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoOutcome {
    /// The identity; the device was switched back to image transfer and will say HELLO again.
    Info(DeviceInfo),
    /// A Firehose programmer already runs: Sahara identity is not available any more.
    FirehoseAlreadyRunning { already_read: Vec<u8> },
}
