//! The device end of a USB link on FunctionFS bulk endpoints (`ep1` IN, `ep2` OUT).
//!
//! A UDC completes an OUT request when it is full or when the host ends the transfer with a
//! short packet or a zero-length packet (ZLP). Two host habits pull in opposite directions:
//! - Sahara and fastboot hosts send a data phase of N·wMaxPacketSize bytes with no ZLP, so the
//!   device must ask for exactly what it expects (a larger request would wait for more);
//! - Firehose hosts follow such a transfer with a ZLP and only then read the answer, so the
//!   device must have a request queued while it writes that answer, or both ends wait.
//!
//! So reads are sized by the caller (rounded up to whole packets, as UDCs require), and before
//! every write the link queues a one-packet read-ahead if no OUT request is queued, as a
//! phone's USB stack always has one. Completions are kept with "did the transfer end here", so
//! `read_packet` returns one host transfer and `read_stream` any bytes; a timed-out request
//! stays queued, so a timeout never loses data.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::aio::{AioContext, Completion, Submitted};
use super::descriptors::HIGH_SPEED_BULK_PACKET;
use super::ep0::Shared;
use crate::transport::{Framing, Transport, TransportError};

/// How long a halt request is repeated while the UDC still holds the endpoint's last request.
const HALT_PATIENCE: Duration = Duration::from_secs(2);

/// Largest single request queued on the UDC. A multiple of every bulk wMaxPacketSize, so
/// splitting a write at this size never puts a short packet inside a transfer; FunctionFS
/// allocates a kernel buffer of the request size, so keep it modest.
pub const MAX_REQUEST: usize = 256 * 1024;

/// `FUNCTIONFS_ENDPOINT_DESCRIPTOR`: `_IOR('g', 130, struct usb_endpoint_descriptor)` (9 bytes).
const FUNCTIONFS_ENDPOINT_DESCRIPTOR: libc::c_ulong = 0x8009_6782;

