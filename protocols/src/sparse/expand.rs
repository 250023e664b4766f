//! Expanding a sparse image to the raw image it describes, as `simg2img` and a device's
//! flash handler do.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use super::error::SparseError;
use super::reader::{ChunkKind, SparseReader};

/// Copy buffer bound: expanding never holds more than this much of the image.
pub(crate) const COPY_BUF_LEN: usize = 1 << 20;

/// What [`expand`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandSummary {
    /// Bytes of the expanded image (`total_blks * blk_sz`).
    pub expanded_len: u64,
    /// Bytes actually written (RAW and FILL); DONT_CARE ranges were skipped.
    pub bytes_written: u64,
    pub chunks: u32,
}

/// Writes the image `sparse` describes into `out`, starting at `out`'s current position.
/// RAW data is copied, FILL writes its pattern (zeros too: the target may hold old data),
/// DONT_CARE is skipped by seeking, so those bytes keep whatever `out` had — exactly what a
/// device does with each piece of a split image. CRC32 chunks are verified.
///
/// A trailing DONT_CARE does not extend `out`; use [`expand_to_file`] for a file that must end
/// up `expanded_len` long.
pub fn expand<R: Read, W: Write + Seek>(
    sparse: R,
    out: &mut W,
) -> Result<ExpandSummary, SparseError> {
    expand_reader(SparseReader::new(sparse)?, out)
}

/// [`expand`] from a reader whose header the caller has already looked at (e.g. to refuse an
/// image larger than the partition before writing anything).
pub fn expand_reader<R: Read, W: Write + Seek>(
    mut reader: SparseReader<R>,
    out: &mut W,
) -> Result<ExpandSummary, SparseError> {
    let blk_sz = reader.header().blk_sz;
    let base = out
        .stream_position()
        .map_err(SparseError::io("finding the output position"))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut pattern = PatternBuf::default();
    let mut summary = ExpandSummary {
        expanded_len: reader.expanded_len(),
        bytes_written: 0,
        chunks: 0,
    };
    // Where `out` is now, relative to `base`.
    let mut cursor = 0u64;

    while let Some(chunk) = reader.next_chunk()? {
        summary.chunks += 1;
        let at = chunk.expanded_offset(blk_sz);
        let len = chunk.expanded_len(blk_sz);
        match chunk.kind {
            ChunkKind::Raw { .. } => {
                seek_to(out, base, at, &mut cursor)?;
                if buf.is_empty() {
                    buf = vec![0u8; COPY_BUF_LEN];
                }
                loop {
                    let n = reader.read_raw(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])
                        .map_err(SparseError::io("writing the expanded image"))?;
                    cursor += n as u64;
                }
                summary.bytes_written += len;
            }
            ChunkKind::Fill { value, .. } => {
                seek_to(out, base, at, &mut cursor)?;
                pattern.write(out, value, len)?;
                cursor += len;
                summary.bytes_written += len;
            }
            ChunkKind::DontCare { .. } | ChunkKind::Crc32 { .. } => {}
        }
    }
    Ok(summary)
}

/// [`expand`] into a file from its start, then make sure the file is at least the expanded
/// length (a trailing DONT_CARE becomes a hole). Never truncates a longer file.
pub fn expand_to_file<R: Read>(sparse: R, out: &mut File) -> Result<ExpandSummary, SparseError> {
    out.seek(SeekFrom::Start(0))
        .map_err(SparseError::io("seeking the output file"))?;
    let summary = expand(sparse, out)?;
    let len = out
        .metadata()
        .map_err(SparseError::io("reading the output file's length"))?
        .len();
    if len < summary.expanded_len {
        out.set_len(summary.expanded_len)
            .map_err(SparseError::io("extending the output file"))?;
    }
    Ok(summary)
}

