//! The Sahara host: answer a boot ROM's HELLO, read its identity in command mode, and serve it
//! the programmer it asks for, over any [`Transport`].
//!
//! Packets are read by [`super::framing`], which never reads past a packet on byte streams.

use std::time::Duration;

use super::error::SaharaError;
use super::framing::{read_incoming, transport_error, Incoming};
use super::identity;
use super::images::{OpenImages, SaharaImages};
use super::outcome::{DeviceInfo, ImageTransfer, InfoOutcome, SaharaOutcome, UploadReport};
use super::packet::{ExecCommand, Hello, HelloResp, Mode, Packet, MAX_VERSION};
use super::status::Status;
use crate::progress::{ProgressEvent, ProgressSink};
use crate::transport::{read_exact, Transport, TransportError};

/// How long each wait may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaharaTimeouts {
    /// Wait this long for the device's HELLO before prodding it with an unsolicited HELLO_RESP
    /// (the HELLO may already have been sent before we opened the port, or eaten by a driver).
    pub hello: Duration,
    /// Every other packet, including the answer to the prod.
    pub packet: Duration,
    /// Each write (packets and image data).
    pub write: Duration,
}

impl Default for SaharaTimeouts {
    fn default() -> Self {
        SaharaTimeouts {
            hello: Duration::from_secs(1),
            // The ROM authenticates the whole programmer between its last READ_DATA and
            // END_OF_IMAGE; that takes a few hundred milliseconds on slow parts.
            packet: Duration::from_secs(5),
            write: Duration::from_secs(5),
        }
    }
}

/// No client command answer we read is longer than this (the chip id is 48 bytes, PK hashes up
/// to 128 with repetition).
pub const MAX_EXEC_PAYLOAD: usize = 4096;

/// Image data goes out in pieces of this size (a multiple of every USB max packet size, so
/// the pieces form one continuous transfer for the device).
const DATA_CHUNK: usize = 1024 * 1024;

/// Version we claim when prodding a device whose HELLO we never saw (qdl's baseline).
const DEFAULT_VERSION: u32 = 2;

/// A Sahara session on one link. Borrow the link; when Sahara is done, the same link carries
/// Firehose.
pub struct SaharaHost<'a> {
    pub(super) link: &'a mut dyn Transport,
    pub(super) timeouts: SaharaTimeouts,
    buf: Vec<u8>,
    pub(super) data: Vec<u8>,
}

impl<'a> SaharaHost<'a> {
    pub fn new(link: &'a mut dyn Transport) -> Self {
        Self::with_timeouts(link, SaharaTimeouts::default())
    }

    pub fn with_timeouts(link: &'a mut dyn Transport, timeouts: SaharaTimeouts) -> Self {
        SaharaHost {
            link,
            timeouts,
            buf: Vec::new(),
            data: Vec::new(),
        }
    }

    /// The next thing the device sends. When the first HELLO does not come (the device sent it
    /// before the port was opened, or a driver ate it), prod the device once with an unprompted
    /// HELLO_RESP in `mode`: a ROM left mid-protocol answers that.
    pub(super) fn next_incoming(
        &mut self,
        first: bool,
        prodded: &mut bool,
        mode: Mode,
        during: &str,
    ) -> Result<Incoming, SaharaError> {
        loop {
            match self.read_first_or_next(first, *prodded, during) {
                Err(e) if e.is_timeout() && first && !*prodded => {
                    self.send_hello_resp(DEFAULT_VERSION, mode, during)?;
                    *prodded = true;
                }
                other => return other,
            }
        }
    }

