//! Injected device faults, rendered the way a misbehaving Firehose programmer shows them.

use std::time::Duration;

use super::{FirehoseDevice, FirehoseOutcome, Next, WRITE_TIMEOUT};
use crate::firehose::xml::Element;
use crate::sim::phone::{substitute_read, FaultAction};
use crate::transport::{Transport, TransportError};

/// A document with the shape of an answer whose XML is not well-formed (the closing tag does
/// not match the open one), as a programmer with a broken printf has sent.
const MALFORMED_ANSWER: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data><response value=\"ACK\" rawmode=\"false\"></log></data>";

/// The answer a programmer sends for a command that worked, cut in half by [`FaultAction::Truncated`].
const WELL_FORMED_ACK: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data><response value=\"ACK\" rawmode=\"false\" /></data>";

/// A well-formed document that is neither a `<response>` nor a `<log>`.
const NOT_AN_ANSWER: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data><busy value=\"retry\" /></data>";

impl FirehoseDevice<'_> {
    /// Answer `command` as `fault` says instead of (or around) its normal handler.
    pub(super) fn dispatch_faulty(
        &mut self,
        command: &Element,
        fault: FaultAction,
    ) -> Result<Next, TransportError> {
        let tag = command.name.as_str();
        match fault {
            FaultAction::Fail(message) => {
                self.nak(&format!("ERROR: {message}"))?;
                Ok(Next::Continue)
            }
            FaultAction::Garbage => {
                self.link.write(b"\x00\xff\x13garbage\xfe", WRITE_TIMEOUT)?;
                Ok(Next::Continue)
            }
            FaultAction::Delay(by) => {
                std::thread::sleep(by);
                self.handle(command)
            }
            FaultAction::Stall => Ok(Next::End(swallow_until_gone(self.link)?)),
            FaultAction::LongResponse(len) => {
                let prefix = "INFO: ";
                let line = format!("{prefix}{}", "x".repeat(len.saturating_sub(prefix.len())));
                self.log(&line)?;
                self.handle(command)
            }
            FaultAction::EndlessInfo { every } => {
                let mut step = 0u64;
                loop {
                    step = step.wrapping_add(1);
                    self.log(&format!("INFO: {tag}: still working ({step})"))?;
                    self.flush_held()?;
                    std::thread::sleep(every);
                }
            }
            // Firehose answers carry no data size to get wrong.
            FaultAction::DataSize(_) => self.handle(command),
            FaultAction::Okay(text) => {
                self.log(&text)?;
                self.ack(false)?;
                Ok(Next::Continue)
            }
            fault @ (FaultAction::ShortData(_) | FaultAction::ReadBack(_)) => {
                self.read_fault = Some(fault);
                let next = self.handle(command);
                self.read_fault = None;
                next
            }
            FaultAction::CutDuringWrite { percent } if tag == "program" => {
                match self.program_until(command, Some(percent))? {
                    Some(outcome) => {
                        self.phone.pull_cable();
                        Ok(Next::End(outcome))
                    }
                    None => Ok(Next::Continue),
                }
            }
            FaultAction::CutDuringWrite { .. } => self.handle(command),
            FaultAction::Malformed => {
                self.link.write(MALFORMED_ANSWER, WRITE_TIMEOUT)?;
                Ok(Next::Continue)
            }
            FaultAction::Truncated => {
                let cut = WELL_FORMED_ACK.len() / 2;
                self.link.write(&WELL_FORMED_ACK[..cut], WRITE_TIMEOUT)?;
                Ok(Next::Continue)
            }
            FaultAction::UnknownPrefix => {
                self.link.write(NOT_AN_ANSWER, WRITE_TIMEOUT)?;
                Ok(Next::Continue)
            }
            FaultAction::PullCable => {
                self.phone.pull_cable();
                Ok(Next::End(FirehoseOutcome::HostGone))
            }
        }
    }

    /// How many bytes of a `len`-byte `<read>` this command really sends.
    pub(super) fn bytes_to_send(&self, len: u64) -> u64 {
        match &self.read_fault {
            Some(FaultAction::ShortData(n)) => len.min(*n),
            _ => len,
        }
    }

    /// The bytes a `<read>` sends at `offset` bytes into its range (`at` on `lun`): the
    /// storage's, or the substitute bytes of a [`FaultAction::ReadBack`].
    pub(super) fn read_for_host(
        &self,
        lun: u32,
        at: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), crate::sim::StorageError> {
        match &self.read_fault {
            Some(FaultAction::ReadBack(bytes)) => {
                substitute_read(bytes, offset, buf);
                Ok(())
            }
            _ => self.phone.lock().storage.read_lun(lun, at, buf),
        }
    }
}

/// A hung programmer: it reads and ignores everything until the host goes away.
fn swallow_until_gone(link: &mut dyn Transport) -> Result<FirehoseOutcome, TransportError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match link.read_stream(&mut buf, Duration::from_secs(3600)) {
            Ok(_) | Err(TransportError::Timeout(_)) => {}
            Err(e) if e.is_disconnect() => return Ok(FirehoseOutcome::HostGone),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