pub struct FunctionFsLink {
    // Field order matters: the contexts are dropped (io_destroy cancels and reaps the queued
    // read-ahead) before the buffer the kernel writes into.
    aio_out: AioContext,
    aio_in: AioContext,
    /// The queued OUT request, if any, with its length, and the buffer it fills.
    queued: Option<(Submitted, usize)>,
    rx: Vec<u8>,
    ep_in: File,
    ep_out: File,
    shared: Arc<Shared>,
    /// The enablement this link belongs to; any later DISABLE ends it for good.
    session: u64,
    /// Received bytes not yet handed out, and whether the host's transfer ends with them.
    pending: Vec<u8>,
    pending_at: usize,
    pending_ends_transfer: bool,
    /// The caller's `read_packet` buffer filled exactly at the end of a completion: a ZLP that
    /// comes next only terminates that transfer and is not a packet of its own.
    zlp_terminates_previous: bool,
    max_packet: usize,
    /// Follow every write of a whole number of packets with a zero-length packet.
    terminate_whole_packets: bool,
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
            aio_out: AioContext::new()?,
            aio_in: AioContext::new()?,
            queued: None,
            rx: vec![0; MAX_REQUEST],
            ep_in,
            ep_out,
            shared,
            session,
            pending: Vec::new(),
            pending_at: 0,
            pending_ends_transfer: false,
            zlp_terminates_previous: false,
            max_packet,
            terminate_whole_packets: false,
            name: format!("functionfs:{}", dir.display()),
        })
    }

    /// End every message whose length is a whole number of packets with a zero-length
    /// packet, as device stacks that set `req->zero` on bulk IN do. Without it a host reading
    /// with a larger buffer cannot tell the message ended (it waits for its timeout). Right
    /// for message protocols read into large buffers (Firehose XML); wrong for fastboot, whose
    /// hosts read a data phase by its length and would take the ZLP as an empty response.
    pub fn set_terminate_whole_packets(&mut self, on: bool) {
        self.terminate_whole_packets = on;
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
        let deadline = std::time::Instant::now() + HALT_PATIENCE;
        loop {
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
                (-1, Some(libc::EBADMSG)) => return Ok(()),
                // The UDC refuses to halt an IN endpoint whose last request it has not given
                // back yet (dummy_hcd, and FunctionFS passes that on), or another transfer
                // holds the endpoint: not a disconnect, the halt takes once it drains. The
                // session check above still ends the wait on a real one.
                (-1, Some(libc::EAGAIN | libc::EINTR)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                (-1, Some(e)) => return Err(self.failure(e, HALT_PATIENCE)),
                _ => {
                    return Err(TransportError::Protocol(
                        "FunctionFS did not halt the endpoint".into(),
                    ))
                }
            }
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

    /// Wait for the next OUT completion and make it the pending bytes. Without a queued
    /// request, queue one of `want` bytes (rounded up to whole packets). On a timeout the
    /// request stays queued for the next call.
    fn next_completion(&mut self, want: usize, timeout: Duration) -> Result<(), TransportError> {
        self.check_session()?;
        if self.aio_out.is_poisoned() {
            return Err(TransportError::Disconnected);
        }
        if self.queued.is_none() {
            self.queue_read(want)?;
        }
        let completion = match self.aio_out.wait(timeout)? {
            Some(c) => c,
            None => {
                self.check_session()?;
                return Err(TransportError::Timeout(timeout));
            }
        };
        let requested = self.queued.take().map_or(0, |(_, len)| len);
        tracing::trace!(requested, ?completion, link = %self.name, "bulk OUT completion");
        match completion {
            Completion::Done(n) => {
                let n = n.min(requested);
                self.pending.clear();
                self.pending.extend_from_slice(&self.rx[..n]);
                self.pending_at = 0;
                self.pending_ends_transfer = n < requested;
                Ok(())
            }
            Completion::Failed(e) => Err(self.failure(e, timeout)),
            Completion::TimedOut => Err(TransportError::Timeout(timeout)),
        }
    }

    /// Queue one OUT request of `want` bytes rounded up to whole packets (at most the buffer).
    fn queue_read(&mut self, want: usize) -> Result<(), TransportError> {
        let len = (want.max(1).div_ceil(self.max_packet) * self.max_packet).min(self.rx.len());
        let fd = self.ep_out.as_raw_fd();
        // SAFETY: `rx` is neither read, resized nor freed while the request is queued: it is
        // only read after `wait` reaped the request, and the context is dropped first.
        let submitted = unsafe { self.aio_out.submit_read(fd, self.rx.as_mut_ptr(), len) };
        match submitted {
            Ok(s) => {
                self.queued = Some((s, len));
                Ok(())
            }
            Err(e) => Err(self.failure(e.raw_os_error().unwrap_or(libc::EIO), Duration::ZERO)),
        }
    }

    fn pending_left(&self) -> usize {
        self.pending.len() - self.pending_at
    }

    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.check_session()?;
        if self.queued.is_none() {
            // One packet: enough to take a ZLP or the start of the host's next transfer.
            self.queue_read(self.max_packet)?;
        }
        let completion = self.aio_in.write(self.ep_in.as_raw_fd(), data, timeout)?;
        tracing::trace!(len = data.len(), ?completion, link = %self.name, "bulk IN request");
        match completion {
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
        if self.terminate_whole_packets && data.len().is_multiple_of(self.max_packet) {
            self.send(&[], timeout)?;
        }
        Ok(())
    }

    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let mut filled = 0;
        loop {
            if self.pending_left() == 0 {
                match self.next_completion(buf.len() - filled, timeout) {
                    Ok(()) => {}
                    // The host stopped in the middle of a transfer without ending it: what
                    // came is the packet.
                    Err(TransportError::Timeout(_)) if filled > 0 => return Ok(filled),
                    Err(e) => return Err(e),
                }
                if self.pending.is_empty() {
                    if filled == 0 && std::mem::take(&mut self.zlp_terminates_previous) {
                        continue;
                    }
                    self.zlp_terminates_previous = false;
                    return Ok(filled); // a ZLP: the end of this transfer (or an empty packet)
                }
            }
            self.zlp_terminates_previous = false;
            let room = buf.len() - filled;
            if self.pending_left() > room {
                let len = filled + self.pending_left();
                self.pending.clear();
                self.pending_at = 0;
                return Err(TransportError::Overflow {
                    len,
                    max: buf.len(),
                });
            }
            filled += self.take_pending(&mut buf[filled..]);
            if self.pending_ends_transfer {
                return Ok(filled);
            }
            if filled == buf.len() {
                self.zlp_terminates_previous = true;
                return Ok(filled);
            }
        }
    }

    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Zero-length packets inside a data phase carry nothing: wait for real bytes.
        while self.pending_left() == 0 {
            self.next_completion(buf.len(), timeout)?;
        }
        self.zlp_terminates_previous = false;
        Ok(self.take_pending(buf))
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
    fn largest_request_is_a_whole_number_of_packets_at_every_speed() {
        for packet in [64, 512, 1024] {
            assert_eq!(MAX_REQUEST % packet, 0);
        }
        assert_eq!(
            FUNCTIONFS_ENDPOINT_DESCRIPTOR,
            (2 << 30) | (9 << 16) | (0x67 << 8) | 130
        );
    }
}
