//! `<program>`: the command, the ACK that opens raw mode, the data in chunks no larger than the
//! negotiated payload (the last sector zero-padded, as qdl does), and the closing ACK.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::client::Firehose;
use super::xml::Document;
use super::FirehoseError;
use crate::progress::ProgressEvent;
use crate::transport::{SendFilledError, Transport, TransportError};

/// Where a program goes.
#[derive(Debug, Clone, Copy)]
pub struct ProgramTarget<'a> {
    pub lun: u32,
    /// Passed verbatim: may be `NUM_DISK_SECTORS-5.` for a backup GPT.
    pub start_sector: &'a str,
    /// Partition label, for progress and errors.
    pub label: &'a str,
    /// The `filename` attribute some programmers log; informational.
    pub filename: Option<&'a str>,
}

impl<T: Transport> Firehose<T> {
    /// Program `byte_len` bytes from `data`, zero-padded to whole sectors.
    pub fn program(
        &mut self,
        target: &ProgramTarget<'_>,
        data: &mut dyn Read,
        byte_len: u64,
    ) -> Result<(), FirehoseError> {
        let sector = self.sector_size as u64;
        let num_sectors = byte_len.div_ceil(sector);
        self.progress.event(ProgressEvent::StepStarted {
            step: target.label,
            total_bytes: num_sectors * sector,
        });
        let command = format!("program {}", target.label);
        let mut remaining = byte_len;
        self.program_sectors(target, num_sectors, &command, &mut |chunk: &mut [u8]| {
            let want = (chunk.len() as u64).min(remaining) as usize;
            let got = read_full(data, &mut chunk[..want])?;
            remaining -= got as u64;
            chunk[got..].fill(0);
            Ok(())
        })?;
        self.progress
            .event(ProgressEvent::StepFinished { step: target.label });
        Ok(())
    }