fn seek_to<W: Seek>(out: &mut W, base: u64, at: u64, cursor: &mut u64) -> Result<(), SparseError> {
    if *cursor != at {
        let target = base.checked_add(at).ok_or(SparseError::OutOfRange {
            offset: at,
            len: 0,
            image_len: u64::MAX - base,
        })?;
        out.seek(SeekFrom::Start(target))
            .map_err(SparseError::io("seeking in the expanded image"))?;
        *cursor = at;
    }
    Ok(())
}

/// A reusable buffer of one 32-bit pattern, rebuilt only when the value changes.
#[derive(Default)]
pub(crate) struct PatternBuf {
    value: Option<u32>,
    buf: Vec<u8>,
}

impl PatternBuf {
    /// Writes `len` bytes of the repeated little-endian `value` (`len` a multiple of 4, or a
    /// short zero tail).
    pub(crate) fn write<W: Write + ?Sized>(
        &mut self,
        out: &mut W,
        value: u32,
        len: u64,
    ) -> Result<(), SparseError> {
        let want = usize::try_from(len).unwrap_or(usize::MAX).min(COPY_BUF_LEN);
        if self.value != Some(value) || self.buf.len() < want {
            let size = want.max(self.buf.len()).next_multiple_of(4);
            self.buf = vec![0u8; size];
            if value != 0 {
                for word in self.buf.chunks_exact_mut(4) {
                    word.copy_from_slice(&value.to_le_bytes());
                }
            }
            self.value = Some(value);
        }
        let mut left = len;
        while left > 0 {
            let n = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            out.write_all(&self.buf[..n])
                .map_err(SparseError::io("writing the expanded image"))?;
            left -= n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::{expanded, image, noise, C};
    use std::io::Cursor;

    #[test]
    fn expands_into_a_fresh_buffer() {
        let chunks = [
            C::Skip(1),
            C::Raw(noise(3, 8192)),
            C::Fill(0x11223344, 2),
            C::Skip(3),
            C::Fill(0, 1),
        ];
        let bytes = image(4096, 9, &chunks);
        let mut out = Cursor::new(Vec::new());
        let s = expand(&bytes[..], &mut out).unwrap();
        assert_eq!(
            s,
            ExpandSummary {
                expanded_len: 9 * 4096,
                bytes_written: 5 * 4096,
                chunks: 5
            }
        );
        assert_eq!(out.into_inner(), expanded(4096, &chunks));
    }

    #[test]
    fn dont_care_keeps_what_the_target_had() {
        let bytes = image(4, 4, &[C::Skip(1), C::Fill(0, 1), C::Skip(2)]);
        let mut out = Cursor::new(vec![0xffu8; 16]);
        expand(&bytes[..], &mut out).unwrap();
        assert_eq!(
            out.into_inner(),
            [[0xff; 4], [0; 4], [0xff; 4], [0xff; 4]].concat()
        );
    }

    #[test]
    fn expands_relative_to_the_writers_position() {
        let bytes = image(
            4,
            3,
            &[C::Fill(0x04030201, 1), C::Skip(1), C::Raw(b"wxyz".to_vec())],
        );
        let mut out = Cursor::new(vec![0xffu8; 20]);
        out.set_position(6);
        expand(&bytes[..], &mut out).unwrap();
        let want = [
            &[0xff; 6][..],
            &[1, 2, 3, 4],
            &[0xff; 4],
            b"wxyz",
            &[0xff; 2],
        ]
        .concat();
        assert_eq!(out.into_inner(), want);
    }

    #[test]
    fn expand_to_file_sets_the_length_of_a_trailing_hole() {
        let bytes = image(4096, 5, &[C::Fill(0x01010101, 1), C::Skip(4)]);
        let mut file = tempfile::tempfile().unwrap();
        expand_to_file(&bytes[..], &mut file).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 5 * 4096);
    }

    #[test]
    fn a_corrupt_image_stops_with_an_error() {
        let mut bytes = image(4096, 2, &[C::Raw(noise(1, 4096)), C::Crc(0)]);
        bytes.truncate(bytes.len() - 2);
        let mut out = Cursor::new(Vec::new());
        assert!(expand(&bytes[..], &mut out).is_err());
    }
}
