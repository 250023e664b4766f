//! RAM-dump collection from a boot ROM in memory-debug mode (a phone that crashed re-enters EDL
//! with HELLO mode 2). The host answers HELLO_RESP in memory-debug mode, the ROM announces its
//! memory table with MEMORY_DEBUG (32-bit) or MEMORY_DEBUG_64, and the host reads the table and
//! then each region with MEMORY_READ / MEMORY_READ_64 requests, the raw bytes following each
//! request; a RESET ends the session. Behaviour follows qdl's `sahara_debug64` and qdlrs's
//! `qramdump`.
//!
//! Everything the device sends is bounded before use: the table length (64 KiB, as qdl), each
//! region (a caller limit), the total, every address range, and each filename (a region whose
//! name could escape the output directory is skipped, not written).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::SaharaError;
use super::framing::Incoming;
use super::host::SaharaHost;
use super::memory_table::{parse_table, MemoryRegion, TableFormat};
use super::packet::{Mode, Packet};
use crate::progress::{ProgressEvent, ProgressSink};
use crate::transport::{Framing, TransportError};

/// Largest MEMORY_READ the host asks for (bounds its buffer whatever the limits say).
const MAX_READ_CHUNK: usize = 16 << 20;

/// Zero-length packets tolerated in a row while waiting for memory data (a ROM ends a transfer
/// of a multiple of wMaxPacketSize with one; an endless stream of them is a broken device).
const MAX_ZERO_LENGTH_READS: u32 = 8;

/// Bounds on what the device may make the host read and store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamdumpLimits {
    /// Largest memory table accepted (qdl's limit).
    pub max_table_bytes: u64,
    /// Largest single region written; larger ones are skipped with a reason.
    pub max_region_bytes: u64,
    /// Total bytes written over all regions; regions past it are skipped.
    pub max_total_bytes: u64,
    /// Bytes asked for per MEMORY_READ (qdl's DEBUG_BLOCK_SIZE).
    pub read_chunk: usize,
}

impl Default for RamdumpLimits {
    fn default() -> Self {
        RamdumpLimits {
            max_table_bytes: 64 * 1024,
            // Phones carry up to 24 GiB of DDR, offered as a few regions.
            max_region_bytes: 32 << 30,
            max_total_bytes: 64 << 30,
            read_chunk: 512 * 1024,
        }
    }
}

/// Which regions to collect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionFilter {
    /// Filenames to collect, matched case-insensitively with or without the extension
    /// (`ddrcs0` matches `DDRCS0.BIN`); empty: every region.
    pub names: Vec<String>,
    /// Only regions the ROM marks `save_pref` (qdlrs's default).
    pub save_preferred_only: bool,
}

impl RegionFilter {
    fn wants(&self, region: &MemoryRegion) -> bool {
        if self.save_preferred_only && !region.save_preferred {
            return false;
        }
        if self.names.is_empty() {
            return true;
        }
        let file = region.filename.to_ascii_lowercase();
        let stem = file.split('.').next().unwrap_or_default();
        self.names.iter().any(|n| {
            let n = n.to_ascii_lowercase();
            n == file || n == stem
        })
    }
}

/// One region written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedRegion {
    pub region: MemoryRegion,
    pub path: PathBuf,
    pub sha256: [u8; 32],
}

/// What a collection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamdumpReport {
    /// Sahara version from the HELLO (`None` if the ROM answered a prod without one).
    pub version: Option<u32>,
    pub format: TableFormat,
    /// Every region the ROM offered.
    pub table: Vec<MemoryRegion>,
    pub collected: Vec<CollectedRegion>,
    /// Regions not collected, with the reason (filtered out, unsafe name, over a limit,
    /// refused by the device).
    pub skipped: Vec<(MemoryRegion, String)>,
    /// Whether the ROM acknowledged the final RESET.
    pub reset_acknowledged: bool,
}

