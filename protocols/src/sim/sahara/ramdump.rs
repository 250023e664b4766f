//! Memory-debug mode of the simulated boot ROM: a phone that crashed re-enters EDL greeting
//! with HELLO mode 2; once the host answers in that mode, the ROM announces its memory table
//! (MEMORY_DEBUG for 32-bit ROMs, MEMORY_DEBUG_64 for 64-bit ones) and answers MEMORY_READ /
//! MEMORY_READ_64 with raw bytes of its simulated RAM, until the host sends RESET.
//!
//! Like a real ROM on USB it ends a transfer whose length is a multiple of wMaxPacketSize with
//! a zero-length packet (qdl and qdlrs drain one after each read), and it answers a read outside
//! the memory it offers with END_OF_IMAGE `INVALID_MEMORY_READ`.

use super::{end_of_image, Quit, SaharaDevice, SaharaServeOutcome, SaharaSimError};
use crate::sahara::memory_table::{encode_table, MemoryRegion, TableFormat};
use crate::sahara::packet::Packet;
use crate::sahara::status::Status;
use crate::transport::{Framing, Transport};

/// The largest read this ROM serves at once.
const MAX_READ: u64 = 16 << 20;

/// A crashed phone's RAM as the ROM offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMemoryDump {
    pub format: TableFormat,
    /// Where the memory table sits in the simulated address space.
    pub table_address: u64,
    /// The table as announced. Entries may describe memory the ROM does not back (to test a
    /// host's limits and filename checks); reads of it are refused.
    pub table: Vec<MemoryRegion>,
    /// The memory that can be read: (address, bytes).
    pub memory: Vec<(u64, Vec<u8>)>,
}

impl SimMemoryDump {
    /// A small, realistic table: DDR (save-preferred), OCIMEM and CODERAM, each backed by a
    /// deterministic pattern, with sizes that exercise whole and partial read chunks.
    pub fn small(format: TableFormat) -> Self {
        let regions = [
            (
                "DDR CS0",
                "DDRCS0.BIN",
                true,
                0x8000_0000u64,
                600 * 1024 + 100,
            ),
            ("OCIMEM", "OCIMEM.BIN", false, 0x1460_0000, 256 * 1024),
            ("CODE RAM", "CODERAM.BIN", false, 0x0100_0000, 4096),
        ];
        let mut dump = SimMemoryDump {
            format,
            table_address: 0x146B_F000,
            table: Vec::new(),
            memory: Vec::new(),
        };
        for (description, filename, save_preferred, address, length) in regions {
            dump.add_region(
                description,
                filename,
                save_preferred,
                address,
                pattern(address, length),
            );
        }
        dump
    }

    /// Offer `bytes` at `address` as a region named `filename`.
    pub fn add_region(
        &mut self,
        description: &str,
        filename: &str,
        save_preferred: bool,
        address: u64,
        bytes: Vec<u8>,
    ) {
        self.table.push(MemoryRegion {
            save_preferred,
            address,
            length: bytes.len() as u64,
            description: description.to_owned(),
            filename: filename.to_owned(),
        });
        self.memory.push((address, bytes));
    }

    /// The bytes of one table region (what a host should have written for it).
    pub fn region_bytes(&self, filename: &str) -> Option<&[u8]> {
        let region = self.table.iter().find(|r| r.filename == filename)?;
        self.read(region.address, region.length)
    }

    fn table_bytes(&self) -> Vec<u8> {
        encode_table(&self.table, self.format)
    }

    /// `length` bytes at `address`, when they lie inside one backed block.
    fn read(&self, address: u64, length: u64) -> Option<&[u8]> {
        self.memory.iter().find_map(|(start, bytes)| {
            let offset = address.checked_sub(*start)?;
            let end = offset.checked_add(length)?;
            bytes.get(usize::try_from(offset).ok()?..usize::try_from(end).ok()?)
        })
    }
}

/// Deterministic contents for simulated RAM: every byte depends on its address.
pub fn pattern(address: u64, length: usize) -> Vec<u8> {
    (0..length as u64)
        .map(|i| {
            let a = (address + i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            (a >> 56) as u8
        })
        .collect()
}

impl SaharaDevice {
    /// Serve memory debug after the host's HELLO_RESP agreed to it.
    pub(super) fn serve_memory_debug(
        &self,
        link: &mut dyn Transport,
        dump: &SimMemoryDump,
    ) -> Result<SaharaServeOutcome, SaharaSimError> {
        let table = dump.table_bytes();
        let announce = match dump.format {
            TableFormat::Bits32 => Packet::MemoryDebug {
                table_address: dump.table_address as u32,
                table_length: table.len() as u32,
            },
            TableFormat::Bits64 => Packet::MemoryDebug64 {
                table_address: dump.table_address,
                table_length: table.len() as u64,
            },
        };
        self.send(link, &announce)?;
        loop {
            let packet = match self.read_packet(link) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.send(link, &end_of_image(0, Status::INVALID_PACKET_SIZE))?;
                    continue;
                }
                Err(Quit(outcome)) => return outcome,
            };
            let (address, length) = match (packet, dump.format) {
                (Packet::MemoryRead { address, length }, TableFormat::Bits32) => {
                    (u64::from(address), u64::from(length))
                }
                (Packet::MemoryRead64 { address, length }, TableFormat::Bits64) => {
                    (address, length)
                }
                (Packet::Reset, _) => {
                    self.send(link, &Packet::ResetResp)?;
                    return Ok(SaharaServeOutcome::Reset);
                }
                _ => {
                    self.send(link, &end_of_image(0, Status::INVALID_CMD))?;
                    continue;
                }
            };
            let bytes = if address == dump.table_address && length == table.len() as u64 {
                Some(&table[..])
            } else {
                dump.read(address, length)
            };
            match bytes {
                Some(bytes) if length > 0 && length <= MAX_READ => {
                    self.write(link, bytes)?;
                    let mps = link.max_packet_size().filter(|m| *m > 0);
                    if let Some(mps) = mps.filter(|_| link.framing() == Framing::Packets) {
                        if bytes.len().is_multiple_of(mps) {
                            link.write_zero_length(self.host_timeout)?;
                        }
                    }
                }
                Some(_) => self.send(link, &end_of_image(0, Status::INVALID_DATA_SIZE_REQUEST))?,
                None => self.send(link, &end_of_image(0, Status::INVALID_MEMORY_READ))?,
            }
        }
    }
}
