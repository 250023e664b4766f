//! A simulated Qualcomm boot ROM (PBL) in Emergency Download mode, speaking Sahara over the
//! device end of any [`Transport`].
//!
//! It greets with HELLO (version 1–3), walks a programmer ELF with READ_DATA or READ_DATA_64 the
//! way real ROMs do (ELF header, program header table, then each range in 4 KiB requests), checks
//! it against its signed list and ends with END_OF_IMAGE, answers command mode (serial, MSM HW ID
//! or v3 chip id, OEM PK hash, SBL version), and can misbehave (silent, garbage, lost HELLO).
//!
//! Stand-in for secure boot: a real ROM verifies the signature over the programmer's hash
//! segment; this one accepts a programmer when the SHA-256 of its bytes is in
//! [`SaharaIdentity::signed_programmers`]. To hash the whole file it also requests the gaps
//! between segments, which a real ROM skips; a host serving byte ranges cannot tell.

use std::collections::BTreeSet;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::phone::Phone;
use super::sahara_elf::{ElfClass, ElfHeader, ELF32_HEADER_LEN, ELF64_HEADER_LEN};
use crate::sahara::identity::{self, ChipIdV3};
use crate::sahara::packet::{
    ExecCommand, Header, Hello, Mode, Packet, HEADER_LEN, MAX_PACKET_LEN, PROGRAMMER_IMAGE_ID,
};
use crate::sahara::status::Status;
use crate::transport::{read_exact, Framing, Transport, TransportError};

mod identity_model;
mod ramdump;
pub use identity_model::SaharaIdentity;
pub use ramdump::{pattern, SimMemoryDump};

/// Misbehaviour to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaharaFault {
    /// Never sends anything (a hung ROM, or a port that is not the phone).
    Silent,
    /// Sends line noise instead of HELLO, then ignores the host.
    Garbage,
    /// Its HELLO was lost (sent before the host opened the port, or eaten by a driver): it
    /// waits for an unsolicited HELLO_RESP.
    HelloLost,
    /// Its first READ_DATA(_64) asks for this range whatever the programmer's size (a ROM
    /// reading a corrupt header, or not a ROM at all), then waits for the host to go.
    AbsurdRead { offset: u64, length: u64 },
    /// Its EXECUTE_RESP announces this many data bytes for every client command.
    AbsurdExecLength(u32),
}

/// How a Sahara session with the simulated ROM ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaharaServeOutcome {
    /// The programmer passed the signature check and the transfer completed (DONE_RESP
    /// complete): the programmer runs now, so Firehose follows on the same link.
    ProgrammerAccepted {
        sha256: [u8; 32],
        size: u64,
        read_requests: u64,
    },
    /// The ROM refused the image with END_OF_IMAGE `status` and waited for the host to go.
    ProgrammerRejected {
        status: Status,
        sha256: Option<[u8; 32]>,
    },
    /// The host sent RESET; the ROM acknowledged and restarts.
    Reset,
    /// The link went away.
    HostGone,
    /// The host sent nothing for `host_timeout`.
    HostSilent,
}

#[derive(Debug, thiserror::Error)]
pub enum SaharaSimError {
    #[error("simulated Sahara device: {0}")]
    Transport(#[from] TransportError),
}

/// A simulated boot ROM and its configuration.
#[derive(Debug, Clone)]
pub struct SaharaDevice {
    pub version: u32,
    pub version_compatible: u32,
    /// Mode announced in HELLO (image transfer pending on a normal EDL boot).
    pub hello_mode: Mode,
    pub max_packet_len: u32,
    pub identity: SaharaIdentity,
    /// Image id it asks for (13: the Firehose programmer).
    pub image_id: u32,
    /// READ_DATA_64 (protocol ≥ 2.8, 64-bit ROMs) instead of READ_DATA.
    pub read_data_64: bool,
    /// Largest READ_DATA request; real ROMs ask for 0x1000 at a time.
    pub chunk_size: u32,
    /// Programmers larger than this are refused (INVALID_IMG_HDR_DATA_SIZE): ROMs load into a
    /// fixed RAM window.
    pub max_programmer_size: u64,
    pub fault: Option<SaharaFault>,
    /// How long it waits for the host's next packet or data.
    pub host_timeout: Duration,
    /// A crashed phone: HELLO announces memory debug and this RAM is offered (see
    /// [`SaharaDevice::crashed`]).
    pub memory_dump: Option<SimMemoryDump>,
}

impl SaharaDevice {
    /// A ROM speaking `version` (1, 2 or 3) with `identity`. Version 1 ROMs use READ_DATA;
    /// later ones READ_DATA_64, as the SDM6xx and newer parts do.
    pub fn new(version: u32, identity: SaharaIdentity) -> Self {
        SaharaDevice {
            version,
            version_compatible: 1,
            hello_mode: Mode::ImageTxPending,
            max_packet_len: MAX_PACKET_LEN as u32,
            identity,
            image_id: PROGRAMMER_IMAGE_ID,
            read_data_64: version >= 2,
            chunk_size: 0x1000,
            max_programmer_size: 64 * 1024 * 1024,
            fault: None,
            host_timeout: Duration::from_secs(10),
            memory_dump: None,
        }
    }

