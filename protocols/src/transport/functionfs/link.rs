//! The device end of a USB link on FunctionFS bulk endpoints (`ep1` IN, `ep2` OUT).
//!
//! A UDC completes an OUT request when it is full or when the host ends the transfer with a
//! short packet (or a zero-length packet). So one read returns one host transfer only if the
//! request is at least as long as the transfer; reads are rounded up to whole packets because
//! a request that ends inside a packet is an overflow on real controllers. A device cannot
//! tell that a transfer of exactly N·wMaxPacketSize bytes has ended unless it asked for exactly
//! that many bytes or the host sends a zero-length packet after it — which is why Firehose
//! hosts send one and why fastboot devices read data phases by their announced length.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::aio::{AioContext, Completion};
use super::descriptors::HIGH_SPEED_BULK_PACKET;
use super::ep0::Shared;
use crate::transport::{Framing, Transport, TransportError};

/// Largest single request queued on the UDC. A multiple of every bulk wMaxPacketSize, so
/// splitting a write at this size never puts a short packet inside a transfer; FunctionFS
/// allocates a kernel buffer of the request size, so keep it modest.
pub const MAX_REQUEST: usize = 256 * 1024;

/// `FUNCTIONFS_ENDPOINT_DESCRIPTOR`: `_IOR('g', 130, struct usb_endpoint_descriptor)` (9 bytes).
const FUNCTIONFS_ENDPOINT_DESCRIPTOR: libc::c_ulong = 0x8009_6782;

pub struct FunctionFsLink {
    ep_in: File,
    ep_out: File,
    shared: Arc<Shared>,
    /// The enablement this link belongs to; any later DISABLE ends it for good.
    session: u64,
    aio: AioContext,
    /// Bounce buffer for OUT requests: the kernel may write into it until a request is reaped,
    /// so it is never the caller's buffer.
    rx: Vec<u8>,
    /// The part of the last OUT transfer that did not fit the caller's `read_stream` buffer.
    pending: Vec<u8>,
    pending_at: usize,
    max_packet: usize,
    name: String,
}

fn open_endpoint(path: &Path) -> Result<File, TransportError> {
    // O_NONBLOCK makes a transfer on a disabled endpoint fail with EAGAIN instead of sleeping
    // in io_submit until the host comes back.
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            TransportError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot open FunctionFS endpoint {}: {e}", path.display()),
            ))
        })
}

/// wMaxPacketSize of an enabled endpoint at the speed the host connected with.
fn endpoint_max_packet(ep: &File) -> Option<usize> {
    let mut desc = [0u8; 9];
    // SAFETY: the ioctl writes one 9-byte usb_endpoint_descriptor into `desc`.
    let r = unsafe {
        libc::ioctl(
            ep.as_raw_fd(),
            FUNCTIONFS_ENDPOINT_DESCRIPTOR as _,
            desc.as_mut_ptr(),
        )
    };
    if r < 0 {
        return None;
    }
    let mps = usize::from(u16::from_le_bytes([desc[4], desc[5]]) & 0x7ff);
    (mps > 0).then_some(mps)
}

fn round_up(len: usize, packet: usize) -> usize {
    len.div_ceil(packet) * packet
}

impl FunctionFsLink {
    pub(super) fn open(
        dir: &Path,
        shared: Arc<Shared>,
        session: u64,
    ) -> Result<FunctionFsLink, TransportError> {
        let ep_in = open_endpoint(&dir.join("ep1"))?;
        let ep_out = open_endpoint(&dir.join("ep2"))?;
        let max_packet =
            endpoint_max_packet(&ep_out).unwrap_or(usize::from(HIGH_SPEED_BULK_PACKET));
        Ok(FunctionFsLink {
            ep_in,
            ep_out,
            shared,
            session,
            aio: AioContext::new()?,
            rx: vec![0; MAX_REQUEST],
            pending: Vec::new(),
            pending_at: 0,
            max_packet,
            name: format!("functionfs:{}", dir.display()),
        })
    }

    /// Stall the bulk IN endpoint: the host's next IN transfer fails with EPIPE until it
    /// clears the halt (FunctionFS halts an endpoint read against its direction).
    pub fn halt_in(&mut self) -> Result<(), TransportError> {
        self.halt(true)
    }

    /// Stall the bulk OUT endpoint: the host's next OUT transfer fails with EPIPE.
    pub fn halt_out(&mut self) -> Result<(), TransportError> {
        self.halt(false)
    }

    fn halt(&mut self, in_endpoint: bool) -> Result<(), TransportError> {
        self.check_session()?;
        let mut byte = [0u8; 1];
        // SAFETY: plain read/write of one byte on our own descriptors.
        let r = unsafe {
            if in_endpoint {
                libc::read(self.ep_in.as_raw_fd(), byte.as_mut_ptr().cast(), 1)
            } else {
                libc::write(self.ep_out.as_raw_fd(), byte.as_ptr().cast(), 1)
            }
        };
        let errno = std::io::Error::last_os_error();
        match (r, errno.raw_os_error()) {
            // The kernel answers a halt request with EBADMSG once the endpoint is halted.
            (-1, Some(libc::EBADMSG)) => Ok(()),
            (-1, Some(e)) => Err(self.failure(e, Duration::ZERO)),
            _ => Err(TransportError::Protocol(
                "FunctionFS did not halt the endpoint".into(),
            )),
        }
    }

