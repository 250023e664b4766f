//! Random access to one partition through `<read>`: what a verifier needs to find one file in a
//! filesystem (an ext4 or erofs reader asking for a superblock, an inode, some blocks) or a
//! logical partition inside `super`, without reading the partition whole.
//!
//! `<read>` addresses whole sectors of a LUN, so a byte range is rounded out to the sectors
//! that hold it; the bytes outside the range are read and dropped, never buffered beyond one
//! read's data. A range is first checked against the partition (the GPT entry it was found
//! by), and one `<read>` asks for at most [`MAX_READ_BYTES`], so a large request becomes a
//! bounded run of commands. Every command honours the session's stop request before it is
//! sent (and between data chunks, in [`Firehose::read_sectors`]).

use std::io::{self, Write};

use super::client::Firehose;
use super::gpt_lookup::PartitionLocation;
use super::FirehoseError;
use crate::transport::Transport;

/// The most one `<read>` asks for: the payload size programmers offer (1 MiB), so a read costs
/// the device what a program chunk does.
pub const MAX_READ_BYTES: u64 = 1 << 20;

/// A partition found on the device (by GPT label), read at byte offsets. Borrows the session,
/// which stays usable after any error but a link failure.
pub struct PartitionReader<'a, T: Transport> {
    firehose: &'a mut Firehose<T>,
    location: PartitionLocation,
    bytes_read: u64,
    reads: u64,
}

impl<'a, T: Transport> PartitionReader<'a, T> {
    pub fn new(firehose: &'a mut Firehose<T>, location: PartitionLocation) -> Self {
        PartitionReader {
            firehose,
            location,
            bytes_read: 0,
            reads: 0,
        }
    }

    pub fn location(&self) -> &PartitionLocation {
        &self.location
    }

    /// The partition's size in bytes.
    pub fn size(&self) -> u64 {
        self.location.size_bytes()
    }

    /// Bytes that crossed the link so far (whole sectors).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// `<read>` commands sent so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Fill `buf` from byte `offset` of the partition. A range that does not lie inside the
    /// partition is refused before anything is sent ([`FirehoseError::PastPartitionEnd`]).
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), FirehoseError> {
        if buf.is_empty() {
            return Ok(());
        }
        let size = self.size();
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(FirehoseError::PastPartitionEnd {
                label: self.location.partition.name.clone(),
                offset,
                len,
                size,
            });
        }
        let sector = self.location.sector_size as u64;
        // Whole sectors per command, at least one.
        let per_read = (MAX_READ_BYTES / sector).max(1);
        let mut done = 0u64;
        while done < len {
            let at = offset + done;
            let first = at / sector;
            let skip = at - first * sector;
            let want = (len - done).min(per_read * sector - skip);
            let sectors = (skip + want).div_ceil(sector);
            if self.firehose.progress.stop_requested() {
                return Err(FirehoseError::Stopped {
                    link: self.firehose.describe(),
                    command: format!("read {} bytes {at}+{want}", self.location.partition.name),
                });
            }
            let start = done as usize;
            let mut window = Window {
                skip,
                dest: &mut buf[start..start + want as usize],
                filled: 0,
            };
            self.reads += 1;
            self.firehose.read_sectors(
                self.location.lun,
                self.location.first_sector() + first,
                sectors,
                &mut window,
            )?;
            self.bytes_read += sectors * sector;
            if window.filled != window.dest.len() {
                return Err(FirehoseError::Protocol {
                    link: self.firehose.describe(),
                    command: format!("read {}", self.location.partition.name),
                    detail: format!("{} of {} bytes arrived", window.filled, window.dest.len()),
                });
            }
            done += want;
        }
        Ok(())
    }
}

/// The sector stream of one `<read>`, of which only `dest.len()` bytes after `skip` are kept.
struct Window<'b> {
    skip: u64,
    dest: &'b mut [u8],
    filled: usize,
}