    /// The ROM of a phone that crashed: it greets in memory-debug mode and offers `dump`.
    pub fn crashed(version: u32, identity: SaharaIdentity, dump: SimMemoryDump) -> Self {
        SaharaDevice {
            hello_mode: Mode::MemoryDebug,
            memory_dump: Some(dump),
            ..Self::new(version, identity)
        }
    }

    /// The boot ROM of a simulated phone (identity and signed list from the phone model).
    pub fn for_phone(version: u32, phone: &Phone) -> Self {
        Self::new(version, SaharaIdentity::from(&phone.identity()))
    }

    /// Serve one Sahara session on `link` until the programmer is accepted or refused, the
    /// host resets the ROM, or the host goes away.
    pub fn serve(&self, link: &mut dyn Transport) -> Result<SaharaServeOutcome, SaharaSimError> {
        match self.serve_session(link) {
            Err(SaharaSimError::Transport(e)) => match e {
                // A host that stops reading is as gone as one that unplugged.
                TransportError::Timeout(_) => Ok(SaharaServeOutcome::HostSilent),
                e => gone_or(e),
            },
            other => other,
        }
    }

    fn serve_session(
        &self,
        link: &mut dyn Transport,
    ) -> Result<SaharaServeOutcome, SaharaSimError> {
        match self.fault {
            Some(SaharaFault::Silent) => return self.ignore_host(link),
            Some(SaharaFault::Garbage) => {
                let noise: Vec<u8> = (0..40u8).map(|i| 0x55 ^ i.wrapping_mul(0x9b)).collect();
                if let Err(e) = link.write(&noise, self.host_timeout) {
                    return gone_or(e);
                }
                return self.ignore_host(link);
            }
            Some(SaharaFault::HelloLost) => {}
            Some(SaharaFault::AbsurdRead { .. } | SaharaFault::AbsurdExecLength(_)) | None => {
                self.send(link, &self.hello())?;
            }
        }
        let mut in_command_mode = false;
        let mut pending_exec: Option<(ExecCommand, Vec<u8>)> = None;
        loop {
            let packet = match self.read_packet(link) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.send(
                        link,
                        &end_of_image(self.image_id, Status::INVALID_PACKET_SIZE),
                    )?;
                    continue;
                }
                Err(Quit(outcome)) => return outcome,
            };
            match packet {
                Packet::HelloResp(resp) if !in_command_mode => {
                    if resp.version < self.version_compatible {
                        self.send(
                            link,
                            &end_of_image(self.image_id, Status::INVALID_HOST_PROTOCOL),
                        )?;
                        continue;
                    }
                    // A crashed ROM serves only the mode it announced (qdl echoes it back).
                    if let Some(dump) = &self.memory_dump {
                        if resp.mode == Mode::MemoryDebug {
                            return self.serve_memory_debug(link, dump);
                        }
                        let refusal = end_of_image(self.image_id, Status::INVALID_HOST_MODE);
                        self.send(link, &refusal)?;
                        continue;
                    }
                    match resp.mode {
                        Mode::ImageTxPending => return self.transfer(link),
                        // Command mode arrived with protocol 2.1.
                        Mode::Command if self.version >= 2 => {
                            in_command_mode = true;
                            self.send(link, &Packet::CmdReady)?;
                        }
                        Mode::MemoryDebug => self.send(
                            link,
                            &end_of_image(self.image_id, Status::MEMORY_DEBUG_NOT_SUPPORTED),
                        )?,
                        _ => self.send(
                            link,
                            &end_of_image(self.image_id, Status::INVALID_HOST_MODE),
                        )?,
                    }
                }
                Packet::Execute { command } if in_command_mode => {
                    match self.exec_payload(command) {
                        Some(payload) => {
                            let data_length = match self.fault {
                                Some(SaharaFault::AbsurdExecLength(len)) => len,
                                _ => payload.len() as u32,
                            };
                            self.send(
                                link,
                                &Packet::ExecuteResp {
                                    command,
                                    data_length,
                                },
                            )?;
                            pending_exec = Some((command, payload));
                        }
                        None => self.send(
                            link,
                            &end_of_image(self.image_id, Status::EXEC_CMD_UNSUPPORTED),
                        )?,
                    }
                }
                Packet::ExecuteData { command } if in_command_mode => match pending_exec.take() {
                    Some((pending, payload)) if pending == command => {
                        if !payload.is_empty() {
                            self.write(link, &payload)?;
                        }
                    }
                    _ => self.send(
                        link,
                        &end_of_image(self.image_id, Status::EXEC_DATA_INVALID_CLIENT_CMD),
                    )?,
                },
                Packet::SwitchMode { mode } if in_command_mode => match mode {
                    // Back to the start: a fresh HELLO (qdl relies on this after chip info).
                    Mode::ImageTxPending => {
                        in_command_mode = false;
                        self.send(link, &self.hello())?;
                    }
                    Mode::Command => self.send(link, &Packet::CmdReady)?,
                    _ => self.send(
                        link,
                        &end_of_image(self.image_id, Status::INVALID_MODE_SWITCH),
                    )?,
                },
                Packet::Reset => {
                    self.send(link, &Packet::ResetResp)?;
                    return Ok(SaharaServeOutcome::Reset);
                }
                Packet::ResetStateMachine => {
                    in_command_mode = false;
                    pending_exec = None;
                    self.send(link, &self.hello())?;
                }
                _ => self.send(link, &end_of_image(self.image_id, Status::INVALID_CMD))?,
            }
        }
    }

    fn hello(&self) -> Packet {
        Packet::Hello(Hello {
            version: self.version,
            version_compatible: self.version_compatible,
            max_packet_len: self.max_packet_len,
            mode: self.hello_mode,
        })
    }

    /// The answer to a client command, or `None` when this ROM does not have it.
    fn exec_payload(&self, command: ExecCommand) -> Option<Vec<u8>> {
        let id = &self.identity;
        match command {
            ExecCommand::Nop => Some(Vec::new()),
            ExecCommand::SerialNumRead => Some(identity::encode_serial(id.serial)),
            // v3 ROMs dropped MSM_HW_ID_READ for the v3 chip id.
            ExecCommand::MsmHwIdRead if self.version < 3 => Some(identity::encode_hw_id(id.hw_id)),
            ExecCommand::ReadChipIdV3 if self.version >= 3 => {
                Some(identity::encode_chip_id_v3(ChipIdV3 {
                    chip_identifier: id.chip_identifier,
                    hw_id: id.hw_id,
                }))
            }
            // Older ROMs repeat the digest per root-certificate slot; v3 ROMs zero-pad it to
            // 64 bytes. Hosts must reduce both to the digest.
            ExecCommand::OemPkHashRead if self.version < 3 => Some(id.oem_pk_hash.repeat(2)),
            ExecCommand::OemPkHashRead => {
                let mut padded = id.oem_pk_hash.clone();
                if padded.len() < 64 {
                    padded.resize(64, 0);
                }
                Some(padded)
            }
            ExecCommand::GetSoftwareVersionSbl => Some(id.sbl_version.to_le_bytes().to_vec()),
            _ => None,
        }
    }

    /// Walk the programmer, judge it, and finish the session.
    fn transfer(&self, link: &mut dyn Transport) -> Result<SaharaServeOutcome, SaharaSimError> {
        if let Some(SaharaFault::AbsurdRead { offset, length }) = self.fault {
            self.send(link, &self.read_request(offset, length))?;
            return self.ignore_host(link);
        }
        let mut walk = Walk::default();
        match self.walk_programmer(link, &mut walk) {
            Ok(Ok(())) => {}
            Ok(Err(status)) => return self.reject(link, status, None),
            Err(Quit(outcome)) => return outcome,
        }
        let sha256: [u8; 32] = walk.hasher.finalize().into();
        if !self.identity.signed_programmers.contains(&sha256) {
            return self.reject(link, Status::IMAGE_AUTH_FAILURE, Some(sha256));
        }
        self.send(link, &end_of_image(self.image_id, Status::SUCCESS))?;
        loop {
            match self.read_packet(link) {
                Ok(Some(Packet::Done)) => {
                    self.send(
                        link,
                        &Packet::DoneResp {
                            status: Mode::ImageTxComplete,
                        },
                    )?;
                    return Ok(SaharaServeOutcome::ProgrammerAccepted {
                        sha256,
                        size: walk.size,
                        read_requests: walk.requests,
                    });
                }
                Ok(Some(Packet::Reset)) => {
                    self.send(link, &Packet::ResetResp)?;
                    return Ok(SaharaServeOutcome::Reset);
                }
                Ok(_) => self.send(link, &end_of_image(self.image_id, Status::INVALID_CMD))?,
                Err(Quit(outcome)) => return outcome,
            }
        }
    }

    /// Request header, program headers, then every byte up to the end of the last segment
    /// or table, hashing in file order. `Ok(Err(status))`: the ROM refuses the image.
    fn walk_programmer(
        &self,
        link: &mut dyn Transport,
        walk: &mut Walk,
    ) -> Result<Result<(), Status>, Quit> {
        // The ELF header: 64-bit ROMs ask for an ELF64 header's worth, 32-bit ones for ELF32's.
        let first = if self.read_data_64 {
            ELF64_HEADER_LEN
        } else {
            ELF32_HEADER_LEN
        };
        let mut prefix = self.request(link, walk, 0, first)?;
        let class = match ElfHeader::class_of(&prefix) {
            Ok(c) => c,
            Err(status) => return Ok(Err(status)),
        };
        if class == ElfClass::Elf64 && (prefix.len() as u64) < ELF64_HEADER_LEN {
            let rest = self.request(
                link,
                walk,
                prefix.len() as u64,
                ELF64_HEADER_LEN - prefix.len() as u64,
            )?;
            prefix.extend_from_slice(&rest);
        }
        let header = match ElfHeader::parse(&prefix) {
            Ok(h) => h,
            Err(status) => return Ok(Err(status)),
        };
        if header.phoff < class.header_len() {
            return Ok(Err(Status::UNINIT_PHDR_LOC));
        }
        let phdrs_end = match header.phoff.checked_add(header.phdrs_len()) {
            Some(end) if end <= self.max_programmer_size => end,
            _ => return Ok(Err(Status::INVALID_IMG_HDR_DATA_SIZE)),
        };
        // Program headers: contiguous with what was read (extend the prefix) or elsewhere.
        let mut cached: Vec<(u64, Vec<u8>)> = Vec::new();
        let prefix_end = prefix.len() as u64;
        let phdrs = if header.phoff <= prefix_end {
            if phdrs_end > prefix_end {
                let rest = self.request(link, walk, prefix_end, phdrs_end - prefix_end)?;
                prefix.extend_from_slice(&rest);
            }
            prefix[header.phoff as usize..phdrs_end as usize].to_vec()
        } else {
            let table = self.request(link, walk, header.phoff, header.phdrs_len())?;
            cached.push((header.phoff, table.clone()));
            table
        };
        cached.insert(0, (0, prefix));
        let segments = match header.segments(&phdrs) {
            Ok(s) => s,
            Err(status) => return Ok(Err(status)),
        };
        let Some(sections_end) = header.section_table_end() else {
            return Ok(Err(Status::INVALID_IMG_HDR_DATA_SIZE));
        };
        let mut boundaries = BTreeSet::from([0, phdrs_end, sections_end]);
        for (start, data) in &cached {
            boundaries.insert(*start);
            boundaries.insert(start + data.len() as u64);
        }
        for (offset, len) in &segments {
            boundaries.insert(*offset);
            boundaries.insert(offset + len);
        }
        if let Some(&(offset, len)) = segments.iter().max_by_key(|(o, l)| o + l) {
            if offset + len > self.max_programmer_size {
                return Ok(Err(Status::INVALID_IMG_HDR_DATA_SIZE));
            }
        }
        if sections_end > self.max_programmer_size {
            return Ok(Err(Status::INVALID_IMG_HDR_DATA_SIZE));
        }
        let bounds: Vec<u64> = boundaries.into_iter().collect();
        for pair in bounds.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            let from_cache = cached.iter().find_map(|(at, data)| {
                let stop = at + data.len() as u64;
                (start >= *at && end <= stop)
                    .then(|| &data[(start - at) as usize..(end - at) as usize])
            });
            match from_cache {
                Some(bytes) => walk.hasher.update(bytes),
                None => {
                    let mut at = start;
                    while at < end {
                        let n = (end - at).min(u64::from(self.chunk_size.max(1)));
                        let data = self.request(link, walk, at, n)?;
                        walk.hasher.update(&data);
                        at += n;
                    }
                }
            }
            walk.size = end;
        }
        Ok(Ok(()))
    }

    /// One READ_DATA(_64) and the bytes that answer it.
    fn request(
        &self,
        link: &mut dyn Transport,
        walk: &mut Walk,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, Quit> {
        // Bounded by max_programmer_size, which a 32-bit ROM keeps below 4 GiB.
        self.send(link, &self.read_request(offset, length))
            .map_err(quit_on_error)?;
        walk.requests += 1;
        let mut data = vec![0u8; length as usize];
        read_exact(link, &mut data, self.host_timeout).map_err(quit_on_transport)?;
        Ok(data)
    }

    /// READ_DATA_64, or READ_DATA with 32-bit fields (saturated) on a 32-bit ROM.
    fn read_request(&self, offset: u64, length: u64) -> Packet {
        if self.read_data_64 {
            Packet::ReadData64 {
                image: u64::from(self.image_id),
                offset,
                length,
            }
        } else {
            Packet::ReadData {
                image: self.image_id,
                offset: u32::try_from(offset).unwrap_or(u32::MAX),
                length: u32::try_from(length).unwrap_or(u32::MAX),
            }
        }
    }

    /// Refuse the image, then wait for the host to reset the ROM or leave, as a ROM in its
    /// error state does.
    fn reject(
        &self,
        link: &mut dyn Transport,
        status: Status,
        sha256: Option<[u8; 32]>,
    ) -> Result<SaharaServeOutcome, SaharaSimError> {
        let rejected = SaharaServeOutcome::ProgrammerRejected { status, sha256 };
        if self
            .send(link, &end_of_image(self.image_id, status))
            .is_err()
        {
            return Ok(rejected);
        }
        loop {
            match self.read_packet(link) {
                Ok(Some(Packet::Reset)) => {
                    self.send(link, &Packet::ResetResp)?;
                    return Ok(rejected);
                }
                Ok(_) => self.send(link, &end_of_image(self.image_id, status))?,
                Err(Quit(_)) => return Ok(rejected),
            }
        }
    }

    /// Read and drop whatever the host sends until it leaves.
    fn ignore_host(&self, link: &mut dyn Transport) -> Result<SaharaServeOutcome, SaharaSimError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match link.read_stream(&mut buf, self.host_timeout) {
                Ok(_) => {}
                Err(TransportError::Timeout(_)) => return Ok(SaharaServeOutcome::HostSilent),
                Err(e) => return gone_or(e),
            }
        }
    }

    /// The next host packet; `Ok(None)` for bytes that are not one.
    fn read_packet(&self, link: &mut dyn Transport) -> Result<Option<Packet>, Quit> {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let n = match link.framing() {
            Framing::Packets => match link.read_packet(&mut buf, self.host_timeout) {
                Ok(n) => n,
                Err(TransportError::Overflow { .. }) => return Ok(None),
                Err(e) => return Err(quit_on_transport(e)),
            },
            Framing::Stream => {
                read_exact(link, &mut buf[..HEADER_LEN], self.host_timeout)
                    .map_err(quit_on_transport)?;
                let Ok(header) = Header::parse(&buf[..HEADER_LEN]) else {
                    return Ok(None);
                };
                let total = header.length as usize;
                read_exact(link, &mut buf[HEADER_LEN..total], self.host_timeout)
                    .map_err(quit_on_transport)?;
                total
            }
        };
        Ok(Packet::decode(&buf[..n]).ok())
    }

    fn send(&self, link: &mut dyn Transport, packet: &Packet) -> Result<(), SaharaSimError> {
        self.write(link, &packet.encode())
    }

    fn write(&self, link: &mut dyn Transport, bytes: &[u8]) -> Result<(), SaharaSimError> {
        link.write(bytes, self.host_timeout)?;
        Ok(())
    }
}

#[derive(Default)]
struct Walk {
    hasher: Sha256,
    size: u64,
    requests: u64,
}

/// Stop serving: the session is over with this result.
struct Quit(Result<SaharaServeOutcome, SaharaSimError>);

fn quit_on_transport(e: TransportError) -> Quit {
    match e {
        TransportError::Timeout(_) => Quit(Ok(SaharaServeOutcome::HostSilent)),
        e => Quit(gone_or(e)),
    }
}

fn quit_on_error(e: SaharaSimError) -> Quit {
    match e {
        SaharaSimError::Transport(t) => quit_on_transport(t),
    }
}

fn gone_or(e: TransportError) -> Result<SaharaServeOutcome, SaharaSimError> {
    if e.is_disconnect() {
        Ok(SaharaServeOutcome::HostGone)
    } else {
        Err(SaharaSimError::Transport(e))
    }
}

fn end_of_image(image: u32, status: Status) -> Packet {
    Packet::EndOfImage { image, status }
}