    fn check_session(&self) -> Result<(), TransportError> {
        let s = self.shared.state();
        if s.enabled && s.sessions == self.session && !s.ep0_closed {
            Ok(())
        } else {
            Err(TransportError::Disconnected)
        }
    }

    fn failure(&self, errno: i32, timeout: Duration) -> TransportError {
        match errno {
            // ESHUTDOWN: the endpoint was disabled under the request (DISABLE/UNBIND);
            // ECONNRESET: dequeued; ENODEV: the function is gone; EAGAIN: not enabled.
            libc::ESHUTDOWN
            | libc::ECONNRESET
            | libc::ENODEV
            | libc::EAGAIN
            | libc::ECONNABORTED => TransportError::Disconnected,
            libc::EOVERFLOW => TransportError::Overflow {
                len: self.rx.len() + 1,
                max: self.rx.len(),
            },
            libc::ETIMEDOUT => TransportError::Timeout(timeout),
            other => TransportError::Io(std::io::Error::from_raw_os_error(other)),
        }
    }

    /// One OUT request of `len` bytes (a whole number of packets) into the bounce buffer.
    fn receive(&mut self, len: usize, timeout: Duration) -> Result<usize, TransportError> {
        self.check_session()?;
        let len = len.min(self.rx.len());
        let fd = self.ep_out.as_raw_fd();
        let completion = self.aio.read(fd, &mut self.rx[..len], timeout);
        if self.aio.is_poisoned() {
            // The kernel may still write into the bounce buffer: never free it.
            std::mem::forget(std::mem::take(&mut self.rx));
        }
        match completion? {
            Completion::Done(n) => Ok(n.min(len)),
            Completion::Failed(e) => Err(self.failure(e, timeout)),
            Completion::TimedOut => {
                self.check_session()?;
                Err(TransportError::Timeout(timeout))
            }
        }
    }

    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.check_session()?;
        match self.aio.write(self.ep_in.as_raw_fd(), data, timeout)? {
            Completion::Done(n) if n == data.len() => Ok(()),
            // The host's read was shorter than our packet (it got an overflow error): the UDC
            // completes the request with what the host took.
            Completion::Done(n) => Err(TransportError::Protocol(format!(
                "the host took only {n} of {} bytes (its read buffer was smaller than the packet)",
                data.len()
            ))),
            Completion::Failed(e) => Err(self.failure(e, timeout)),
            Completion::TimedOut => {
                self.check_session()?;
                Err(TransportError::Timeout(timeout))
            }
        }
    }

    fn take_pending(&mut self, buf: &mut [u8]) -> usize {
        let rest = &self.pending[self.pending_at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pending_at += n;
        if self.pending_at == self.pending.len() {
            self.pending.clear();
            self.pending_at = 0;
        }
        n
    }
}

impl Transport for FunctionFsLink {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        if data.is_empty() {
            return self.send(&[], timeout);
        }
        for chunk in data.chunks(MAX_REQUEST) {
            self.send(chunk, timeout)?;
        }
        Ok(())
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if self.pending_at < self.pending.len() {
            let left = self.pending.len() - self.pending_at;
            if left > buf.len() {
                self.pending.clear();
                self.pending_at = 0;
                return Err(TransportError::Overflow {
                    len: left,
                    max: buf.len(),
                });
            }
            return Ok(self.take_pending(buf));
        }
        let n = self.receive(round_up(buf.len().max(1), self.max_packet), timeout)?;
        if n > buf.len() {
            return Err(TransportError::Overflow {
                len: n,
                max: buf.len(),
            });
        }
        buf[..n].copy_from_slice(&self.rx[..n]);
        Ok(n)
    }

    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pending_at < self.pending.len() {
            return Ok(self.take_pending(buf));
        }
        // A zero-length packet inside a data phase carries nothing: wait for real bytes.
        loop {
            let n = self.receive(round_up(buf.len(), self.max_packet), timeout)?;
            if n == 0 {
                continue;
            }
            let direct = n.min(buf.len());
            buf[..direct].copy_from_slice(&self.rx[..direct]);
            if n > direct {
                self.pending.clear();
                self.pending.extend_from_slice(&self.rx[direct..n]);
                self.pending_at = 0;
            }
            return Ok(direct);
        }
    }

    fn framing(&self) -> Framing {
        Framing::Packets
    }

    fn max_packet_size(&self) -> Option<usize> {
        Some(self.max_packet)
    }

    fn write_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.send(&[], timeout)
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_up_to_whole_packets() {
        assert_eq!(round_up(1, 512), 512);
        assert_eq!(round_up(512, 512), 512);
        assert_eq!(round_up(513, 512), 1024);
        assert_eq!(round_up(64, 64), 64);
        assert_eq!(MAX_REQUEST % 1024, 0);
    }
}
