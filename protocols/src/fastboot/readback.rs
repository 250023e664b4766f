//! Reading back what a device holds: partition ranges through `fetch:` (chunked by the device's
//! `max-fetch-size`, as the AOSP client does) and the vendor digest `oem sha256`.

use std::io::Write;

use sha2::{Digest, Sha256};

use super::client::Fastboot;
use super::error::FastbootError;
use super::variable::Variable;
use super::vars::parse_size;
use crate::progress::ProgressEvent;
use crate::transport::Transport;

/// Fetch chunk when the device does not report `max-fetch-size`.
pub const DEFAULT_FETCH_CHUNK: u64 = 64 << 20;

impl<T: Transport> Fastboot<T> {
    /// `max-fetch-size`, or [`DEFAULT_FETCH_CHUNK`] when the device does not say; never more
    /// than a DATA response can announce.
    pub fn max_fetch_size(&mut self) -> Result<u64, FastbootError> {
        let reported = self
            .getvar_optional(Variable::MaxFetchSize)?
            .and_then(|v| parse_size(&v))
            .filter(|&n| n > 0);
        Ok(reported
            .unwrap_or(DEFAULT_FETCH_CHUNK)
            .min(u64::from(u32::MAX)))
    }

    /// Read `length` bytes of `partition` from `offset` (to the partition's end when `length`
    /// is `None`) into `out`, one `fetch:` per `max-fetch-size` chunk. `partition` is the full
    /// name (with slot suffix). Returns the bytes written.
    pub fn fetch_partition(
        &mut self,
        partition: &str,
        offset: u64,
        length: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64, FastbootError> {
        let length = match length {
            Some(length) => length,
            None => {
                let size = self.partition_size(partition)?;
                size.checked_sub(offset).ok_or_else(|| {
                    FastbootError::Unsupported(format!(
                        "offset {offset} is past the end of `{partition}` ({size} bytes)"
                    ))
                })?
            }
        };
        let chunk = self.max_fetch_size()?;
        let step = format!("fetch {partition}");
        self.progress().event(ProgressEvent::StepStarted {
            step: &step,
            total_bytes: length,
        });
        let mut done = 0u64;
        while done < length {
            let size = (length - done).min(chunk);
            let start = offset.checked_add(done).ok_or_else(|| {
                FastbootError::Unsupported(format!("range of `{partition}` overflows 64 bits"))
            })?;
            // `size` ≤ chunk ≤ u32::MAX by construction.
            let size = u32::try_from(size).unwrap_or(u32::MAX);
            done += self.fetch(partition, start, size, out)?;
        }
        self.progress()
            .event(ProgressEvent::StepFinished { step: &step });
        Ok(done)
    }

    /// Fetch a range (to the partition's end when `length` is `None`) and hash it on the host
    /// as it streams: (SHA-256, bytes read). Nothing is kept in memory.
    pub fn fetch_sha256(
        &mut self,
        partition: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<([u8; 32], u64), FastbootError> {
        let mut hasher = HashingWriter(Sha256::new());
        let bytes = self.fetch_partition(partition, offset, length, &mut hasher)?;
        Ok((hasher.0.finalize().into(), bytes))
    }

    /// The vendor digest command `oem sha256 PART [OFFSET LENGTH]`: the device hashes its own
    /// storage and answers the hex digest in an INFO line.
    pub fn oem_sha256(
        &mut self,
        partition: &str,
        range: Option<(u64, u64)>,
    ) -> Result<[u8; 32], FastbootError> {
        let args = match range {
            Some((offset, length)) => format!("sha256 {partition} {offset} {length}"),
            None => format!("sha256 {partition}"),
        };
        let reply = self.oem(&args)?;
        let found = reply
            .messages
            .iter()
            .chain(std::iter::once(&reply.value))
            .flat_map(|line| line.split(|c: char| !c.is_ascii_hexdigit()))
            .find(|word| word.len() == 64);
        let mut digest = [0u8; 32];
        match found.map(|hex_text| hex::decode_to_slice(hex_text, &mut digest)) {
            Some(Ok(())) => Ok(digest),
            _ => Err(FastbootError::Unsupported(format!(
                "`oem {args}` answered no SHA-256 digest (device said: {:?}); this device may \
                 not support the digest command, verify by fetch instead",
                reply.messages
            ))),
        }
    }
}

struct HashingWriter(Sha256);

impl Write for HashingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.update(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastboot::client::tests::{scripted, send, Step::*};

    #[test]
    fn fetch_is_chunked_by_max_fetch_size() {
        let data: Vec<u8> = (0..0x2800u32).map(|i| (i % 253) as u8).collect();
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:partition-size:boot_a"),
            send(b"OKAY0x2800"),
            Expect(b"getvar:max-fetch-size"),
            send(b"OKAY0x1000"),
            Expect(b"fetch:boot_a:0x00000000:0x00001000"),
            send(b"DATA00001000"),
            Send(data[..0x1000].to_vec()),
            send(b"OKAY"),
            Expect(b"fetch:boot_a:0x00001000:0x00001000"),
            send(b"DATA00001000"),
            Send(data[0x1000..0x2000].to_vec()),
            send(b"OKAY"),
            Expect(b"fetch:boot_a:0x00002000:0x00000800"),
            send(b"DATA00000800"),
            Send(data[0x2000..].to_vec()),
            send(b"OKAY"),
        ]);
        let mut fb = Fastboot::new(link);
        let mut out = Vec::new();
        assert_eq!(
            fb.fetch_partition("boot_a", 0, None, &mut out).unwrap(),
            0x2800
        );
        assert_eq!(out, data);
        drop(fb);
        dev.join().unwrap();
    }

    #[test]
    fn fetch_sha256_hashes_the_streamed_range() {
        let data = vec![7u8; 3000];
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:max-fetch-size"),
            send(b"FAILunknown variable"),
            Expect(b"fetch:system_a:0x00000200:0x00000bb8"),
            send(b"DATA00000bb8"),
            Send(data.clone()),
            send(b"OKAY"),
        ]);
        let mut fb = Fastboot::new(link);
        let (digest, bytes) = fb.fetch_sha256("system_a", 512, Some(3000)).unwrap();
        assert_eq!(bytes, 3000);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
        drop(fb);
        dev.join().unwrap();
    }

    #[test]
    fn oem_sha256_finds_the_hex_digest() {
        let hex_digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let (link, dev, _c) = scripted(vec![
            Expect(b"oem sha256 system_a 4096 8192"),
            Send(format!("INFOsha256: {hex_digest}").into_bytes()),
            send(b"OKAY"),
            Expect(b"oem sha256 vendor_a"),
            send(b"INFOunknown oem command"),
            send(b"OKAY"),
        ]);
        let mut fb = Fastboot::new(link);
        let digest = fb.oem_sha256("system_a", Some((4096, 8192))).unwrap();
        assert_eq!(hex::encode(digest), hex_digest);
        assert!(matches!(
            fb.oem_sha256("vendor_a", None),
            Err(FastbootError::Unsupported(_))
        ));
        drop(fb);
        dev.join().unwrap();
    }
}