    /// Enter command mode, read serial, HW ID (v1/v2) or chip id (v3), OEM PK hash and SBL
    /// version, then switch the device back to image transfer so an upload can follow.
    pub fn read_info(&mut self) -> Result<InfoOutcome, SaharaError> {
        let during = "entering command mode";
        let mut version = None;
        let mut first = true;
        let mut prodded = false;
        loop {
            let incoming = self.next_incoming(first, &mut prodded, Mode::Command, during)?;
            let packet = match incoming {
                Incoming::Firehose(already_read) => {
                    return Ok(InfoOutcome::FirehoseAlreadyRunning { already_read })
                }
                Incoming::Packet(p) => p,
            };
            first = false;
            match packet {
                Packet::Hello(hello) => {
                    version = Some(self.answer_hello(hello, Mode::Command, during)?);
                }
                Packet::CmdReady => break,
                Packet::EndOfImage { status, .. } => {
                    return Err(SaharaError::CommandModeRefused {
                        link: self.link.describe(),
                        status,
                    })
                }
                other => return Err(self.unexpected(&other, during, "HELLO or CMD_READY")),
            }
        }

        let mut info = DeviceInfo {
            version,
            serial: None,
            hw_id: None,
            chip_id_v3: None,
            oem_pk_hash: None,
            sbl_version: None,
            refused: Vec::new(),
        };
        if let Some(p) = self.execute(ExecCommand::SerialNumRead, &mut info)? {
            info.serial = Some(self.payload(identity::decode_serial(&p))?);
        }
        // v3 ROMs no longer answer MSM_HW_ID_READ; they give the same ids in the v3 chip id.
        // Without a HELLO we do not know the version: ask the old way, then the new one.
        if version.unwrap_or(0) < 3 {
            if let Some(p) = self.execute(ExecCommand::MsmHwIdRead, &mut info)? {
                info.hw_id = Some(self.payload(identity::decode_hw_id(&p))?);
            }
        }
        if info.hw_id.is_none() && version.is_none_or(|v| v >= 3) {
            if let Some(p) = self.execute(ExecCommand::ReadChipIdV3, &mut info)? {
                let chip = self.payload(identity::decode_chip_id_v3(&p))?;
                info.hw_id = Some(chip.hw_id);
                info.chip_id_v3 = Some(chip);
            }
        }
        if let Some(p) = self.execute(ExecCommand::OemPkHashRead, &mut info)? {
            info.oem_pk_hash = Some(identity::normalize_pk_hash(&p));
        }
        if let Some(p) = self.execute(ExecCommand::GetSoftwareVersionSbl, &mut info)? {
            info.sbl_version = Some(self.payload(identity::decode_sbl_version(&p))?);
        }
        // Back to image transfer: the ROM restarts with a fresh HELLO, ready for an upload.
        self.send(
            &Packet::SwitchMode {
                mode: Mode::ImageTxPending,
            },
            "leaving command mode",
        )?;
        Ok(InfoOutcome::Info(info))
    }

    /// Serve `images` to the device until it reports the transfer complete.
    pub fn upload(
        &mut self,
        images: &SaharaImages,
        progress: &dyn ProgressSink,
    ) -> Result<SaharaOutcome, SaharaError> {
        let mut open = images.open()?;
        let names: Vec<String> = open
            .images
            .iter()
            .map(|i| i.path().display().to_string())
            .collect();
        let step = format!("sahara upload {}", names.join(", "));
        progress.event(ProgressEvent::StepStarted {
            step: &step,
            total_bytes: open.total_size(),
        });
        let during = "uploading the programmer";
        let mut version = None;
        let mut first = true;
        let mut prodded = false;
        loop {
            let incoming = self.next_incoming(first, &mut prodded, Mode::ImageTxPending, during)?;
            let packet = match incoming {
                Incoming::Firehose(already_read) => {
                    progress.event(ProgressEvent::StepFinished { step: &step });
                    return Ok(SaharaOutcome::FirehoseAlreadyRunning { already_read });
                }
                Incoming::Packet(p) => p,
            };
            first = false;
            match packet {
                Packet::Hello(hello) => {
                    if hello.mode == Mode::MemoryDebug {
                        return Err(SaharaError::MemoryDebugMode {
                            link: self.link.describe(),
                        });
                    }
                    version = Some(self.answer_hello(hello, Mode::ImageTxPending, during)?);
                }
                Packet::ReadData {
                    image,
                    offset,
                    length,
                } => self.serve(
                    &mut open,
                    u64::from(image),
                    u64::from(offset),
                    u64::from(length),
                    progress,
                )?,
                Packet::ReadData64 {
                    image,
                    offset,
                    length,
                } => self.serve(&mut open, image, offset, length, progress)?,
                Packet::EndOfImage { image, status } => {
                    if !status.is_success() {
                        let file = open
                            .get_mut(u64::from(image))
                            .map(|i| i.path.clone())
                            .unwrap_or_else(|| names.join(", ").into());
                        return Err(SaharaError::ImageRejected {
                            link: self.link.describe(),
                            file,
                            image: u64::from(image),
                            status,
                        });
                    }
                    self.send(&Packet::Done, during)?;
                }
                Packet::DoneResp { status } => {
                    let complete = match status {
                        Mode::ImageTxComplete => true,
                        // MSM8916-class ROMs say "pending" after their only image.
                        Mode::ImageTxPending => images.is_single_programmer(),
                        other => {
                            return Err(SaharaError::BadDoneStatus {
                                link: self.link.describe(),
                                status: other.to_u32(),
                            })
                        }
                    };
                    if complete {
                        progress.event(ProgressEvent::StepFinished { step: &step });
                        return Ok(SaharaOutcome::ProgrammerLoaded(report(version, open)));
                    }
                }
                // Left in command mode by an earlier session: ask for image transfer.
                Packet::CmdReady => self.send(
                    &Packet::SwitchMode {
                        mode: Mode::ImageTxPending,
                    },
                    during,
                )?,
                Packet::MemoryDebug { .. } | Packet::MemoryDebug64 { .. } => {
                    return Err(SaharaError::MemoryDebugMode {
                        link: self.link.describe(),
                    })
                }
                Packet::ResetResp => {
                    return Err(SaharaError::DeviceReset {
                        link: self.link.describe(),
                        during: "upload".into(),
                    })
                }
                other => {
                    return Err(self.unexpected(
                        &other,
                        during,
                        "HELLO, READ_DATA, END_OF_IMAGE or DONE_RESP",
                    ))
                }
            }
        }
    }