impl SaharaHost<'_> {
    /// Collect the regions `filter` selects into files in `dir` (which must exist), named as
    /// the device names them, then reset the device.
    pub fn collect_ramdump(
        &mut self,
        dir: &Path,
        filter: &RegionFilter,
        limits: &RamdumpLimits,
        progress: &dyn ProgressSink,
    ) -> Result<RamdumpReport, SaharaError> {
        let during = "entering memory-debug mode";
        let mut version = None;
        let mut first = true;
        let mut prodded = false;
        let (format, table_address, table_length) = loop {
            let packet = match self.next_incoming(first, &mut prodded, Mode::MemoryDebug, during)? {
                Incoming::Packet(p) => p,
                Incoming::Firehose(_) => {
                    return Err(SaharaError::Unexpected {
                        link: self.link.describe(),
                        during: during.into(),
                        got: "Firehose XML (a programmer is running)",
                        expected: "HELLO in memory-debug mode",
                    })
                }
            };
            first = false;
            match packet {
                Packet::Hello(hello) if hello.mode == Mode::MemoryDebug => {
                    version = Some(self.answer_hello(hello, Mode::MemoryDebug, during)?);
                }
                Packet::Hello(hello) => {
                    return Err(SaharaError::NotMemoryDebug {
                        link: self.link.describe(),
                        mode: hello.mode.to_u32(),
                    })
                }
                Packet::MemoryDebug {
                    table_address,
                    table_length,
                } => {
                    break (
                        TableFormat::Bits32,
                        u64::from(table_address),
                        u64::from(table_length),
                    )
                }
                Packet::MemoryDebug64 {
                    table_address,
                    table_length,
                } => break (TableFormat::Bits64, table_address, table_length),
                Packet::EndOfImage { status, .. } => {
                    return Err(SaharaError::MemoryReadRefused {
                        link: self.link.describe(),
                        what: "memory-debug mode".into(),
                        address: 0,
                        length: 0,
                        status,
                    })
                }
                other => return Err(self.unexpected(&other, during, "HELLO or MEMORY_DEBUG")),
            }
        };

        let table_error = |host: &Self, detail: String| SaharaError::MemoryTable {
            link: host.link.describe(),
            what: format!("memory table at {table_address:#x}"),
            detail,
        };
        if table_length == 0 || table_length > limits.max_table_bytes {
            return Err(table_error(
                self,
                format!(
                    "announced length {table_length} is outside 1..={} bytes",
                    limits.max_table_bytes
                ),
            ));
        }
        let mut table_bytes = Vec::new();
        self.read_memory(
            format,
            table_address,
            table_length,
            "the memory table",
            &mut |bytes| {
                table_bytes.extend_from_slice(bytes);
                Ok(())
            },
        )
        .map_err(|e| e.into_error(None))?;
        let table =
            parse_table(&table_bytes, format).map_err(|e| table_error(self, e.to_string()))?;

        let mut report = RamdumpReport {
            version,
            format,
            table: table.clone(),
            collected: Vec::new(),
            skipped: Vec::new(),
            reset_acknowledged: false,
        };
        let mut total = 0u64;
        for region in table {
            match self.choose(&region, filter, limits, total, &report.collected) {
                Err(reason) => report.skipped.push((region, reason)),
                Ok(name) => {
                    let path = dir.join(name);
                    match self.dump_region(format, &region, &path, limits, progress) {
                        Ok(sha256) => {
                            total += region.length;
                            report.collected.push(CollectedRegion {
                                region,
                                path,
                                sha256,
                            });
                        }
                        // The ROM keeps serving other reads after refusing one.
                        Err(RegionError::Refused(e)) => {
                            let _ = std::fs::remove_file(&path);
                            report.skipped.push((region, e.to_string()));
                        }
                        Err(other) => return Err(other.into_error(Some(path))),
                    }
                }
            }
        }
        report.reset_acknowledged = self.reset().is_ok();
        Ok(report)
    }

    /// The file name to write `region` to, or why it is skipped.
    fn choose<'r>(
        &self,
        region: &'r MemoryRegion,
        filter: &RegionFilter,
        limits: &RamdumpLimits,
        total: u64,
        collected: &[CollectedRegion],
    ) -> Result<&'r str, String> {
        if !filter.wants(region) {
            return Err("not selected".into());
        }
        let name = region.safe_filename()?;
        if collected
            .iter()
            .any(|c| c.region.filename.eq_ignore_ascii_case(name))
        {
            return Err(format!("a region named {name:?} was already written"));
        }
        if region.length > limits.max_region_bytes {
            return Err(format!(
                "{} bytes exceed the {}-byte region limit",
                region.length, limits.max_region_bytes
            ));
        }
        if total.saturating_add(region.length) > limits.max_total_bytes {
            return Err(format!(
                "would take the dump past its {}-byte total limit",
                limits.max_total_bytes
            ));
        }
        Ok(name)
    }

    fn dump_region(
        &mut self,
        format: TableFormat,
        region: &MemoryRegion,
        path: &Path,
        limits: &RamdumpLimits,
        progress: &dyn ProgressSink,
    ) -> Result<[u8; 32], RegionError> {
        let file = File::create(path).map_err(RegionError::Output)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut hasher = Sha256::new();
        let step = format!("ramdump {}", region.filename);
        progress.event(ProgressEvent::StepStarted {
            step: &step,
            total_bytes: region.length,
        });
        let chunk = limits.read_chunk.clamp(1, MAX_READ_CHUNK) as u64;
        let mut done = 0u64;
        while done < region.length {
            let n = (region.length - done).min(chunk);
            let what = format!("region {}", region.filename);
            self.read_memory(format, region.address + done, n, &what, &mut |bytes| {
                hasher.update(bytes);
                progress.event(ProgressEvent::Bytes {
                    bytes: bytes.len() as u64,
                });
                out.write_all(bytes)
            })?;
            done += n;
        }
        out.flush().map_err(RegionError::Output)?;
        progress.event(ProgressEvent::StepFinished { step: &step });
        Ok(hasher.finalize().into())
    }
}