impl Write for Window<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let whole = data.len();
        let mut data = data;
        if self.skip > 0 {
            let dropped = (self.skip as usize).min(data.len());
            self.skip -= dropped as u64;
            data = &data[dropped..];
        }
        let room = self.dest.len() - self.filled;
        let keep = room.min(data.len());
        self.dest[self.filled..self.filled + keep].copy_from_slice(&data[..keep]);
        self.filled += keep;
        // What follows the range in its last sector is dropped as well.
        Ok(whole)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::super::scripted_device::{configured_with, quick};
    use super::super::{FirehoseConfig, StorageKind};
    use super::*;
    use crate::gpt::{Guid, Partition};
    use crate::progress::{ProgressEvent, ProgressSink};

    /// `system_a` at LBAs 40..=4135 of LUN 2, 512-byte sectors (2 MiB + 512 bytes).
    fn system_a() -> PartitionLocation {
        PartitionLocation {
            lun: 2,
            sector_size: 512,
            partition: Partition {
                index: 0,
                type_guid: Guid::derived("type"),
                unique_guid: Guid::NIL,
                first_lba: 40,
                last_lba: 4136,
                attributes: 0,
                name: "system_a".into(),
            },
            primary_gpt_damage: None,
        }
    }

    fn emmc() -> FirehoseConfig {
        FirehoseConfig {
            storage: StorageKind::Emmc,
            ..quick()
        }
    }

    /// Sector `n` of the partition holds bytes `n as u8` (a pattern that shows misplacement).
    fn sectors(first: u64, count: u64) -> Vec<u8> {
        (first..first + count)
            .flat_map(|n| std::iter::repeat_n(n as u8, 512))
            .collect()
    }

    #[test]
    fn a_range_is_rounded_out_to_whole_sectors_of_its_lun() {
        let (mut fh, dev) = configured_with(emmc(), 1 << 20, |d| {
            // Bytes 1000..1100 of the partition: its sectors 1 and 2, at LBA 41 of LUN 2.
            d.serve_read(2, 41, 2, &sectors(1, 2));
            // The last byte of the partition: its sector 4096, LBA 4136.
            d.serve_read(2, 4136, 1, &sectors(4096, 1));
        });
        let mut reader = PartitionReader::new(&mut fh, system_a());
        let mut buf = [0u8; 100];
        reader.read_at(1000, &mut buf).unwrap();
        assert_eq!(
            &buf[..24],
            &[1u8; 24][..],
            "bytes 1000..1024 are in sector 1"
        );
        assert_eq!(&buf[24..], &[2u8; 76][..]);
        let mut last = [0u8; 1];
        reader.read_at(reader.size() - 1, &mut last).unwrap();
        assert_eq!(last, [4096u64 as u8]);
        assert_eq!((reader.reads(), reader.bytes_read()), (2, 3 * 512));
        dev.join().unwrap();
    }

    #[test]
    fn a_large_range_is_read_in_bounded_commands() {
        let per_read = MAX_READ_BYTES / 512;
        let (mut fh, dev) = configured_with(emmc(), 1 << 20, move |d| {
            // 1.5 MiB from byte 100: sectors 0..2048, then 2048..3073.
            d.serve_read(2, 40, per_read, &sectors(0, per_read));
            d.serve_read(2, 40 + per_read, 1025, &sectors(per_read, 1025));
        });
        let mut reader = PartitionReader::new(&mut fh, system_a());
        let mut buf = vec![0u8; 3 << 19];
        reader.read_at(100, &mut buf).unwrap();
        let expected = sectors(0, per_read + 1025);
        assert!(buf == expected[100..100 + buf.len()], "bytes in place");
        assert_eq!(reader.reads(), 2);
        dev.join().unwrap();
    }

    #[test]
    fn a_range_past_the_partition_is_refused_before_anything_is_sent() {
        let (mut fh, dev) = configured_with(emmc(), 1 << 20, |_| {});
        let mut reader = PartitionReader::new(&mut fh, system_a());
        let size = reader.size();
        let mut buf = [0u8; 10];
        let err = reader.read_at(size - 5, &mut buf).unwrap_err();
        assert!(
            matches!(err, FirehoseError::PastPartitionEnd { offset, len: 10, .. } if offset == size - 5),
            "{err:?}"
        );
        assert!(reader.read_at(u64::MAX - 2, &mut buf).is_err());
        assert_eq!(reader.reads(), 0);
        dev.join().unwrap();
    }

    struct StopNow(AtomicBool);
    impl ProgressSink for StopNow {
        fn event(&self, _: ProgressEvent<'_>) {}
        fn stop_requested(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn a_stop_request_ends_the_reads_before_the_next_command_and_a_nak_is_typed() {
        let (mut fh, dev) = configured_with(emmc(), 1 << 20, |d| {
            d.serve_read(2, 40, 1, &sectors(0, 1));
            d.expect("read");
            d.log("ERROR: Failed to read LUN 2");
            d.respond("NAK", false);
        });
        let stop = Arc::new(StopNow(AtomicBool::new(false)));
        fh.set_progress(stop.clone());
        let mut reader = PartitionReader::new(&mut fh, system_a());
        let mut buf = [0u8; 8];
        reader.read_at(0, &mut buf).unwrap();
        let err = reader.read_at(4096, &mut buf).unwrap_err();
        assert!(matches!(err, FirehoseError::Nak { .. }), "{err:?}");
        stop.0.store(true, Ordering::Relaxed);
        let err = reader.read_at(0, &mut buf).unwrap_err();
        assert!(matches!(err, FirehoseError::Stopped { .. }), "{err:?}");
        assert_eq!(reader.reads(), 2);
        dev.join().unwrap();
    }
}
