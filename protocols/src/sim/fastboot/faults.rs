//! Injected device faults, rendered the way a misbehaving bootloader shows them on the wire.

use std::time::Duration;

use super::{end_for, fail, info, okay, FastbootDevice, Flow, SessionEnd, WRITE_TIMEOUT};
use crate::fastboot::Command;
use crate::sim::phone::{substitute_read, FaultAction};
use crate::transport::{Transport, TransportError};

/// What a stalled device does with the host's packets: takes them (USB keeps accepting into
/// the controller's buffer) and never acts on them.
const SWALLOW_BUFFER: usize = 64 * 1024;

impl FastbootDevice {
    /// Answer `command` as `fault` says instead of (or around) its normal handler.
    pub(super) fn dispatch_faulty(
        &mut self,
        link: &mut dyn Transport,
        command: Command<'_>,
        fault: FaultAction,
    ) -> Result<Flow, TransportError> {
        match fault {
            FaultAction::Fail(message) => fail(link, message).map(|()| Flow::Next),
            FaultAction::Garbage => link
                .write(
                    b"\xffGARBAGE\x00\x13\x37 not a fastboot response",
                    WRITE_TIMEOUT,
                )
                .map(|()| Flow::Next),
            FaultAction::Delay(by) => {
                std::thread::sleep(by);
                self.dispatch(link, command)
            }
            FaultAction::Stall => Ok(Flow::End(swallow_until_gone(link))),
            FaultAction::LongResponse(len) => {
                let mut frame = b"OKAY".to_vec();
                frame.resize(len.max(frame.len()), b'x');
                link.write(&frame, WRITE_TIMEOUT).map(|()| Flow::Next)
            }
            FaultAction::EndlessInfo { every } => endless_info(link, &command, every),
            FaultAction::DataSize(size) => {
                let misread = match command {
                    Command::Download(_) => Command::Download(size),
                    Command::Fetch {
                        partition, offset, ..
                    } => Command::Fetch {
                        partition,
                        offset: Some(offset.unwrap_or(0)),
                        size: Some(size.into()),
                    },
                    other => other,
                };
                self.dispatch(link, misread)
            }
            FaultAction::Okay(text) => okay(link, text).map(|()| Flow::Next),
            fault @ (FaultAction::ShortData(_) | FaultAction::ReadBack(_)) => {
                self.read_fault = Some(fault);
                let flow = self.dispatch(link, command);
                self.read_fault = None;
                flow
            }
            // `DATA` must be followed by eight hex digits.
            FaultAction::Malformed => link
                .write(b"DATA0x1g!zz?", WRITE_TIMEOUT)
                .map(|()| Flow::Next),
            FaultAction::CutDuringWrite { percent } => match command {
                Command::Flash(name) => self.flash_then_drop_off(link, name, percent),
                other => self.dispatch(link, other),
            },
            // Shorter than the four-byte status every answer starts with.
            FaultAction::Truncated => link.write(b"OKA", WRITE_TIMEOUT).map(|()| Flow::Next),
            FaultAction::UnknownPrefix => link
                .write(b"BUSYtry again later", WRITE_TIMEOUT)
                .map(|()| Flow::Next),
            FaultAction::PullCable => {
                self.phone.pull_cable();
                Ok(Flow::End(SessionEnd::Disconnected))
            }
        }
    }

    /// How many bytes of a `len`-byte read toward the host this command really sends.
    pub(super) fn bytes_to_send(&self, len: u64) -> u64 {
        match &self.read_fault {
            Some(FaultAction::ShortData(n)) => len.min(*n),
            _ => len,
        }
    }

    /// Bytes a read toward the host serves from `partition` at `offset`: the storage's, or the
    /// substitute bytes of a [`FaultAction::ReadBack`].
    pub(super) fn read_for_host(
        &self,
        partition: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), crate::sim::StorageError> {
        match &self.read_fault {
            Some(FaultAction::ReadBack(bytes)) => {
                substitute_read(bytes, offset, buf);
                Ok(())
            }
            _ => self
                .phone
                .lock()
                .storage
                .read_partition(partition, offset, buf),
        }
    }
}

/// A hung device: the session ends only when the host goes away.
fn swallow_until_gone(link: &mut dyn Transport) -> SessionEnd {
    let mut buf = vec![0u8; SWALLOW_BUFFER];
    loop {
        match link.read_packet(&mut buf, Duration::from_secs(3600)) {
            Ok(_) | Err(TransportError::Timeout(_)) | Err(TransportError::Overflow { .. }) => {}
            Err(e) => return end_for(e),
        }
    }
}

/// Progress lines forever: the command never finishes. Ends (as a link error) when the host
/// stops listening.
fn endless_info(
    link: &mut dyn Transport,
    command: &Command<'_>,
    every: Duration,
) -> Result<Flow, TransportError> {
    let mut step = 0u64;
    loop {
        step = step.wrapping_add(1);
        info(link, format!("{command}: still working ({step})"))?;
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests;
