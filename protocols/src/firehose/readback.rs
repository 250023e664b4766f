//! `<read>`: the programmer ACKs with `rawmode="true"`, streams the sectors toward the host, then
//! sends a closing ACK. The first data bytes may already sit in the reader's pushback (serial
//! links, or a USB read that held the ACK and data together).

use std::io::Write;

use super::client::Firehose;
use super::xml::Document;
use super::FirehoseError;
use crate::progress::ProgressEvent;
use crate::transport::Transport;

/// Bytes of read-back held in memory at once.
const READ_BUFFER: usize = 1024 * 1024;

impl<T: Transport> Firehose<T> {
    /// Read `num_sectors` sectors from `start_sector` of `lun` into `out`, streaming.
    pub fn read_sectors(
        &mut self,
        lun: u32,
        start_sector: u64,
        num_sectors: u64,
        out: &mut dyn Write,
    ) -> Result<(), FirehoseError> {
        self.read_sectors_from(lun, &start_sector.to_string(), num_sectors, out)
    }

    /// [`Self::read_sectors`] from a `start_sector` the programmer evaluates, such as
    /// `NUM_DISK_SECTORS-1.` (qdl passes a read's start_sector through verbatim too).
    pub fn read_sectors_from(
        &mut self,
        lun: u32,
        start_sector: &str,
        num_sectors: u64,
        out: &mut dyn Write,
    ) -> Result<(), FirehoseError> {
        if num_sectors == 0 {
            return Ok(());
        }
        let command = format!("read LUN {lun} {start_sector}+{num_sectors}");
        let total = num_sectors
            .checked_mul(self.sector_size as u64)
            .ok_or_else(|| FirehoseError::InvalidRequest(format!("{command}: too many sectors")))?;
        let doc = Document::new("read")
            .attr("SECTOR_SIZE_IN_BYTES", self.sector_size)
            .attr("num_partition_sectors", num_sectors)
            .attr("physical_partition_number", lun)
            .attr("start_sector", start_sector);
        self.send(&doc, &command)?;
        let response = self.await_response(&command, self.config.timeouts.response)?;
        if !response.ack() {
            return Err(self.nak_error(&command, &response));
        }
        if !response.is_raw() {
            return Err(self.protocol_error(&command, "ACK without rawmode=\"true\""));
        }

        let mut buf = vec![0u8; READ_BUFFER.min(total as usize).max(1)];
        let mut left = total;
        // A failing output still drains the data so the session stays usable.
        let mut output_error = None;
        while left > 0 {
            if self.progress.stop_requested() {
                return Err(FirehoseError::Stopped {
                    link: self.describe(),
                    command,
                });
            }
            let want = (left as usize).min(buf.len());
            self.read_raw_exact(&mut buf[..want], &command)?;
            if output_error.is_none() {
                if let Err(e) = out.write_all(&buf[..want]) {
                    output_error = Some(e);
                }
            }
            left -= want as u64;
            self.progress
                .event(ProgressEvent::Bytes { bytes: want as u64 });
        }

        let response = self.await_response(&command, self.config.timeouts.response)?;
        if !response.ack() {
            return Err(self.nak_error(&command, &response));
        }
        if let Some(source) = output_error {
            return Err(FirehoseError::Output { command, source });
        }
        Ok(())
    }

    /// Read a small range into memory (GPT headers and entries); bounded by the caller.
    pub fn read_to_vec(
        &mut self,
        lun: u32,
        start_sector: u64,
        num_sectors: u64,
    ) -> Result<Vec<u8>, FirehoseError> {
        let mut out = Vec::new();
        self.read_sectors(lun, start_sector, num_sectors, &mut out)?;
        Ok(out)
    }

    fn read_raw_exact(&mut self, buf: &mut [u8], command: &str) -> Result<(), FirehoseError> {
        let timeout = self.config.timeouts.raw_data;
        self.reader
            .read_raw_exact(&mut self.link, buf, timeout)
            .map_err(|e| self.transport_error(command, e))
    }
}