/// Why reading one range failed.
enum RegionError {
    /// The ROM answered the read with END_OF_IMAGE (a [`SaharaError::MemoryReadRefused`]).
    Refused(SaharaError),
    /// Writing the output failed.
    Output(std::io::Error),
    /// The link or the protocol failed: the session is over.
    Link(SaharaError),
}

impl RegionError {
    fn into_error(self, path: Option<PathBuf>) -> SaharaError {
        match self {
            RegionError::Refused(e) | RegionError::Link(e) => e,
            RegionError::Output(source) => SaharaError::DumpFile {
                path: path.unwrap_or_default(),
                source,
            },
        }
    }
}

impl SaharaHost<'_> {
    /// One MEMORY_READ(_64) and the `length` raw bytes that answer it, handed to `sink` as they
    /// arrive. On a packet link a 16-byte END_OF_IMAGE in place of a longer answer is the ROM
    /// refusing the read; on a byte stream it cannot be told from memory contents, so there a
    /// refusal shows up as a timeout.
    fn read_memory(
        &mut self,
        format: TableFormat,
        address: u64,
        length: u64,
        what: &str,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<(), RegionError> {
        let during = format!("reading {length} bytes at {address:#x} ({what})");
        let packet = match format {
            TableFormat::Bits64 => Packet::MemoryRead64 { address, length },
            TableFormat::Bits32 => match (u32::try_from(address), u32::try_from(length)) {
                (Ok(address), Ok(length)) => Packet::MemoryRead { address, length },
                _ => {
                    return Err(RegionError::Link(SaharaError::MemoryTable {
                        link: self.link.describe(),
                        what: what.to_owned(),
                        detail: format!(
                            "{length} bytes at {address:#x} do not fit a 32-bit MEMORY_READ"
                        ),
                    }))
                }
            },
        };
        self.send(&packet, &during).map_err(RegionError::Link)?;
        let buffer = usize::try_from(length)
            .unwrap_or(MAX_READ_CHUNK)
            .min(MAX_READ_CHUNK);
        self.data.resize(buffer.max(1), 0);
        let packets = self.link.framing() == Framing::Packets;
        let timeout = self.timeouts.packet;
        let mut got = 0u64;
        let mut zero_reads = 0;
        while got < length {
            let want = (length - got).min(self.data.len() as u64) as usize;
            let read = if packets {
                self.link.read_packet(&mut self.data[..want], timeout)
            } else {
                self.link.read_stream(&mut self.data[..want], timeout)
            };
            let n = match read {
                Ok(0) if packets && zero_reads < MAX_ZERO_LENGTH_READS => {
                    zero_reads += 1;
                    continue;
                }
                Ok(0) => {
                    return Err(RegionError::Link(SaharaError::Disconnected {
                        link: self.link.describe(),
                        during,
                    }))
                }
                Ok(n) => n,
                Err(TransportError::Timeout(_)) => {
                    return Err(RegionError::Link(SaharaError::Timeout {
                        link: self.link.describe(),
                        waiting_for: during,
                        timeout,
                    }))
                }
                Err(e) => return Err(RegionError::Link(self.transport_error(e, &during))),
            };
            zero_reads = 0;
            if packets && got == 0 && n == 16 && length > 16 {
                if let Ok(Packet::EndOfImage { status, .. }) = Packet::decode(&self.data[..16]) {
                    return Err(RegionError::Refused(SaharaError::MemoryReadRefused {
                        link: self.link.describe(),
                        what: what.to_owned(),
                        address,
                        length,
                        status,
                    }));
                }
            }
            sink(&self.data[..n]).map_err(RegionError::Output)?;
            got += n as u64;
        }
        Ok(())
    }
}
