//! The storage commands of the simulated programmer: program, read, patch, erase,
//! getsha256digest, getstorageinfo, setbootablestoragedrive.

use sha2::{Digest, Sha256};

use super::{FirehoseDevice, FirehoseOutcome};
use crate::firehose::package::parse_number;
use crate::firehose::xml::Element;
use crate::firehose::PATCH_TARGET_DISK;
use crate::sim::firehose_expr::{eval, eval_patch_value, PatchValue};
use crate::transport::{Framing, TransportError};

/// Bytes hashed or copied per storage lock.
const CHUNK: usize = 1024 * 1024;

/// Geometry of an addressed range, validated against the LUN.
pub(super) struct Range {
    pub(super) lun: u32,
    sector_size: u64,
    pub(super) start_sector: u64,
    num_sectors: u64,
}

impl Range {
    fn byte_offset(&self) -> u64 {
        self.start_sector * self.sector_size
    }
    fn byte_len(&self) -> u64 {
        self.num_sectors * self.sector_size
    }
}

impl FirehoseDevice<'_> {
    /// LUN geometry: (sector size, sectors).
    fn geometry(&self, lun: u32) -> Result<(u64, u64), String> {
        let state = self.phone.lock();
        state
            .storage
            .lun(lun)
            .map(|l| (u64::from(l.sector_size()), l.sectors()))
            .map_err(|e| format!("ERROR: {e}"))
    }

    /// Validate the attributes every storage command carries.
    pub(super) fn range(
        &self,
        command: &Element,
        whole_lun_default: bool,
    ) -> Result<Range, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            match command.attr(name) {
                None => Ok(None),
                Some(v) => parse_number(v)
                    .map(Some)
                    .ok_or_else(|| format!("ERROR: {name}='{v}' is not a number")),
            }
        };
        let lun = number("physical_partition_number")?.unwrap_or(0);
        let lun = u32::try_from(lun).map_err(|_| format!("ERROR: LUN {lun} does not exist"))?;
        let (sector_size, disk_sectors) = self.geometry(lun)?;
        if let Some(asked) = number("SECTOR_SIZE_IN_BYTES")? {
            if asked != sector_size {
                return Err(format!(
                    "ERROR: SECTOR_SIZE_IN_BYTES {asked} does not match the storage's {sector_size}"
                ));
            }
        }
        let start_sector = match command.attr("start_sector") {
            Some(expr) => eval(expr, disk_sectors)
                .map_err(|e| format!("ERROR: start_sector '{expr}': {e}"))?,
            None if whole_lun_default => 0,
            None => return Err("ERROR: start_sector missing".to_owned()),
        };
        let num_sectors = match number("num_partition_sectors")? {
            Some(n) => n,
            None if whole_lun_default => disk_sectors,
            None => return Err("ERROR: num_partition_sectors missing".to_owned()),
        };
        match start_sector.checked_add(num_sectors) {
            Some(end) if end <= disk_sectors => Ok(Range {
                lun,
                sector_size,
                start_sector,
                num_sectors,
            }),
            _ => Err(format!(
                "ERROR: sectors {start_sector}+{num_sectors} run past the end of LUN {lun} ({disk_sectors} sectors)"
            )),
        }
    }

    pub(super) fn program(&mut self, command: &Element) -> Result<(), TransportError> {
        self.program_until(command, None).map(drop)
    }

    /// `<program>`; with `cut_at_percent`, the programmer stops writing once that share of
    /// the command's sectors is in storage and drops off the bus without an answer (see
    /// [`crate::sim::FaultAction::CutDuringWrite`]): `Some(HostGone)` ends the session.
    pub(super) fn program_until(
        &mut self,
        command: &Element,
        cut_at_percent: Option<u8>,
    ) -> Result<Option<FirehoseOutcome>, TransportError> {
        let range = match self.range(command, false) {
            Ok(r) => r,
            Err(reason) => return self.nak(&reason).map(|()| None),
        };
        let payload = self.payload.unwrap_or(crate::firehose::DEFAULT_MAX_PAYLOAD);
        self.ack(true)?;
        let mut buf = vec![0u8; payload];
        let total = range.byte_len();
        let cut_at = cut_at_percent.map(|p| total.saturating_mul(u64::from(p.min(100))) / 100);
        let mut done = 0u64;
        let mut failure = None;
        while done < total {
            if cut_at.is_some_and(|at| done >= at) {
                tracing::debug!(label = ?command.attr("label"), done, "simulated programmer drops off mid-program");
                return Ok(Some(FirehoseOutcome::HostGone));
            }
            let want = ((total - done) as usize).min(payload);
            let n = match self.receive_raw(&mut buf[..want]) {
                Ok(0) => continue,
                Ok(n) => n,
                Err(TransportError::Overflow { len, max }) => {
                    // A real programmer's receive buffer is the negotiated payload; a bigger
                    // transfer breaks the stream.
                    return self.nak(&format!(
                        "ERROR: raw data transfer of {len} bytes exceeds MaxPayloadSizeToTargetInBytes {max}"
                    )).map(|()| None);
                }
                Err(e) => return Err(e),
            };
            // Past the cut the phone is gone: what it received is not written.
            let keep = cut_at.map_or(n, |at| n.min(usize::try_from(at - done).unwrap_or(n)));
            if failure.is_none() {
                let mut state = self.phone.lock();
                if let Err(e) =
                    state
                        .storage
                        .write_lun(range.lun, range.byte_offset() + done, &buf[..keep])
                {
                    failure = Some(format!("ERROR: write failed: {e}"));
                }
            }
            done += n as u64;
        }
        if cut_at.is_some() {
            return Ok(Some(FirehoseOutcome::HostGone));
        }
        if let Some(reason) = failure {
            return self.nak(&reason).map(|()| None);
        }
        self.log(&format!(
            "INFO: Finished sector address {}",
            range.start_sector + range.num_sectors
        ))?;
        self.ack(false).map(|()| None)
    }

    /// Raw data from the host. On a packet link one read is one host transfer, so a transfer
    /// larger than the negotiated payload shows up as an overflow, as on a real device.
    fn receive_raw(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        let timeout = std::time::Duration::from_secs(30);
        if !self.reader.pending().is_empty() || self.link.framing() == Framing::Stream {
            return self.reader.read_raw(self.link, buf, timeout);
        }
        self.link.read_packet(buf, timeout)
    }

    pub(super) fn read(&mut self, command: &Element) -> Result<(), TransportError> {
        let range = match self.range(command, false) {
            Ok(r) => r,
            Err(reason) => return self.nak(&reason),
        };
        self.ack(true)?;
        let chunk = self.config.max_payload_from_target.max(1);
        let mut buf = vec![0u8; chunk.min(range.byte_len() as usize)];
        let mut done = 0u64;
        let sent = self.bytes_to_send(range.byte_len());
        while done < sent {
            let n = ((sent - done) as usize).min(buf.len());
            let at = range.byte_offset() + done;
            if self
                .read_for_host(range.lun, at, done, &mut buf[..n])
                .is_err()
            {
                // Already range-checked; a backing-file error still owes the host its bytes.
                buf[..n].fill(0);
            }
            self.link.write(&buf[..n], super::WRITE_TIMEOUT)?;
            done += n as u64;
        }
        self.log(&format!(
            "INFO: Finished sector address {}",
            range.start_sector + range.num_sectors
        ))?;
        self.ack(false)
    }

    pub(super) fn patch(&mut self, command: &Element) -> Result<(), TransportError> {
        match self.apply_patch(command) {
            Ok(Some(note)) => {
                self.log(&note)?;
                self.ack(false)
            }
            Ok(None) => self.ack(false),
            Err(reason) => self.nak(&reason),
        }
    }

    fn apply_patch(&mut self, command: &Element) -> Result<Option<String>, String> {
        if command.attr("filename") != Some(PATCH_TARGET_DISK) {
            // Patches for host files are a tool-side concern; programmers ignore them.
            return Ok(Some("INFO: Patch is not for DISK, ignoring".to_owned()));
        }
        let number = |name: &str| {
            command
                .attr(name)
                .and_then(parse_number)
                .ok_or_else(|| format!("ERROR: {name} missing or not a number"))
        };
        let lun = u32::try_from(number("physical_partition_number")?)
            .map_err(|_| "ERROR: bad LUN".to_owned())?;
        let (sector_size, disk_sectors) = self.geometry(lun)?;
        if number("SECTOR_SIZE_IN_BYTES")? != sector_size {
            return Err(format!(
                "ERROR: SECTOR_SIZE_IN_BYTES does not match the storage's {sector_size}"
            ));
        }
        let start_expr = command.attr("start_sector").unwrap_or_default();
        let start = eval(start_expr, disk_sectors)
            .map_err(|e| format!("ERROR: start_sector '{start_expr}': {e}"))?;
        let byte_offset = number("byte_offset")?;
        let size = number("size_in_bytes")?;
        if !(1..=8).contains(&size) {
            return Err(format!("ERROR: size_in_bytes {size} is not 1..8"));
        }
        let value_expr = command.attr("value").unwrap_or_default();
        let value = match eval_patch_value(value_expr, disk_sectors)
            .map_err(|e| format!("ERROR: value '{value_expr}': {e}"))?
        {
            PatchValue::Number(v) => v,
            PatchValue::Crc32 {
                start_sector,
                len_bytes,
            } => u64::from(self.crc32(lun, start_sector * sector_size, len_bytes)?),
        };
        let at = start
            .checked_mul(sector_size)
            .and_then(|b| b.checked_add(byte_offset))
            .ok_or("ERROR: patch address overflows")?;
        let bytes = value.to_le_bytes();
        let mut state = self.phone.lock();
        state
            .storage
            .write_lun(lun, at, &bytes[..size as usize])
            .map_err(|e| format!("ERROR: patch failed: {e}"))?;
        Ok(Some(format!(
            "INFO: Patched sector {start} offset {byte_offset} with {value:#x} ({size} bytes)"
        )))
    }

    fn crc32(&self, lun: u32, offset: u64, len: u64) -> Result<u32, String> {
        if len > 64 * 1024 * 1024 {
            return Err(format!("ERROR: CRC32 over {len} bytes refused"));
        }
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; CHUNK.min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let n = ((len - done) as usize).min(buf.len());
            self.phone
                .lock()
                .storage
                .read_lun(lun, offset + done, &mut buf[..n])
                .map_err(|e| format!("ERROR: CRC32 read failed: {e}"))?;
            hasher.update(&buf[..n]);
            done += n as u64;
        }
        Ok(hasher.finalize())
    }

    pub(super) fn erase(&mut self, command: &Element) -> Result<(), TransportError> {
        let range = match self.range(command, true) {
            Ok(r) => r,
            Err(reason) => return self.nak(&reason),
        };
        let result =
            self.phone
                .lock()
                .storage
                .discard_lun(range.lun, range.byte_offset(), range.byte_len());
        match result {
            Ok(()) => {
                self.log(&format!(
                    "INFO: Erased {} sectors from {} on LUN {}",
                    range.num_sectors, range.start_sector, range.lun
                ))?;
                self.ack(false)
            }
            Err(e) => self.nak(&format!("ERROR: erase failed: {e}")),
        }
    }

    pub(super) fn digest(&mut self, command: &Element) -> Result<(), TransportError> {
        let range = match self.range(command, false) {
            Ok(r) => r,
            Err(reason) => return self.nak(&reason),
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK.min(range.byte_len() as usize)];
        let mut done = 0u64;
        while done < range.byte_len() {
            let n = ((range.byte_len() - done) as usize).min(buf.len());
            let read = self.phone.lock().storage.read_lun(
                range.lun,
                range.byte_offset() + done,
                &mut buf[..n],
            );
            if let Err(e) = read {
                return self.nak(&format!("ERROR: read failed: {e}"));
            }
            hasher.update(&buf[..n]);
            done += n as u64;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        self.log(&format!("INFO: Digest 0x{}", hex::encode_upper(digest)))?;
        self.ack(false)
    }

    pub(super) fn storage_info(&mut self, command: &Element) -> Result<(), TransportError> {
        let lun = command
            .attr("physical_partition_number")
            .and_then(parse_number)
            .unwrap_or(0);
        let info = {
            let state = self.phone.lock();
            let count = state.storage.luns().len();
            u32::try_from(lun)
                .ok()
                .and_then(|l| state.storage.lun(l).ok())
                .map(|l| (l.sectors(), l.sector_size(), count))
        };
        let Some((sectors, sector_size, count)) = info else {
            return self.nak(&format!("ERROR: LUN {lun} does not exist"));
        };
        let kind = super::storage_kind_for(sector_size)
            .memory_name()
            .to_ascii_uppercase();
        let serial = self.phone.identity().chip_serial;
        self.log(&format!(
            "INFO: {{\"storage_info\": {{\"total_blocks\":{sectors}, \"block_size\":{sector_size}, \"page_size\":{sector_size}, \"num_physical\":{count}, \"manufacturer_id\":462, \"serial_num\":{serial}, \"fw_version\":\"0100\",\"mem_type\":\"{kind}\",\"prod_name\":\"FLASHGATE-SIM\"}}}}"
        ))?;
        self.ack(false)
    }

    pub(super) fn set_bootable(&mut self, command: &Element) -> Result<(), TransportError> {
        let value = command.attr("value").and_then(parse_number);
        match value {
            Some(drive) if self.geometry(drive as u32).is_ok() => {
                self.log(&format!("INFO: Set bootable drive to {drive}"))?;
                self.ack(false)
            }
            _ => self.nak("ERROR: setbootablestoragedrive: no such drive"),
        }
    }
}
