//! Fastboot responses: one packet of at most 256 bytes starting with `OKAY`, `FAIL`, `DATA`,
//! `INFO` or `TEXT` (AOSP `fastboot` README, "Transport and Framing"), both ways:
//! [`Response::parse`] on the host, [`Response::encode`] on the (simulated) device.
//!
//! Sans-io: [`Response::parse`] checks the length before it looks at anything and never trusts
//! what the device sent.

/// The README's limit on a response packet (AOSP's `FB_RESPONSE_SZ`).
pub const MAX_RESPONSE_LEN: usize = 256;

/// The status word every response starts with.
const STATUS_LEN: usize = 4;

/// The most message text one response carries.
pub const MAX_MESSAGE_LEN: usize = MAX_RESPONSE_LEN - STATUS_LEN;

/// One response packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The command succeeded; the text is its value (e.g. a `getvar` answer).
    Okay(String),
    /// The command failed; the text is the device's reason.
    Fail(String),
    /// Ready for a data phase of this many bytes.
    Data(u32),
    /// A progress or diagnostic line; more responses follow.
    Info(String),
    /// Unformatted text (no newline implied); more responses follow.
    Text(String),
}

/// Why a response packet is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("response is {len} bytes, over the protocol's {MAX_RESPONSE_LEN}-byte limit")]
    TooLong { len: usize },
    #[error("response is {len} bytes, shorter than the 4-byte status ({bytes})")]
    TooShort { len: usize, bytes: String },
    #[error("unknown response status in {bytes} (expected OKAY, FAIL, DATA, INFO or TEXT)")]
    UnknownStatus { bytes: String },
    #[error("DATA response {bytes} does not carry exactly 8 hex digits of size")]
    BadDataSize { bytes: String },
}

/// Printable form of device bytes for error messages (at most 64 bytes shown, escaped).
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(64)];
    let mut text = format!("\"{}\"", shown.escape_ascii());
    if bytes.len() > shown.len() {
        text.push('…');
    }
    text
}

/// Device text: bootloaders often NUL-terminate (the README asks it of TEXT), so cut there;
/// bytes that are not UTF-8 are replaced rather than rejected, since a message is only shown.
fn message(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Response {
    /// The frame a device sends. A message longer than [`MAX_MESSAGE_LEN`] is cut to fit, as
    /// fastbootd's `WriteStatus` and LK's `fastboot_fail` do, rather than refused: a device owes
    /// every command an answer, a cut reason is still a valid one, and a frame over 256 bytes
    /// breaks the AOSP client's next command. The cut falls on a character boundary so the text
    /// stays UTF-8 (device messages are ASCII in practice).
    pub fn encode(&self) -> Vec<u8> {
        let (status, message): (&[u8; 4], &str) = match self {
            Response::Okay(m) => (b"OKAY", m),
            Response::Fail(m) => (b"FAIL", m),
            Response::Info(m) => (b"INFO", m),
            Response::Text(m) => (b"TEXT", m),
            Response::Data(size) => return format!("DATA{size:08x}").into_bytes(),
        };
        let mut end = message.len().min(MAX_MESSAGE_LEN);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut frame = Vec::with_capacity(STATUS_LEN + end);
        frame.extend_from_slice(status);
        frame.extend_from_slice(&message.as_bytes()[..end]);
        frame
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ResponseError> {
        if bytes.len() > MAX_RESPONSE_LEN {
            return Err(ResponseError::TooLong { len: bytes.len() });
        }
        let Some((status, rest)) = bytes.split_first_chunk::<STATUS_LEN>() else {
            return Err(ResponseError::TooShort {
                len: bytes.len(),
                bytes: show_bytes(bytes),
            });
        };
        match status {
            b"OKAY" => Ok(Response::Okay(message(rest))),
            b"FAIL" => Ok(Response::Fail(message(rest))),
            b"INFO" => Ok(Response::Info(message(rest))),
            b"TEXT" => Ok(Response::Text(message(rest))),
            b"DATA" => parse_data_size(rest).map(Response::Data).ok_or_else(|| {
                ResponseError::BadDataSize {
                    bytes: show_bytes(bytes),
                }
            }),
            _ => Err(ResponseError::UnknownStatus {
                bytes: show_bytes(bytes),
            }),
        }
    }
}

/// Exactly 8 hex digits, optionally NUL-terminated (some bootloaders send the C string's NUL).
fn parse_data_size(rest: &[u8]) -> Option<u32> {
    let digits = match rest.iter().position(|&b| b == 0) {
        Some(end) if rest[end..].iter().all(|&b| b == 0) => &rest[..end],
        Some(_) => return None,
        None => rest,
    };
    if digits.len() != 8 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_256_byte_info() {
        let mut packet = b"INFO".to_vec();
        packet.extend_from_slice(&[b'x'; 252]);
        assert_eq!(
            Response::parse(&packet).unwrap(),
            Response::Info("x".repeat(252))
        );
    }

    #[test]
    fn rejects_malformed_responses_without_panicking() {
        assert!(matches!(
            Response::parse(b"OKA"),
            Err(ResponseError::TooShort { len: 3, .. })
        ));
        assert!(matches!(
            Response::parse(b""),
            Err(ResponseError::TooShort { len: 0, .. })
        ));
        for bad in [
            &b"okay"[..],
            b"HTTP/1.1 200 OK",
            b"\x00\x00\x00\x00",
            b"DAT\xff1234",
        ] {
            assert!(
                matches!(
                    Response::parse(bad),
                    Err(ResponseError::UnknownStatus { .. })
                ),
                "{bad:?}"
            );
        }
        for bad in [
            &b"DATA00a0"[..],
            b"DATA",
            b"DATA0000123g",
            b"DATA000012345",
            b"DATA+0001234",
            b"DATA 0001234",
            b"DATA0000\x0012",
        ] {
            assert!(
                matches!(Response::parse(bad), Err(ResponseError::BadDataSize { .. })),
                "{bad:?}"
            );
        }
        let long = [b'I'; 257];
        assert_eq!(
            Response::parse(&long),
            Err(ResponseError::TooLong { len: 257 })
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small xorshift generator: deterministic, no extra dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let prefixes: [&[u8]; 6] = [b"", b"OKAY", b"FAIL", b"DATA", b"INFO", b"TEXT"];
        for round in 0..20_000 {
            let mut packet = prefixes[round % prefixes.len()].to_vec();
            let len = (next() % 300) as usize;
            packet.extend((0..len).map(|_| next() as u8));
            let parsed = Response::parse(&packet);
            if packet.len() > MAX_RESPONSE_LEN {
                assert!(matches!(parsed, Err(ResponseError::TooLong { .. })));
            }
        }
    }

    #[test]
    fn error_text_shows_escaped_device_bytes() {
        let err = Response::parse(b"\x1b[2Jhello").unwrap_err();
        assert!(err.to_string().contains("\\x1b[2Jhello"), "{err}");
    }
}
