//! The Firehose commands without a data phase: nop, patch, erase, getsha256digest,
//! getstorageinfo, setbootablestoragedrive, power. Each is one command document answered by
//! `<log>` lines and one `<response>`.

use std::time::{Duration, Instant};

use super::client::Firehose;
use super::response::{self, Message};
use super::xml::Document;
use super::{find_sha256_hex, FirehoseError, StorageInfo};
use crate::transport::Transport;

/// `<power value=…>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerMode {
    Reset,
    Off,
    ResetToEdl,
}

impl PowerMode {
    pub fn value(self) -> &'static str {
        match self {
            PowerMode::Reset => "reset",
            PowerMode::Off => "off",
            PowerMode::ResetToEdl => "reset_to_edl",
        }
    }
}

/// One device-side patch (from a patch*.xml line with `filename="DISK"`).
#[derive(Debug, Clone, Copy)]
pub struct PatchRequest<'a> {
    pub lun: u32,
    pub sector_size: Option<usize>,
    pub start_sector: &'a str,
    pub byte_offset: u64,
    pub size_in_bytes: u64,
    pub value: &'a str,
    pub what: &'a str,
}

impl<T: Transport> Firehose<T> {
    pub fn nop(&mut self) -> Result<(), FirehoseError> {
        let doc = Document::new("nop").attr("value", "ping");
        self.command(doc, "nop", self.config.timeouts.response)
            .map(|_| ())
    }

    /// `<patch>`: `start_sector` and `value` are passed through verbatim, so the programmer
    /// evaluates `NUM_DISK_SECTORS-…` and `CRC32(…)` against the real disk.
    pub fn patch(&mut self, patch: &PatchRequest<'_>) -> Result<(), FirehoseError> {
        let doc = Document::new("patch")
            .attr(
                "SECTOR_SIZE_IN_BYTES",
                patch.sector_size.unwrap_or(self.sector_size),
            )
            .attr("byte_offset", patch.byte_offset)
            .attr("filename", super::PATCH_TARGET_DISK)
            .attr("physical_partition_number", patch.lun)
            .attr("size_in_bytes", patch.size_in_bytes)
            .attr("start_sector", patch.start_sector)
            .attr("value", patch.value);
        let command = format!("patch {} ({})", patch.value, patch.what);
        self.command(doc, &command, self.config.timeouts.response)
            .map(|_| ())
    }

    /// `<erase>`: `sectors` = None erases the whole LUN (attributes omitted, as qdl does).
    pub fn erase(&mut self, lun: u32, range: Option<(&str, u64)>) -> Result<(), FirehoseError> {
        let mut doc = Document::new("erase")
            .attr("SECTOR_SIZE_IN_BYTES", self.sector_size)
            .attr("physical_partition_number", lun);
        if let Some((start, count)) = range {
            doc = doc
                .attr("num_partition_sectors", count)
                .attr("start_sector", start);
        }
        let command = format!("erase LUN {lun}");
        self.command(doc, &command, self.config.timeouts.long_operation)
            .map(|_| ())
    }

    /// `<getsha256digest>` over a sector range; the digest comes back in a `<log>` line (or, on
    /// some programmers, a `Digest` attribute of the response).
    pub fn sha256_digest(
        &mut self,
        lun: u32,
        start_sector: &str,
        num_sectors: u64,
    ) -> Result<[u8; 32], FirehoseError> {
        let doc = Document::new("getsha256digest")
            .attr("SECTOR_SIZE_IN_BYTES", self.sector_size)
            .attr("num_partition_sectors", num_sectors)
            .attr("physical_partition_number", lun)
            .attr("start_sector", start_sector);
        let command = format!("getsha256digest LUN {lun} {start_sector}+{num_sectors}");
        let response = self.command(doc, &command, self.config.timeouts.long_operation)?;
        let from_attr = ["Digest", "SHA256", "sha256"]
            .iter()
            .filter_map(|k| response.response.attr(k))
            .find_map(find_sha256_hex);
        response
            .logs
            .iter()
            .find_map(|l| find_sha256_hex(l))
            .or(from_attr)
            .ok_or_else(|| FirehoseError::NoDigest {
                link: self.describe(),
                command,
            })
    }

    /// `<getstorageinfo>`: the geometry comes back as JSON inside `<log>` lines.
    pub fn storage_info(&mut self, lun: u32) -> Result<StorageInfo, FirehoseError> {
        let doc = Document::new("getstorageinfo").attr("physical_partition_number", lun);
        let command = format!("getstorageinfo LUN {lun}");
        let response = self.command(doc, &command, self.config.timeouts.response)?;
        Ok(StorageInfo::from_logs(&response.logs))
    }

    pub fn set_bootable_storage_drive(&mut self, drive: u32) -> Result<(), FirehoseError> {
        let doc = Document::new("setbootablestoragedrive").attr("value", drive);
        let command = format!("setbootablestoragedrive {drive}");
        self.command(doc, &command, self.config.timeouts.response)
            .map(|_| ())
    }

    /// `<power>`. After the ACK the device goes away; remaining logs are drained briefly and a
    /// disconnect then is the expected outcome, not an error.
    pub fn power(&mut self, mode: PowerMode, delay_seconds: u32) -> Result<(), FirehoseError> {
        let doc = Document::new("power")
            .attr("value", mode.value())
            .attr("DelayInSeconds", delay_seconds);
        let command = format!("power {}", mode.value());
        self.send(&doc, &command)?;
        // A programmer told to reset with no delay may be gone before its ACK is read: the
        // disconnect is the reset happening, not a failure.
        match self.await_response(&command, self.config.timeouts.response) {
            Ok(response) if !response.ack() => return Err(self.nak_error(&command, &response)),
            Ok(_) => {}
            Err(e) if e.is_disconnect() => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + Duration::from_millis(300);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(frame) = self.reader.next_frame(&mut self.link, left) else {
                break;
            };
            for message in response::parse_frame(&frame).unwrap_or_default() {
                if let Message::Log(text) = message {
                    self.record_log(&text);
                }
            }
        }
        Ok(())
    }
}
