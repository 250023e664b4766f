//! Framing Firehose messages out of a link.
//!
//! Over USB one bulk transfer usually holds one message, but a read can hold several and a
//! message can span reads; over a serial line (QDLoader tty, COM port, pty) it is a plain byte
//! stream. Messages are therefore delimited by their closing `</data>`, and whatever follows it in
//! the same read stays in a pushback buffer: the start of the next message, or the first raw-data
//! bytes after a `rawmode="true"` ACK (qdl learned this on Windows COM ports the hard way).
//! The same reader frames host commands on the simulated device's side.
//!
//! The framing itself is sans-io ([`MessageReader::push`], [`MessageReader::pop_frame`]); the
//! link-driven [`MessageReader::next_frame`] only feeds it.

use std::time::{Duration, Instant};

use super::xml::{self, Element, XmlError};
use crate::transport::{Transport, TransportError};

/// Largest message accepted by default. Real programmers advertise MaxXMLSizeInBytes = 4096;
/// a log line can be longer in practice, so allow some slack but stay bounded.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// Bytes asked of the link per read: a multiple of every USB max packet size (64/512/1024), so a
/// bulk read never overflows mid-packet.
const READ_CHUNK: usize = 16 * 1024;

const END_TAG: &[u8] = b"</data>";

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("no complete message within {0:?}")]
    Timeout(Duration),
    #[error("message longer than {max} bytes without `</data>`")]
    TooLarge { max: usize },
    #[error("bytes that are not XML where a message should start: {snippet:?}")]
    Garbage { snippet: String },
    #[error(transparent)]
    Xml(#[from] XmlError),
}

pub struct MessageReader {
    buf: Vec<u8>,
    /// Bytes before `start` are consumed.
    start: usize,
    /// Pending bytes already searched for `</data>` without finding it.
    scanned: usize,
    max_message: usize,
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE)
    }
}

impl MessageReader {
    pub fn new(max_message: usize) -> Self {
        MessageReader {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_message: max_message.max(END_TAG.len()),
        }
    }

    /// Start with bytes someone else already read from the link (the Sahara host saw `<?xml`:
    /// the programmer was already running).
    pub fn with_pushback(max_message: usize, bytes: &[u8]) -> Self {
        let mut reader = Self::new(max_message);
        reader.push(bytes);
        reader
    }

    /// Add bytes that arrived (one USB packet, a piece of a serial stream).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes read from the link but not consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > READ_CHUNK {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Drop leading whitespace and NULs between messages; anything else that is not `<` is
    /// garbage from the device.
    fn skip_separators(&mut self) -> Result<(), ReadError> {
        while let Some(&b) = self.buf.get(self.start) {
            if b.is_ascii_whitespace() || b == 0 {
                self.start += 1;
                self.scanned = self.scanned.saturating_sub(1);
            } else if b == b'<' {
                break;
            } else {
                self.scanned = 0;
                let end = (self.start + 40).min(self.buf.len());
                return Err(ReadError::Garbage {
                    snippet: String::from_utf8_lossy(&self.buf[self.start..end]).into_owned(),
                });
            }
        }
        self.compact();
        Ok(())
    }

    /// The next whole document buffered, consumed: everything up to and including its
    /// `</data>`. `Ok(None)` until one is complete; bytes after it stay buffered.
    pub fn pop_frame(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        self.skip_separators()?;
        let pending = &self.buf[self.start..];
        let from = self.scanned.saturating_sub(END_TAG.len() - 1);
        if let Some(i) = find(&pending[from..], END_TAG) {
            let end = from + i + END_TAG.len();
            let frame = pending[..end].to_vec();
            self.start += end;
            self.scanned = 0;
            self.compact();
            return Ok(Some(frame));
        }
        self.scanned = pending.len();
        if pending.len() > self.max_message {
            return Err(ReadError::TooLarge {
                max: self.max_message,
            });
        }
        Ok(None)
    }

