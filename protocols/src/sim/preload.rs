//! A phone's past: partitions that already hold something when it arrives (an image file, raw
//! or Android sparse, or a byte repeated), written straight into its storage as a factory, an
//! earlier flash or a repair shop left it.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::phone::Phone;
use super::storage::{seek_within, StorageError};
use crate::sparse::{self, SparseError, FILE_HEADER_LEN};

/// Why a partition could not be preloaded.
#[derive(Debug, thiserror::Error)]
pub enum PreloadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{len} bytes do not fit {partition} ({size} bytes)")]
    TooLarge {
        partition: String,
        len: u64,
        size: u64,
    },
    #[error("reading the image: {0}")]
    Read(#[source] io::Error),
    #[error("sparse image: {0}")]
    Sparse(#[from] SparseError),
}

const CHUNK: usize = 1 << 20;

/// Write an image into `partition` from its first byte: an Android sparse image is expanded
/// (DONT_CARE ranges left as they are), anything else copied raw. An image too large for the
/// partition is refused before anything is written. Returns the bytes it spans.
pub fn install_image(
    phone: &Phone,
    partition: &str,
    mut image: impl Read + Seek,
) -> Result<u64, PreloadError> {
    let size = partition_size(phone, partition)?;
    let file_len = image.seek(SeekFrom::End(0)).map_err(PreloadError::Read)?;
    image.rewind().map_err(PreloadError::Read)?;
    let mut head = [0u8; FILE_HEADER_LEN];
    let n = read_full(&mut image, &mut head)?;
    if sparse::is_sparse(&head[..n]) {
        let header = sparse::SparseHeader::parse(&head[..n])?;
        let len = header.expanded_len();
        if len > size {
            return Err(too_large(partition, len, size));
        }
        let mut writer = PartitionWriter {
            phone,
            partition,
            size,
            pos: 0,
        };
        sparse::expand(io::Cursor::new(head).chain(image), &mut writer)?;
        return Ok(len);
    }
    if file_len > size {
        return Err(too_large(partition, file_len, size));
    }
    let mut pos = 0u64;
    let mut buf = vec![0u8; CHUNK];
    buf[..n].copy_from_slice(&head[..n]);
    let mut filled = n;
    loop {
        filled += read_full(&mut image, &mut buf[filled..])?;
        if filled == 0 {
            return Ok(pos);
        }
        let end = pos + filled as u64;
        if end > size {
            // The file grew while it was read.
            return Err(too_large(partition, end, size));
        }
        phone.write_partition(partition, pos, &buf[..filled])?;
        pos = end;
        if filled < buf.len() {
            return Ok(pos);
        }
        filled = 0;
    }
}

/// Fill `len` bytes of `partition` from its start with `byte` (the whole partition if `None`).
pub fn fill(
    phone: &Phone,
    partition: &str,
    byte: u8,
    len: Option<u64>,
) -> Result<(), PreloadError> {
    let size = partition_size(phone, partition)?;
    let len = len.unwrap_or(size);
    if len > size {
        return Err(too_large(partition, len, size));
    }
    let buf = vec![byte; CHUNK];
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(CHUNK as u64) as usize;
        phone.write_partition(partition, pos, &buf[..n])?;
        pos += n as u64;
    }
    Ok(())
}

fn partition_size(phone: &Phone, partition: &str) -> Result<u64, PreloadError> {
    Ok(phone
        .lock()
        .storage
        .partition(partition)
        .ok_or_else(|| StorageError::NoSuchPartition(partition.to_string()))?
        .size_bytes)
}

fn too_large(partition: &str, len: u64, size: u64) -> PreloadError {
    PreloadError::TooLarge {
        partition: partition.to_string(),
        len,
        size,
    }
}

fn read_full(source: &mut impl Read, buf: &mut [u8]) -> Result<usize, PreloadError> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PreloadError::Read(e)),
        }
    }
    Ok(filled)
}

/// A partition as a `Write + Seek` target for the sparse expander.
struct PartitionWriter<'a> {
    phone: &'a Phone,
    partition: &'a str,
    size: u64,
    pos: u64,
}

impl Write for PartitionWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self
            .pos
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "write past the end of {} ({} bytes)",
                    self.partition, self.size
                ),
            ));
        }
        self.phone
            .write_partition(self.partition, self.pos, data)
            .map_err(io::Error::other)?;
        self.pos += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for PartitionWriter<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_within(self.pos, self.size, to)?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Phone {
        Phone::builder()
            .slots(&[])
            .partition("system", 1 << 20)
            .build()
            .unwrap()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 + 1).collect()
    }

    #[test]
    fn raw_and_sparse_images_land_as_the_flash_would_leave_them() {
        let raw = pattern(300_000);
        let p = phone();
        assert_eq!(
            install_image(&p, "system", io::Cursor::new(&raw)).unwrap(),
            300_000
        );
        let mut back = vec![0u8; raw.len()];
        p.read_partition("system", 0, &mut back).unwrap();
        assert!(back == raw);

        // A sparse image: two RAW blocks, one FILL block of 0x11, one DONT_CARE block (what
        // was there stays), made from the format's own headers.
        use crate::sparse::{
            ChunkHeader, SparseHeader, CHUNK_TYPE_DONT_CARE, CHUNK_TYPE_FILL, CHUNK_TYPE_RAW,
        };
        let data = pattern(8192);
        let mut image = SparseHeader::new(4096, 4, 3).encode().to_vec();
        image.extend(ChunkHeader::new(CHUNK_TYPE_RAW, 2, 12 + 8192).encode());
        image.extend(&data);
        image.extend(ChunkHeader::new(CHUNK_TYPE_FILL, 1, 16).encode());
        image.extend(0x1111_1111u32.to_le_bytes());
        image.extend(ChunkHeader::new(CHUNK_TYPE_DONT_CARE, 1, 12).encode());
        let p = phone();
        fill(&p, "system", 0x77, Some(4 * 4096)).unwrap();
        assert_eq!(
            install_image(&p, "system", io::Cursor::new(&image)).unwrap(),
            4 * 4096
        );
        let mut back = vec![0u8; 4 * 4096];
        p.read_partition("system", 0, &mut back).unwrap();
        assert!(back[..8192] == data[..]);
        assert!(back[8192..12288].iter().all(|&b| b == 0x11));
        assert!(back[12288..].iter().all(|&b| b == 0x77), "DONT_CARE kept");
    }

    #[test]
    fn too_large_or_unknown_is_refused_before_anything_is_written() {
        let p = phone();
        let err = install_image(&p, "system", io::Cursor::new(pattern((1 << 20) + 1))).unwrap_err();
        assert!(err.to_string().contains("do not fit system"), "{err}");
        let mut head = [0u8; 4];
        p.read_partition("system", 0, &mut head).unwrap();
        assert_eq!(head, [0; 4], "nothing written");
        assert!(matches!(
            install_image(&p, "vendor", io::Cursor::new([1u8])),
            Err(PreloadError::Storage(StorageError::NoSuchPartition(_)))
        ));
        assert!(fill(&p, "system", 1, Some(2 << 20)).is_err());
        fill(&p, "system", 0xAB, Some(10_000)).unwrap();
        let mut back = [0u8; 2];
        p.read_partition("system", 9_999, &mut back).unwrap();
        assert_eq!(back, [0xAB, 0]);
    }
}
