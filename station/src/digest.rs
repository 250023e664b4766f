//! SHA-256 digests as the manifests, the journal and the reports spell them.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// A SHA-256 digest. Displayed and parsed as 64 lowercase hex digits (the `sha256sum` spelling).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

/// Why a string is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    #[error("expected 64 hex digits, found {0} characters")]
    Length(usize),
    #[error("`{0}` is not a hex digit")]
    NotHex(char),
}

impl Sha256Digest {
    /// Parses 64 hex digits (either case; surrounding whitespace is not accepted).
    pub fn parse(text: &str) -> Result<Self, DigestParseError> {
        let chars = text.chars().count();
        if chars != 64 {
            return Err(DigestParseError::Length(chars));
        }
        if let Some(bad) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(DigestParseError::NotHex(bad));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| DigestParseError::Length(chars))?;
        Ok(Self(bytes))
    }

    /// Digest of a byte slice (small inputs: manifests, test data).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn from_hasher(hasher: Sha256) -> Self {
        Self(hasher.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, for sentences meant for people (the journal keeps all 64).
    pub fn short(&self) -> String {
        let mut text = self.to_hex();
        text.truncate(12);
        text
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl std::str::FromStr for Sha256Digest {
    type Err = DigestParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Size of the buffer used when streaming a file through SHA-256: large enough that syscalls
/// cost nothing next to the hash, small enough to stay in cache.
pub const HASH_CHUNK: usize = 256 * 1024;

/// Streams `reader` to its end through SHA-256; returns the digest and the byte count.
pub fn hash_stream(mut reader: impl Read) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; HASH_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buffer.get(..n).unwrap_or(&[]);
        hasher.update(chunk);
        total = total.saturating_add(n as u64);
    }
    Ok((Sha256Digest::from_hasher(hasher), total))
}

/// A reader that hashes every byte it hands out, so a parser can walk a file while it is
/// hashed in the same pass.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the input through the hash; returns the digest and the byte count.
    pub fn finish(mut self) -> io::Result<(Sha256Digest, u64)> {
        let mut buffer = vec![0u8; HASH_CHUNK];
        loop {
            match self.read(&mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((Sha256Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = buf.get(..n).unwrap_or(&[]);
        self.hasher.update(chunk);
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_sha256sum_spelling() {
        let digest = Sha256Digest::parse(EMPTY).unwrap();
        assert_eq!(digest, Sha256Digest::of_bytes(b""));
        assert_eq!(digest.to_string(), EMPTY);
        assert_eq!(digest.short(), "e3b0c44298fc");
        let upper = EMPTY.to_ascii_uppercase();
        assert_eq!(Sha256Digest::parse(&upper).unwrap(), digest);
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert_eq!(Sha256Digest::parse("abc"), Err(DigestParseError::Length(3)));
        let mut bad = EMPTY.to_string();
        bad.replace_range(10..11, "g");
        assert_eq!(
            Sha256Digest::parse(&bad),
            Err(DigestParseError::NotHex('g'))
        );
        // 64 characters but multi-byte: counted as characters, refused as non-hex.
        let wide = "é".repeat(64);
        assert_eq!(
            Sha256Digest::parse(&wide),
            Err(DigestParseError::NotHex('é'))
        );
    }

    #[test]
    fn a_hashing_reader_hashes_what_was_read_and_the_rest() {
        let data: Vec<u8> = (0..HASH_CHUNK * 2 + 5).map(|i| i as u8).collect();
        let mut reader = HashingReader::new(&data[..]);
        let mut head = [0u8; 1000];
        reader.read_exact(&mut head).unwrap();
        let (digest, n) = reader.finish().unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(digest, Sha256Digest::of_bytes(&data));
    }

    #[test]
    fn streams_in_chunks() {
        let data = vec![0x5au8; HASH_CHUNK * 2 + 17];
        let (digest, n) = hash_stream(&data[..]).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(digest, Sha256Digest::of_bytes(&data));
    }
}
