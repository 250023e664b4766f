//! Writing sparse images chunk by chunk, with the header's counts enforced: the writer refuses
//! a chunk that would exceed the declared chunk or block totals, and `finish` refuses an image
//! that falls short of them, so what it produces always passes libsparse's checks.

use std::io::{self, Read, Write};

use super::checksum::RunningCrc;
use super::error::SparseError;
use super::expand::{PatternBuf, COPY_BUF_LEN};
use super::format::{
    ChunkHeader, SparseHeader, CHUNK_HEADER_LEN, CHUNK_TYPE_CRC32, CHUNK_TYPE_DONT_CARE,
    CHUNK_TYPE_FILL, CHUNK_TYPE_RAW, FILE_HEADER_LEN,
};

/// Streams a sparse image to `out`. The totals are declared up front because the header comes
/// first and `out` need not be seekable (a fastboot download, a socket).
pub struct SparseWriter<W: Write> {
    out: W,
    header: SparseHeader,
    chunks_written: u32,
    blocks_written: u64,
    bytes_written: u64,
    crc: Option<RunningCrc>,
    buf: Vec<u8>,
    zeros: PatternBuf,
}

impl<W: Write> SparseWriter<W> {
    /// Writes the header of an image of `total_blocks` blocks in exactly `total_chunks` chunks.
    pub fn new(
        out: W,
        block_size: u32,
        total_blocks: u32,
        total_chunks: u32,
    ) -> Result<Self, SparseError> {
        Self::create(out, block_size, total_blocks, total_chunks, false)
    }

    /// Like [`SparseWriter::new`], and also keeps the running CRC32 that
    /// [`SparseWriter::write_crc32`] needs (costs hashing every byte written).
    pub fn with_crc(
        out: W,
        block_size: u32,
        total_blocks: u32,
        total_chunks: u32,
    ) -> Result<Self, SparseError> {
        Self::create(out, block_size, total_blocks, total_chunks, true)
    }

    fn create(
        mut out: W,
        block_size: u32,
        total_blocks: u32,
        total_chunks: u32,
        crc: bool,
    ) -> Result<Self, SparseError> {
        let header = SparseHeader::new(block_size, total_blocks, total_chunks);
        header.validate()?;
        out.write_all(&header.encode())
            .map_err(SparseError::io("writing the sparse header"))?;
        Ok(SparseWriter {
            out,
            header,
            chunks_written: 0,
            blocks_written: 0,
            bytes_written: FILE_HEADER_LEN as u64,
            crc: crc.then(RunningCrc::new),
            buf: Vec::new(),
            zeros: PatternBuf::default(),
        })
    }

    pub fn header(&self) -> &SparseHeader {
        &self.header
    }

    /// Bytes of sparse image written so far (header included).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Blocks of the expanded image covered so far.
    pub fn blocks_written(&self) -> u64 {
        self.blocks_written
    }

    /// A RAW chunk holding `data`, zero-padded to whole blocks (as libsparse pads a partial
    /// last block). Empty data is refused.
    pub fn write_raw(&mut self, data: &[u8]) -> Result<(), SparseError> {
        self.write_raw_from(&mut &data[..], data.len() as u64)
    }