    /// Program a file (or the part of it from `file_sector_offset`, at most `max_sectors` when
    /// non-zero), streaming it: the file is never held in memory.
    pub fn program_file(
        &mut self,
        target: &ProgramTarget<'_>,
        path: &Path,
        file_sector_offset: u64,
        max_sectors: u64,
    ) -> Result<(), FirehoseError> {
        let image_error = |source| FirehoseError::Image {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(image_error)?;
        let len = file.metadata().map_err(image_error)?.len();
        let offset = file_sector_offset.saturating_mul(self.sector_size as u64);
        if offset > len {
            return Err(FirehoseError::BadImage {
                path: path.to_owned(),
                detail: format!(
                    "file_sector_offset {file_sector_offset} is past the end of the {len}-byte file"
                ),
            });
        }
        file.seek(SeekFrom::Start(offset)).map_err(image_error)?;
        let mut byte_len = len - offset;
        if max_sectors > 0 {
            byte_len = byte_len.min(max_sectors.saturating_mul(self.sector_size as u64));
        }
        let mut reader = io::BufReader::with_capacity(64 * 1024, file).take(byte_len);
        self.program(target, &mut reader, byte_len)
            .map_err(|e| match e {
                FirehoseError::Source { source, .. } => image_error(source),
                other => other,
            })
    }

    /// Program `num_sectors` sectors all holding the repeated little-endian word `fill`
    /// (a sparse FILL chunk; the programmer receives the expanded bytes, as from qdl).
    pub fn program_fill(
        &mut self,
        target: &ProgramTarget<'_>,
        num_sectors: u64,
        fill: u32,
    ) -> Result<(), FirehoseError> {
        let pattern = fill.to_le_bytes();
        let command = format!("program {} (fill)", target.label);
        self.program_sectors(target, num_sectors, &command, &mut |chunk: &mut [u8]| {
            for word in chunk.chunks_mut(4) {
                word.copy_from_slice(&pattern[..word.len()]);
            }
            Ok(())
        })
    }

    /// The wire part of a program: `fill_chunk` fills each chunk buffer completely.
    pub(crate) fn program_sectors(
        &mut self,
        target: &ProgramTarget<'_>,
        num_sectors: u64,
        command: &str,
        fill_chunk: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> Result<(), FirehoseError> {
        if num_sectors == 0 {
            return Ok(());
        }
        let mut doc = Document::new("program")
            .attr("SECTOR_SIZE_IN_BYTES", self.sector_size)
            .attr("num_partition_sectors", num_sectors)
            .attr("physical_partition_number", target.lun)
            .attr("start_sector", target.start_sector);
        if let Some(name) = target.filename {
            doc = doc.attr("filename", name);
        }
        self.send(&doc, command)?;
        let response = self.await_response(command, self.config.timeouts.response)?;
        if !response.ack() {
            return Err(self.nak_error(command, &response));
        }
        if !response.is_raw() {
            return Err(self.protocol_error(command, "ACK without rawmode=\"true\""));
        }

        // Each chunk is read straight into the buffer the link lends, so the image's bytes are
        // copied once on the host (see `Transport::send_buffer`). A link that lends less than
        // the payload (USB lends at most its transfer size) gets each payload in several sends
        // and the ZLP only after the whole payload: on the wire that is one payload as before.
        let sector = self.sector_size;
        let timeout = self.config.timeouts.raw_data;
        let zlp_after = self.zlp_packet_size();
        let link = self.describe();
        let sectors_per_chunk = (self.payload_size / sector).max(1) as u64;
        let mut out = self.link.send_buffer((sectors_per_chunk as usize) * sector);
        let sectors_per_send = ((out.buffer().len() / sector).max(1) as u64).min(sectors_per_chunk);
        let mut left = num_sectors;
        let mut failure = None;
        'chunks: while left > 0 {
            if self.progress.stop_requested() {
                return Err(FirehoseError::Stopped {
                    link,
                    command: command.to_owned(),
                });
            }
            let n = left.min(sectors_per_chunk);
            let mut unsent = n;
            while unsent > 0 {
                let sectors = unsent.min(sectors_per_send);
                let len = (sectors as usize) * sector;
                if let Err(e) = out.send_filled(len, fill_chunk, timeout) {
                    failure = Some(e);
                    break 'chunks;
                }
                unsent -= sectors;
                self.progress
                    .event(ProgressEvent::Bytes { bytes: len as u64 });
            }
            let len = (n as usize) * sector;
            if zlp_after.is_some_and(|mps| len.is_multiple_of(mps)) {
                if let Err(e) = out.send_zero_length(timeout) {
                    failure = Some(SendFilledError::Link(e));
                    break;
                }
            }
            left -= n;
        }
        drop(out);
        match failure {
            None => {}
            Some(SendFilledError::Fill(source)) => {
                return Err(FirehoseError::Source {
                    command: command.to_owned(),
                    source,
                })
            }
            Some(SendFilledError::Link(e)) => {
                let error = self.transport_error(command, e);
                return Err(self.explain_data_failure(command, error));
            }
        }

        let response = self.await_response(command, self.config.timeouts.program_done)?;
        if !response.ack() {
            return Err(self.nak_error(command, &response));
        }
        if response.is_raw() {
            return Err(self.protocol_error(command, "final response still in raw mode"));
        }
        Ok(())
    }

    /// A data write failed: a programmer that gave up (write error, bad sector) usually stops
    /// reading and says why in a NAK, so look for one briefly before reporting the link error.
    fn explain_data_failure(&mut self, command: &str, error: FirehoseError) -> FirehoseError {
        let timed_out = matches!(
            &error,
            FirehoseError::Timeout { .. }
                | FirehoseError::Transport {
                    source: TransportError::Stall,
                    ..
                }
        );
        if timed_out {
            if let Ok(response) = self.await_response(command, std::time::Duration::from_secs(2)) {
                if !response.ack() {
                    return self.nak_error(command, &response);
                }
            }
        }
        error
    }
}

/// Read until `buf` is full or EOF; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