    /// Ask the device to reset (leave Sahara and reboot).
    pub fn reset(&mut self) -> Result<(), SaharaError> {
        let during = "waiting for RESET_RESP";
        self.send(&Packet::Reset, "resetting the device")?;
        // A HELLO the ROM sent before our RESET (after SWITCH_MODE, or at boot) may still be
        // queued ahead of the answer.
        for _ in 0..4 {
            match self.read_packet(self.timeouts.packet, false, during)? {
                Incoming::Packet(Packet::ResetResp) => return Ok(()),
                Incoming::Packet(Packet::Hello(_)) => continue,
                Incoming::Packet(other) => {
                    return Err(self.unexpected(&other, during, "RESET_RESP"))
                }
                Incoming::Firehose(_) => break,
            }
        }
        Err(SaharaError::Unexpected {
            link: self.link.describe(),
            during: during.into(),
            got: "something else",
            expected: "RESET_RESP",
        })
    }

    fn read_first_or_next(
        &mut self,
        first: bool,
        prodded: bool,
        during: &str,
    ) -> Result<Incoming, SaharaError> {
        let timeout = if first && !prodded {
            self.timeouts.hello
        } else {
            self.timeouts.packet
        };
        let waiting_for = if first && prodded {
            format!("HELLO ({during}; also after an unsolicited HELLO_RESP)")
        } else if first {
            format!("HELLO ({during})")
        } else {
            format!("the next Sahara packet ({during})")
        };
        self.read_packet(timeout, first, &waiting_for)
    }

    pub(super) fn answer_hello(
        &mut self,
        hello: Hello,
        mode: Mode,
        during: &str,
    ) -> Result<u32, SaharaError> {
        if hello.version_compatible > MAX_VERSION || hello.version == 0 {
            return Err(SaharaError::UnsupportedVersion {
                link: self.link.describe(),
                version: hello.version,
                compatible: hello.version_compatible,
            });
        }
        let version = hello.version.min(MAX_VERSION);
        self.send_hello_resp(version, mode, during)?;
        Ok(hello.version)
    }

    fn send_hello_resp(
        &mut self,
        version: u32,
        mode: Mode,
        during: &str,
    ) -> Result<(), SaharaError> {
        let resp = Packet::HelloResp(HelloResp {
            version,
            version_compatible: 1,
            status: Status::SUCCESS,
            mode,
        });
        self.send(&resp, during)
    }

