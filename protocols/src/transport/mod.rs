//! Moving bytes to and from one device.
//!
//! Fastboot and Sahara are packet-framed (one USB bulk transfer or one TCP frame is one message);
//! Firehose over USB and anything over a serial line is a byte stream that the protocol re-frames.
//! [`Transport`] preserves packet boundaries where the link has them and says which kind of link
//! it is through [`Framing`], so protocol code can frame a stream itself.

use std::fmt;
use std::time::Duration;

#[cfg(target_os = "linux")]
pub mod functionfs;
pub mod memory;
pub mod paced;
#[cfg(unix)]
pub mod pty;
pub mod serial;
pub mod tcp;
pub mod usb;

/// How a link delimits messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Every `write` arrives as one packet and `read_packet` returns exactly one
    /// (USB bulk transfers, fastboot TCP frames, the in-memory link).
    Packets,
    /// A byte stream (serial, pty): `read_packet` returns whatever bytes have arrived, so the
    /// protocol must find its own message boundaries.
    Stream,
}

/// Why a transfer failed. Every variant is safe to show to an engineer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no data from the device within {0:?}")]
    Timeout(Duration),
    #[error("device disconnected")]
    Disconnected,
    #[error("device sent a {len}-byte packet where at most {max} bytes were expected")]
    Overflow { len: usize, max: usize },
    #[error("endpoint stalled by the device")]
    Stall,
    #[error("link protocol violation: {0}")]
    Protocol(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("USB error: {0}")]
    Usb(String),
    /// Nothing to open where the caller looked (no device on that port, or with that serial).
    #[error("{0}")]
    NotFound(String),
}

impl TransportError {
    /// True when the device is gone and retrying on this handle is pointless.
    pub fn is_disconnect(&self) -> bool {
        match self {
            TransportError::Disconnected => true,
            TransportError::Io(e) => matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::NotConnected
            ),
            _ => false,
        }
    }
}

/// One open link to one device. Blocking; every call carries its own timeout.
///
/// The same trait serves both ends: host code talks to a phone through it, and simulated phones
/// talk to the host through the device end of a link.
pub trait Transport: Send {
    /// Send one message. On packet links it arrives as one packet; large writes may be split into
    /// max-packet-size USB packets by the controller, which the peer sees as one transfer.
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError>;

    /// Receive one packet (or, on a [`Framing::Stream`] link, the bytes available, at least one).
    /// A packet longer than `buf` is an [`TransportError::Overflow`], never silently split.
    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError>;

    /// Receive data-phase bytes (at least one, at most `buf.len()`): packet boundaries do not
    /// matter here, so a packet longer than `buf` is returned over several calls.
    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.read_packet(buf, timeout)
    }

    /// Send `buf[..len]` as one [`write`](Self::write), and leave in `buf` a buffer of the same
    /// length for the caller to fill next: `buf` itself, or, on a link that keeps what it sends
    /// in memory, a buffer the peer is done with, so the bytes are not copied again. A host
    /// streaming an image reads each chunk into `buf` and sends it with this (one copy on the
    /// host, as libusb's zero-copy transfer buffers allow on a real bus).
    fn write_from_buffer(
        &mut self,
        buf: &mut Vec<u8>,
        len: usize,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        self.write(&buf[..len], timeout)
    }

    fn framing(&self) -> Framing {
        Framing::Packets
    }

    /// wMaxPacketSize of the OUT endpoint where the link has one. Protocols that need a
    /// zero-length packet after a write of a multiple of it (Firehose) use this.
    fn max_packet_size(&self) -> Option<usize> {
        None
    }

    /// Send a zero-length packet (USB ZLP). A no-op on links without packets of their own.
    fn write_zero_length(&mut self, _timeout: Duration) -> Result<(), TransportError> {
        Ok(())
    }

    /// A short human description of the link for errors and logs (e.g. `usb:1-4.2`).
    fn describe(&self) -> String;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        (**self).write(data, timeout)
    }
    fn read_packet(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        (**self).read_packet(buf, timeout)
    }
    fn read_stream(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        (**self).read_stream(buf, timeout)
    }
    fn write_from_buffer(
        &mut self,
        buf: &mut Vec<u8>,
        len: usize,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        (**self).write_from_buffer(buf, len, timeout)
    }
    fn framing(&self) -> Framing {
        (**self).framing()
    }
    fn max_packet_size(&self) -> Option<usize> {
        (**self).max_packet_size()
    }
    fn write_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        (**self).write_zero_length(timeout)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Read exactly `buf.len()` data-phase bytes.
pub fn read_exact(
    link: &mut dyn Transport,
    buf: &mut [u8],
    timeout: Duration,
) -> Result<(), TransportError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = link.read_stream(&mut buf[filled..], timeout)?;
        if n == 0 {
            return Err(TransportError::Disconnected);
        }
        filled += n;
    }
    Ok(())
}

/// Where a device is attached, for errors and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortPath(pub String);

impl fmt::Display for PortPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
