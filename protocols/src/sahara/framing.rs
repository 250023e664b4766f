//! Reading one Sahara packet from a link, whatever its framing.
//!
//! On packet links (USB) one read is one packet. On byte streams (a QDLoader tty, a pty) the
//! 8-byte header is read first, its length bounded, then exactly the rest: never a byte past
//! the packet, because what follows may belong to the Firehose programmer that starts next.

use std::time::Duration;

use super::error::SaharaError;
use super::packet::{Header, Packet, PacketError, HEADER_LEN, MAX_PACKET_LEN};
use crate::transport::{read_exact, Framing, Transport, TransportError};

/// One Firehose answer can be large; on a packet link it must fit one read or it is lost.
const PACKET_READ_BUFFER: usize = 64 * 1024;

/// What arrived.
pub(crate) enum Incoming {
    Packet(Packet),
    /// The first bytes were `<?xml`: a Firehose programmer, not a boot ROM, is talking. These
    /// are all the bytes read (the whole first transfer, or the 8 header bytes of a stream).
    Firehose(Vec<u8>),
}

/// Read one Sahara packet. With `first`, bytes starting with `<?xml` mean a Firehose
/// programmer already runs, and are handed back instead of being parsed. `buf` is the packet
/// link's read buffer, kept by the caller across reads.
pub(crate) fn read_incoming(
    link: &mut dyn Transport,
    buf: &mut Vec<u8>,
    timeout: Duration,
    first: bool,
    waiting_for: &str,
) -> Result<Incoming, SaharaError> {
    match link.framing() {
        Framing::Packets => read_one_packet(link, buf, timeout, first, waiting_for),
        Framing::Stream => read_framed(link, timeout, first, waiting_for),
    }
}

fn read_one_packet(
    link: &mut dyn Transport,
    buf: &mut Vec<u8>,
    timeout: Duration,
    first: bool,
    waiting_for: &str,
) -> Result<Incoming, SaharaError> {
    if buf.len() < PACKET_READ_BUFFER {
        buf.resize(PACKET_READ_BUFFER, 0);
    }
    loop {
        let n = link
            .read_packet(buf, timeout)
            .map_err(|e| read_error(link, e, timeout, waiting_for))?;
        // A zero-length packet ends a transfer of a multiple of wMaxPacketSize; not ours.
        if n == 0 {
            continue;
        }
        let bytes = &buf[..n.min(buf.len())];
        if first && bytes.starts_with(b"<?xml") {
            return Ok(Incoming::Firehose(bytes.to_vec()));
        }
        return Packet::decode(bytes)
            .map(Incoming::Packet)
            .map_err(|source| malformed(link, waiting_for, source, bytes));
    }
}

fn read_framed(
    link: &mut dyn Transport,
    timeout: Duration,
    first: bool,
    waiting_for: &str,
) -> Result<Incoming, SaharaError> {
    let mut packet = [0u8; MAX_PACKET_LEN];
    let (header_bytes, _) = packet.split_at_mut(HEADER_LEN);
    read_exact(link, header_bytes, timeout)
        .map_err(|e| read_error(link, e, timeout, waiting_for))?;
    if first && header_bytes.starts_with(b"<?xml") {
        return Ok(Incoming::Firehose(header_bytes.to_vec()));
    }
    let header = Header::parse(header_bytes)
        .map_err(|source| malformed(link, waiting_for, source, header_bytes))?;
    let total = header.length as usize;
    // Header::parse bounded the length to MAX_PACKET_LEN, so this always succeeds.
    let Some(body) = packet.get_mut(HEADER_LEN..total) else {
        let source = PacketError::LengthOutOfBounds {
            declared: header.length,
        };
        return Err(malformed(link, waiting_for, source, &[]));
    };
    read_exact(link, body, timeout).map_err(|e| read_error(link, e, timeout, waiting_for))?;
    let bytes = &packet[..total];
    Packet::decode(bytes)
        .map(Incoming::Packet)
        .map_err(|source| malformed(link, waiting_for, source, bytes))
}

fn malformed(
    link: &dyn Transport,
    waiting_for: &str,
    source: PacketError,
    bytes: &[u8],
) -> SaharaError {
    SaharaError::Malformed {
        link: link.describe(),
        during: waiting_for.to_string(),
        source,
        head: head_hex(bytes),
    }
}

fn read_error(
    link: &dyn Transport,
    e: TransportError,
    timeout: Duration,
    waiting_for: &str,
) -> SaharaError {
    match e {
        TransportError::Timeout(_) => SaharaError::Timeout {
            link: link.describe(),
            waiting_for: waiting_for.to_string(),
            timeout,
        },
        other => transport_error(link.describe(), other, waiting_for),
    }
}

/// A transport failure while `during`; a vanished device is its own error.
pub(crate) fn transport_error(link: String, e: TransportError, during: &str) -> SaharaError {
    if e.is_disconnect() {
        SaharaError::Disconnected {
            link,
            during: during.to_string(),
        }
    } else {
        SaharaError::Transport {
            link,
            during: during.to_string(),
            source: e,
        }
    }
}

/// Up to 16 bytes as hex, for error messages about garbage.
fn head_hex(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(16)];
    let mut s = hex::encode(shown);
    if bytes.len() > shown.len() {
        s.push('…');
    }
    s
}