    /// Run one client command. `Ok(None)` when the device refused it (END_OF_IMAGE with a
    /// status, recorded in `info.refused`); the ROM stays in command mode after a refusal.
    fn execute(
        &mut self,
        command: ExecCommand,
        info: &mut DeviceInfo,
    ) -> Result<Option<Vec<u8>>, SaharaError> {
        let during = format!("reading {command:?} in command mode");
        self.send(&Packet::Execute { command }, &during)?;
        let length = match self.read_packet(self.timeouts.packet, false, &during)? {
            Incoming::Packet(Packet::ExecuteResp {
                command: answered,
                data_length,
            }) if answered == command => data_length,
            Incoming::Packet(Packet::EndOfImage { status, .. }) => {
                info.refused.push((command, status));
                return Ok(None);
            }
            Incoming::Packet(other) => {
                return Err(self.unexpected(&other, &during, "EXECUTE_RESP for the same command"))
            }
            Incoming::Firehose(_) => {
                return Err(SaharaError::Unexpected {
                    link: self.link.describe(),
                    during,
                    got: "Firehose XML",
                    expected: "EXECUTE_RESP",
                })
            }
        };
        if length as usize > MAX_EXEC_PAYLOAD {
            return Err(SaharaError::PayloadTooLong {
                link: self.link.describe(),
                command: format!("{command:?}"),
                len: length,
                max: MAX_EXEC_PAYLOAD,
            });
        }
        self.send(&Packet::ExecuteData { command }, &during)?;
        let mut payload = vec![0u8; length as usize];
        read_exact(&mut *self.link, &mut payload, self.timeouts.packet)
            .map_err(|e| self.transport_error(e, &during))?;
        Ok(Some(payload))
    }

    fn payload<T>(&self, decoded: Result<T, identity::PayloadError>) -> Result<T, SaharaError> {
        decoded.map_err(|e| SaharaError::Unexpected {
            link: self.link.describe(),
            during: e.to_string(),
            got: "a short answer",
            expected: "a complete command-mode answer",
        })
    }

    fn serve(
        &mut self,
        open: &mut OpenImages,
        image_id: u64,
        offset: u64,
        length: u64,
        progress: &dyn ProgressSink,
    ) -> Result<(), SaharaError> {
        let link = self.link.describe();
        let Some(image) = open.get_mut(image_id) else {
            let available = open.ids();
            // Like qdl: a ROM asking for an image we do not have cannot continue; reset it.
            let _ = self
                .link
                .write(&Packet::Reset.encode(), self.timeouts.write);
            return Err(SaharaError::UnknownImage {
                link,
                image: image_id,
                available,
            });
        };
        if offset > image.size || length > image.size - offset {
            return Err(SaharaError::OutOfRange {
                link,
                file: image.path.clone(),
                image: image_id,
                offset,
                length,
                size: image.size,
            });
        }
        image.requests += 1;
        let mut done = 0u64;
        while done < length {
            if progress.stop_requested() {
                return Err(SaharaError::Stopped {
                    link,
                    during: format!("sending image {image_id} at offset {}", offset + done),
                });
            }
            let n = (length - done).min(DATA_CHUNK as u64) as usize;
            self.data.resize(n, 0);
            image.read_at(offset + done, &mut self.data[..n])?;
            if let Err(e) = self.link.write(&self.data[..n], self.timeouts.write) {
                let during = format!(
                    "sending {} bytes at offset {} of {}",
                    length,
                    offset,
                    image.path.display()
                );
                return Err(transport_error(link, e, &during));
            }
            done += n as u64;
            image.bytes_sent += n as u64;
            progress.event(ProgressEvent::Bytes { bytes: n as u64 });
        }
        Ok(())
    }

    pub(super) fn send(&mut self, packet: &Packet, during: &str) -> Result<(), SaharaError> {
        self.link
            .write(&packet.encode(), self.timeouts.write)
            .map_err(|e| self.transport_error(e, during))
    }

    /// Read one Sahara packet (see [`framing::read_incoming`]).
    pub(super) fn read_packet(
        &mut self,
        timeout: Duration,
        first: bool,
        waiting_for: &str,
    ) -> Result<Incoming, SaharaError> {
        read_incoming(&mut *self.link, &mut self.buf, timeout, first, waiting_for)
    }

    pub(super) fn transport_error(&self, e: TransportError, during: &str) -> SaharaError {
        transport_error(self.link.describe(), e, during)
    }

    pub(super) fn unexpected(
        &self,
        got: &Packet,
        during: &str,
        expected: &'static str,
    ) -> SaharaError {
        SaharaError::Unexpected {
            link: self.link.describe(),
            during: during.to_string(),
            got: got.name(),
            expected,
        }
    }
}

fn report(version: Option<u32>, open: OpenImages) -> UploadReport {
    UploadReport {
        version,
        images: open
            .images
            .into_iter()
            .map(|i| ImageTransfer {
                image_id: i.id,
                file: i.path,
                size: i.size,
                bytes_sent: i.bytes_sent,
                requests: i.requests,
            })
            .collect(),
    }
}