    /// Read until one whole document is buffered and return its bytes (see
    /// [`MessageReader::pop_frame`]).
    pub fn next_frame(
        &mut self,
        link: &mut dyn Transport,
        timeout: Duration,
    ) -> Result<Vec<u8>, ReadError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.pop_frame()? {
                return Ok(frame);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReadError::Timeout(timeout));
            }
            self.fill(link, deadline - now).map_err(|e| match e {
                TransportError::Timeout(_) => ReadError::Timeout(timeout),
                other => ReadError::Transport(other),
            })?;
        }
    }

    /// The next document's elements (the children of its `<data>`): how the simulated
    /// programmer reads host commands.
    pub fn next_message(
        &mut self,
        link: &mut dyn Transport,
        timeout: Duration,
    ) -> Result<Vec<Element>, ReadError> {
        let frame = self.next_frame(link, timeout)?;
        Ok(xml::parse_message(&frame)?)
    }

    fn fill(&mut self, link: &mut dyn Transport, timeout: Duration) -> Result<(), TransportError> {
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let result = link.read_stream(&mut self.buf[old..], timeout);
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        result.map(|_| ())
    }

    /// Read raw-mode data: first what is already buffered, then from the link.
    pub fn read_raw(
        &mut self,
        link: &mut dyn Transport,
        out: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, TransportError> {
        if out.is_empty() {
            return Ok(0);
        }
        let pending = &self.buf[self.start..];
        if !pending.is_empty() {
            let n = pending.len().min(out.len());
            out[..n].copy_from_slice(&pending[..n]);
            self.start += n;
            self.scanned = 0;
            self.compact();
            return Ok(n);
        }
        link.read_stream(out, timeout)
    }

    /// Fill `out` completely with raw-mode data within `timeout`. Zero-length reads (a ZLP
    /// between an ACK and its data, which WinUSB surfaces) are skipped.
    pub fn read_raw_exact(
        &mut self,
        link: &mut dyn Transport,
        out: &mut [u8],
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        let mut filled = 0;
        while filled < out.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::Timeout(timeout));
            }
            filled += self
                .read_raw(link, &mut out[filled..], left)
                .map_err(|e| match e {
                    TransportError::Timeout(_) => TransportError::Timeout(timeout),
                    other => other,
                })?;
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::memory::{pair, pair_with};
    use crate::transport::Framing;

    const T: Duration = Duration::from_millis(300);

    fn log(v: &str) -> Vec<u8> {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<data>\n<log value=\"{v}\" /></data>")
            .into_bytes()
    }

    #[test]
    fn one_read_with_two_messages_and_raw_tail() {
        let (mut host, mut dev, _c) = pair("r");
        let mut bytes = log("first");
        bytes.extend_from_slice(
            b"<?xml version=\"1.0\" ?><data><response value=\"ACK\" rawmode=\"true\" /></data>",
        );
        bytes.extend_from_slice(&[0xAA, 0xBB, 0xCC]);
        dev.write(&bytes, T).unwrap();
        let mut r = MessageReader::default();
        let m1 = r.next_message(&mut host, T).unwrap();
        assert_eq!(m1[0].attr("value"), Some("first"));
        let m2 = r.next_message(&mut host, T).unwrap();
        assert_eq!(m2[0].attr("rawmode"), Some("true"));
        assert_eq!(r.pending(), &[0xAA, 0xBB, 0xCC]);
        let mut raw = [0u8; 5];
        dev.write(&[0xDD, 0xEE], T).unwrap();
        r.read_raw_exact(&mut host, &mut raw, T).unwrap();
        assert_eq!(raw, [0xAA, 0xBB, 0xCC, 0xDD, 0xEE]);
    }

    #[test]
    fn a_message_split_across_byte_sized_reads_on_a_stream() {
        let (mut host, mut dev, _c) = pair_with("r", Framing::Stream, None);
        for b in log("split &amp; joined") {
            dev.write(&[b], T).unwrap();
        }
        let mut r = MessageReader::default();
        let m = r.next_message(&mut host, T).unwrap();
        assert_eq!(m[0].attr("value"), Some("split & joined"));
        assert!(r.pending().is_empty());
    }

    #[test]
    fn initial_pushback_is_read_first() {
        let (mut host, mut dev, _c) = pair("r");
        let whole = log("hello");
        let (head, tail) = whole.split_at(7);
        dev.write(tail, T).unwrap();
        let mut r = MessageReader::with_pushback(DEFAULT_MAX_MESSAGE, head);
        assert_eq!(
            r.next_message(&mut host, T).unwrap()[0].attr("value"),
            Some("hello")
        );
    }

    #[test]
    fn endless_message_is_bounded() {
        let (mut host, mut dev, _c) = pair("r");
        dev.write(b"<?xml version=\"1.0\" ?><data><log value=\"", T)
            .unwrap();
        dev.write(&[b'x'; 5000], T).unwrap();
        let mut r = MessageReader::new(1024);
        assert!(matches!(
            r.next_message(&mut host, T),
            Err(ReadError::TooLarge { max: 1024 })
        ));
    }

    #[test]
    fn silence_and_garbage_are_errors() {
        let (mut host, mut dev, _c) = pair("r");
        let mut r = MessageReader::default();
        assert!(matches!(
            r.next_message(&mut host, Duration::from_millis(20)),
            Err(ReadError::Timeout(_))
        ));
        dev.write(b"\x01\x00\x00\x00garbage", T).unwrap();
        assert!(matches!(
            r.next_message(&mut host, T),
            Err(ReadError::Garbage { .. })
        ));
    }

    #[test]
    fn separators_and_zero_length_packets_between_messages_are_skipped() {
        let (mut host, mut dev, _c) = pair_with("r", Framing::Packets, Some(512));
        dev.write(b"\r\n", T).unwrap();
        dev.write_zero_length(T).unwrap();
        dev.write(&log("a"), T).unwrap();
        let mut r = MessageReader::default();
        assert_eq!(
            r.next_message(&mut host, T).unwrap()[0].attr("value"),
            Some("a")
        );
    }
}