    /// A RAW chunk of `len` bytes streamed from `source` (bounded buffer), zero-padded to whole
    /// blocks. A source that ends early is [`SparseError::SourceTruncated`] (offset counted
    /// from where this chunk's data began in `source`).
    pub fn write_raw_from<R: Read + ?Sized>(
        &mut self,
        source: &mut R,
        len: u64,
    ) -> Result<(), SparseError> {
        let padded = self.begin_raw(len)?;
        if self.buf.is_empty() {
            self.buf = vec![0u8; COPY_BUF_LEN.min(usize::try_from(padded).unwrap_or(COPY_BUF_LEN))];
        }
        let mut copied = 0u64;
        while copied < len {
            let want = self
                .buf
                .len()
                .min(usize::try_from(len - copied).unwrap_or(usize::MAX));
            let n = match source.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(SparseError::SourceTruncated {
                        doing: "copying RAW data",
                        offset: copied,
                    })
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(SparseError::Io {
                        doing: "reading RAW data from the source",
                        source,
                    })
                }
            };
            let chunk = &self.buf[..n];
            self.out
                .write_all(chunk)
                .map_err(SparseError::io("writing a RAW chunk"))?;
            if let Some(crc) = &mut self.crc {
                crc.update(chunk);
            }
            copied += n as u64;
        }
        self.end_raw(len, padded)
    }

    /// A RAW chunk of `len` bytes that `copy(out, len)` writes to the output itself, for an
    /// output that can read its source straight into its own buffer (a fastboot download),
    /// which spares the copy through this writer's buffer. `copy` must write exactly `len`
    /// bytes; the writer pads to whole blocks. Not for a writer made [`SparseWriter::with_crc`]:
    /// the CRC needs to see the data.
    pub fn write_raw_by<F>(&mut self, len: u64, copy: F) -> Result<(), SparseError>
    where
        F: FnOnce(&mut W, u64) -> Result<(), SparseError>,
    {
        if self.crc.is_some() {
            return Err(SparseError::Writer(
                "a writer keeping a CRC32 must see RAW data: use write_raw_from".into(),
            ));
        }
        let padded = self.begin_raw(len)?;
        copy(&mut self.out, len)?;
        self.end_raw(len, padded)
    }

    /// Checks `len` and writes the RAW chunk's header; the padded data length.
    fn begin_raw(&mut self, len: u64) -> Result<u64, SparseError> {
        let blk = u64::from(self.header.blk_sz);
        if len == 0 {
            return Err(SparseError::Writer(
                "a RAW chunk needs at least one byte".into(),
            ));
        }
        let blocks = len.div_ceil(blk);
        let padded = blocks * blk;
        let total_sz = u32::try_from(padded + CHUNK_HEADER_LEN as u64).map_err(|_| {
            SparseError::Writer(format!(
                "RAW chunk of {len} bytes does not fit a 32-bit chunk size"
            ))
        })?;
        self.begin_chunk(CHUNK_TYPE_RAW, blocks, total_sz)?;
        Ok(padded)
    }

    /// Zero-pads a RAW chunk's last block.
    fn end_raw(&mut self, len: u64, padded: u64) -> Result<(), SparseError> {
        let pad = padded - len; // < one block
        if pad > 0 {
            if let Some(crc) = &mut self.crc {
                crc.update_repeated(0, pad / 4);
                crc.update(&[0u8; 3][..(pad % 4) as usize]);
            }
            self.zeros.write(&mut self.out, 0, pad)?;
        }
        self.bytes_written += padded;
        Ok(())
    }

    /// A FILL chunk: `value`'s little-endian bytes repeated over `blocks` blocks.
    pub fn write_fill(&mut self, value: u32, blocks: u32) -> Result<(), SparseError> {
        self.begin_chunk(
            CHUNK_TYPE_FILL,
            u64::from(blocks),
            (CHUNK_HEADER_LEN + 4) as u32,
        )?;
        self.out
            .write_all(&value.to_le_bytes())
            .map_err(SparseError::io("writing a FILL chunk"))?;
        if let Some(crc) = &mut self.crc {
            crc.update_repeated(value, u64::from(blocks) * u64::from(self.header.blk_sz) / 4);
        }
        self.bytes_written += 4;
        Ok(())
    }

    /// A DONT_CARE chunk over `blocks` blocks.
    pub fn write_dont_care(&mut self, blocks: u32) -> Result<(), SparseError> {
        self.begin_chunk(
            CHUNK_TYPE_DONT_CARE,
            u64::from(blocks),
            CHUNK_HEADER_LEN as u32,
        )?;
        if let Some(crc) = &mut self.crc {
            crc.update_repeated(0, u64::from(blocks) * u64::from(self.header.blk_sz) / 4);
        }
        Ok(())
    }

    /// A CRC32 chunk with the CRC of everything written so far (needs [`SparseWriter::with_crc`]).
    pub fn write_crc32(&mut self) -> Result<(), SparseError> {
        let value = match &self.crc {
            Some(crc) => crc.value(),
            None => {
                return Err(SparseError::Writer(
                    "CRC32 chunk requested from a writer made without with_crc".into(),
                ))
            }
        };
        self.begin_chunk(CHUNK_TYPE_CRC32, 0, (CHUNK_HEADER_LEN + 4) as u32)?;
        self.out
            .write_all(&value.to_le_bytes())
            .map_err(SparseError::io("writing a CRC32 chunk"))?;
        self.bytes_written += 4;
        Ok(())
    }

    /// Checks that the declared totals were met, flushes and returns the output.
    pub fn finish(mut self) -> Result<W, SparseError> {
        if self.chunks_written != self.header.total_chunks
            || self.blocks_written != u64::from(self.header.total_blks)
        {
            return Err(SparseError::Writer(format!(
                "image declared {} chunks / {} blocks but {} / {} were written",
                self.header.total_chunks,
                self.header.total_blks,
                self.chunks_written,
                self.blocks_written
            )));
        }
        self.out
            .flush()
            .map_err(SparseError::io("flushing the sparse image"))?;
        Ok(self.out)
    }

    fn begin_chunk(
        &mut self,
        chunk_type: u16,
        blocks: u64,
        total_sz: u32,
    ) -> Result<(), SparseError> {
        if self.chunks_written >= self.header.total_chunks {
            return Err(SparseError::Writer(format!(
                "more chunks than the {} declared",
                self.header.total_chunks
            )));
        }
        let end = self.blocks_written + blocks;
        if end > u64::from(self.header.total_blks) {
            return Err(SparseError::Writer(format!(
                "chunk would end at block {end}, past the {} declared",
                self.header.total_blks
            )));
        }
        let chunk_sz = blocks as u32; // <= total_blks, a u32
        self.out
            .write_all(&ChunkHeader::new(chunk_type, chunk_sz, total_sz).encode())
            .map_err(SparseError::io("writing a chunk header"))?;
        self.chunks_written += 1;
        self.blocks_written = end;
        self.bytes_written += CHUNK_HEADER_LEN as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::{expanded, image, noise, C};
    use crate::sparse::SparseReader;

    #[test]
    fn write_raw_by_lets_the_output_write_the_data_and_pads_it() {
        let mut by = SparseWriter::new(Vec::new(), 4096, 2, 1).unwrap();
        by.write_raw_by(5000, |out, len| {
            out.extend(std::iter::repeat_n(0xab, len as usize));
            Ok(())
        })
        .unwrap();
        let by = by.finish().unwrap();
        let mut from = SparseWriter::new(Vec::new(), 4096, 2, 1).unwrap();
        from.write_raw_from(&mut &[0xabu8; 5000][..], 5000).unwrap();
        assert_eq!(by, from.finish().unwrap());
        assert_eq!(by.len(), 28 + 12 + 8192);
        let mut crc = SparseWriter::with_crc(Vec::new(), 4096, 2, 2).unwrap();
        assert!(matches!(
            crc.write_raw_by(10, |_, _| Ok(())),
            Err(SparseError::Writer(_))
        ));
    }

    #[test]
    fn writes_the_bytes_a_hand_built_image_has() {
        let data = noise(5, 8192);
        let mut w = SparseWriter::new(Vec::new(), 4096, 6, 3).unwrap();
        w.write_dont_care(1).unwrap();
        w.write_raw(&data).unwrap();
        w.write_fill(0xcafef00d, 3).unwrap();
        assert_eq!(w.bytes_written(), 28 + 12 + 12 + 8192 + 16);
        let got = w.finish().unwrap();
        assert_eq!(
            got,
            image(4096, 6, &[C::Skip(1), C::Raw(data), C::Fill(0xcafef00d, 3)])
        );
    }

    #[test]
    fn pads_a_partial_block_and_writes_a_checkable_crc() {
        let mut w = SparseWriter::with_crc(Vec::new(), 16, 4, 4).unwrap();
        w.write_raw(b"0123456789abcdefXYZ").unwrap(); // 19 bytes -> 2 blocks
        w.write_fill(7, 1).unwrap();
        w.write_dont_care(1).unwrap();
        w.write_crc32().unwrap();
        let bytes = w.finish().unwrap();
        let chunks = [
            C::Raw(b"0123456789abcdefXYZ\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec()),
            C::Fill(7, 1),
            C::Skip(1),
        ];
        let mut expect = expanded(16, &chunks);
        let crc = crate::sparse::testutil::crc(&expect);
        assert_eq!(bytes[bytes.len() - 4..], crc.to_le_bytes());
        // And our reader agrees (it verifies the CRC chunk).
        let mut r = SparseReader::new(&bytes[..]).unwrap();
        let mut raw = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            if matches!(c.kind, crate::sparse::ChunkKind::Raw { .. }) {
                r.raw_data().read_to_end(&mut raw).unwrap();
            }
        }
        expect.truncate(32);
        assert_eq!(raw, expect);
    }

    #[test]
    fn refuses_to_break_the_declared_totals() {
        let mut w = SparseWriter::new(Vec::new(), 4096, 2, 1).unwrap();
        assert!(w.write_fill(0, 3).is_err());
        w.write_fill(0, 2).unwrap();
        assert!(w.write_dont_care(0).is_err());
        w.finish().unwrap();
        let w = SparseWriter::new(Vec::new(), 4096, 2, 1).unwrap();
        assert!(w.finish().is_err());
        assert!(SparseWriter::new(Vec::new(), 4095, 2, 1).is_err());
        let mut w = SparseWriter::new(Vec::new(), 4096, 2, 1).unwrap();
        assert!(w.write_crc32().is_err());
        assert!(w.write_raw(b"").is_err());
        assert!(matches!(
            w.write_raw_from(&mut &b"short"[..], 4096),
            Err(SparseError::SourceTruncated { offset: 5, .. })
        ));
    }
}
