//! Moving bytes to and from one device.
//!
//! Fastboot and Sahara are packet-framed (one USB bulk transfer or one TCP frame is one message);
//! Firehose over USB and anything over a serial line is a byte stream that the protocol re-frames.
//! [`Transport`] preserves packet boundaries where the link has them and says which kind of link
//! it is through [`Framing`], so protocol code can frame a stream itself.

use std::fmt;
use std::io;
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

    /// Lend a buffer of at most `len` bytes for the caller to fill and send from, for a host
    /// streaming an image in chunks: see [`SendBuffer`]. The buffer is `len` bytes long, or
    /// shorter where the link's own transfers are (never below `min(len, 64 KiB)`).
    ///
    /// Links that can take the caller's bytes where they lie override this, so the host copies
    /// each byte once (the read that fills the buffer): the in-memory link hands the filled
    /// buffer itself to the peer, and the USB link lends memory mapped from usbfs, which the
    /// kernel sends from without copying it in. Elsewhere (TCP, serial, pty, the FunctionFS
    /// device end) the buffer is the caller's and `send` is a copying [`write`](Self::write).
    fn send_buffer(&mut self, len: usize) -> Box<dyn SendBuffer + '_> {
        Box::new(CopyingBuffer {
            link: self,
            buf: vec![0; len],
        })
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
    fn send_buffer(&mut self, len: usize) -> Box<dyn SendBuffer + '_> {
        (**self).send_buffer(len)
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

/// A buffer a link lends for one outgoing data phase ([`Transport::send_buffer`]): fill
/// [`buffer`](Self::buffer), [`send`](Self::send) a prefix of it, and again, until the data
/// phase is done. The buffer keeps its length for the whole data phase; what it holds after a
/// send is unspecified (the link may have handed the filled one on and lent another).
pub trait SendBuffer {
    /// The bytes to fill.
    fn buffer(&mut self) -> &mut [u8];

    /// Send `buffer()[..len]` as one [`Transport::write`].
    fn send(&mut self, len: usize, timeout: Duration) -> Result<(), TransportError>;

    /// [`Transport::write_zero_length`] on the lending link, for a protocol that ends a send of
    /// whole packets with one (Firehose).
    fn send_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError>;

    /// Fill `buffer()[..len]` with `fill`, then send it: the caller's error (reading the image)
    /// and the link's stay apart.
    fn send_filled(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
        timeout: Duration,
    ) -> Result<(), SendFilledError> {
        let buf = self.buffer();
        let capacity = buf.len();
        let part = buf
            .get_mut(..len)
            .ok_or_else(|| SendFilledError::Link(too_long(len, capacity)))?;
        fill(part).map_err(SendFilledError::Fill)?;
        self.send(len, timeout).map_err(SendFilledError::Link)
    }
}

/// Why [`SendBuffer::send_filled`] sent nothing, or not everything.
#[derive(Debug, thiserror::Error)]
pub enum SendFilledError {
    /// Filling the buffer failed (reading the image): nothing of this chunk was sent.
    #[error("reading the data to send: {0}")]
    Fill(#[source] io::Error),
    /// The link failed while sending the chunk (or was asked for more than it lent).
    #[error(transparent)]
    Link(TransportError),
}

/// The buffer of a link without a zero-copy path: the caller's own, copied by `write`.
struct CopyingBuffer<'a, T: Transport + ?Sized> {
    link: &'a mut T,
    buf: Vec<u8>,
}

impl<T: Transport + ?Sized> SendBuffer for CopyingBuffer<'_, T> {
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    fn send(&mut self, len: usize, timeout: Duration) -> Result<(), TransportError> {
        let data = self
            .buf
            .get(..len)
            .ok_or_else(|| too_long(len, self.buf.len()))?;
        self.link.write(data, timeout)
    }

    fn send_zero_length(&mut self, timeout: Duration) -> Result<(), TransportError> {
        self.link.write_zero_length(timeout)
    }
}

/// A send longer than the lent buffer: a bug in the caller, reported rather than panicking.
pub(crate) fn too_long(len: usize, capacity: usize) -> TransportError {
    TransportError::Protocol(format!(
        "{len} bytes to send from a {capacity}-byte send buffer"
    ))
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
