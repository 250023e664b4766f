//! Running a rawprogram/patch package, and programming Android sparse images.
//!
//! Sparse images are expanded on the host, as qdl does: every RAW and FILL chunk becomes its own
//! `<program>` at the chunk's sector (the programmer receives plain sectors), DONT_CARE chunks
//! are skipped (their sectors keep what the disk held). The file is read once, front to back.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::client::Firehose;
use super::commands::PatchRequest;
use super::package::{Package, ProgramEntry, Step};
use super::program::ProgramTarget;
use super::FirehoseError;
use crate::progress::ProgressEvent;
use crate::sparse::{ChunkKind, SparseError, SparseReader};
use crate::transport::Transport;

/// What a package run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlashSummary {
    pub programs: usize,
    pub erases: usize,
    pub patches: usize,
    /// Bytes of sector data sent (sparse images: RAW and FILL chunks only).
    pub bytes_sent: u64,
    /// LUN marked bootable afterwards, if the package has a boot loader partition.
    pub bootable_lun: Option<u32>,
}

impl<T: Transport> Firehose<T> {
    /// Program an Android sparse image starting at `start_sector` of `lun`. Returns the bytes
    /// sent.
    pub fn program_sparse(
        &mut self,
        lun: u32,
        start_sector: u64,
        label: &str,
        path: &Path,
    ) -> Result<u64, FirehoseError> {
        let file = File::open(path).map_err(|source| FirehoseError::Image {
            path: path.to_owned(),
            source,
        })?;
        let bad = |e: SparseError| FirehoseError::BadImage {
            path: path.to_owned(),
            detail: e.to_string(),
        };
        let mut sparse =
            SparseReader::new(BufReader::with_capacity(256 * 1024, file)).map_err(bad)?;
        let block = u64::from(sparse.header().blk_sz);
        let sector = self.sector_size as u64;
        if !block.is_multiple_of(sector) && !sector.is_multiple_of(block) {
            return Err(FirehoseError::BadImage {
                path: path.to_owned(),
                detail: format!("block size {block} does not fit {sector}-byte sectors"),
            });
        }
        self.progress.event(ProgressEvent::StepStarted {
            step: label,
            total_bytes: sparse.expanded_len(),
        });
        let mut sent = 0u64;
        while let Some(chunk) = sparse.next_chunk().map_err(bad)? {
            let offset = chunk.expanded_offset(sparse.header().blk_sz);
            let len = chunk.expanded_len(sparse.header().blk_sz);
            if len == 0
                || matches!(
                    chunk.kind,
                    ChunkKind::DontCare { .. } | ChunkKind::Crc32 { .. }
                )
            {
                continue;
            }
            if !offset.is_multiple_of(sector) || !len.is_multiple_of(sector) {
                return Err(FirehoseError::BadImage {
                    path: path.to_owned(),
                    detail: format!(
                        "chunk {} ({len} bytes at {offset}) is not a whole number of {sector}-byte sectors",
                        chunk.index
                    ),
                });
            }
            let start = (start_sector + offset / sector).to_string();
            let target = ProgramTarget {
                lun,
                start_sector: &start,
                label,
                filename: None,
            };
            let command = format!("program {label} (sparse chunk {})", chunk.index);
            match chunk.kind {
                ChunkKind::Raw { .. } => {
                    let mut data = sparse.raw_data();
                    self.program_sectors(
                        &target,
                        len / sector,
                        &command,
                        &mut |buf: &mut [u8]| data.read_exact(buf),
                    )?;
                }
                ChunkKind::Fill { value, .. } => {
                    let pattern = value.to_le_bytes();
                    self.program_sectors(
                        &target,
                        len / sector,
                        &command,
                        &mut |buf: &mut [u8]| {
                            for word in buf.chunks_mut(4) {
                                word.copy_from_slice(&pattern[..word.len()]);
                            }
                            Ok::<(), io::Error>(())
                        },
                    )?;
                }
                ChunkKind::DontCare { .. } | ChunkKind::Crc32 { .. } => {}
            }
            sent += len;
        }
        self.progress
            .event(ProgressEvent::StepFinished { step: label });
        Ok(sent)
    }

    fn program_entry(&mut self, entry: &ProgramEntry) -> Result<u64, FirehoseError> {
        if entry.sector_size != self.sector_size {
            return Err(FirehoseError::InvalidRequest(format!(
                "{}: {} is laid out for {}-byte sectors, but the {} storage uses {}",
                entry.origin, entry.label, entry.sector_size, self.config.storage, self.sector_size
            )));
        }
        if entry.sparse {
            let start = entry.numeric_start().ok_or_else(|| {
                FirehoseError::InvalidRequest(format!(
                    "{}: sparse image needs a numeric start_sector",
                    entry.origin
                ))
            })?;
            return self.program_sparse(entry.lun, start, &entry.label, &entry.path);
        }
        let target = ProgramTarget {
            lun: entry.lun,
            start_sector: &entry.start_sector,
            label: &entry.label,
            filename: Some(&entry.filename),
        };
        self.program_file(
            &target,
            &entry.path,
            entry.file_sector_offset,
            entry.num_partition_sectors,
        )?;
        Ok(entry.data_bytes)
    }

    /// Run a package: erases and programs in order, then patches, then mark the boot LUN
    /// bootable (as qdl does when the package carries xbl/sbl1).
    pub fn flash_package(&mut self, package: &Package) -> Result<FlashSummary, FirehoseError> {
        let mut summary = FlashSummary::default();
        for step in &package.steps {
            match step {
                Step::Erase(e) => {
                    self.erase(e.lun, Some((&e.start_sector, e.num_partition_sectors)))?;
                    summary.erases += 1;
                }
                Step::Program(p) => {
                    summary.bytes_sent += self.program_entry(p)?;
                    summary.programs += 1;
                }
                Step::Patch(p) => {
                    self.patch(&PatchRequest {
                        lun: p.lun,
                        sector_size: Some(p.sector_size),
                        start_sector: &p.start_sector,
                        byte_offset: p.byte_offset,
                        size_in_bytes: p.size_in_bytes,
                        value: &p.value,
                        what: &p.what,
                    })?;
                    summary.patches += 1;
                }
            }
        }
        if let Some(lun) = package.bootable_lun() {
            self.set_bootable_storage_drive(lun)?;
            summary.bootable_lun = Some(lun);
        }
        Ok(summary)
    }
}

/// Size a `sparse="true"` file for package loading: the expanded length of a valid sparse
/// image, `None` when the file is not sparse at all. Only the header is read.
pub fn probe_sparse(path: &Path) -> Result<Option<u64>, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || !crate::sparse::is_sparse(&magic) {
        return Ok(None);
    }
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = SparseReader::new(BufReader::new(file)).map_err(|e| e.to_string())?;
    Ok(Some(reader.expanded_len()))
}
