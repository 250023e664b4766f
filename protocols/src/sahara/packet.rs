//! Sahara packets: every command of protocol versions 1–3, little-endian, sans-io.
//!
//! Every packet starts with `u32 command, u32 length` where `length` counts the whole packet
//! including that header. Each command has one fixed size; a packet whose declared length
//! disagrees with its command or with the bytes that arrived is rejected, because a boot ROM that
//! sends such a thing is not in a state we can reason about (qdl resets it; we report it).

use super::status::Status;

/// `u32 command` + `u32 length`.
pub const HEADER_LEN: usize = 8;

/// No Sahara packet is larger than this. Devices announce 1024 as their maximum command packet
/// length in HELLO; the largest packet defined (HELLO/HELLO_RESP) is 48 bytes. A stream reader
/// bounds the declared length with this before it reads the body.
pub const MAX_PACKET_LEN: usize = 1024;

/// Image id of the Firehose/eHOSTDL programmer (`SAHARA_ID_EHOSTDL_IMG`).
pub const PROGRAMMER_IMAGE_ID: u32 = 13;

/// The highest protocol version this codec speaks.
pub const MAX_VERSION: u32 = 3;

/// Command ids on the wire.
pub mod command {
    pub const HELLO: u32 = 0x01;
    pub const HELLO_RESP: u32 = 0x02;
    pub const READ_DATA: u32 = 0x03;
    pub const END_OF_IMAGE: u32 = 0x04;
    pub const DONE: u32 = 0x05;
    pub const DONE_RESP: u32 = 0x06;
    pub const RESET: u32 = 0x07;
    pub const RESET_RESP: u32 = 0x08;
    pub const MEMORY_DEBUG: u32 = 0x09;
    pub const MEMORY_READ: u32 = 0x0a;
    pub const CMD_READY: u32 = 0x0b;
    pub const SWITCH_MODE: u32 = 0x0c;
    pub const EXECUTE: u32 = 0x0d;
    pub const EXECUTE_RESP: u32 = 0x0e;
    pub const EXECUTE_DATA: u32 = 0x0f;
    pub const MEMORY_DEBUG_64: u32 = 0x10;
    pub const MEMORY_READ_64: u32 = 0x11;
    pub const READ_DATA_64: u32 = 0x12;
    pub const RESET_STATE_MACHINE: u32 = 0x13;
}

/// `HELLO` for a known command id, `None` otherwise.
pub fn command_name(command: u32) -> Option<&'static str> {
    Some(match command {
        command::HELLO => "HELLO",
        command::HELLO_RESP => "HELLO_RESP",
        command::READ_DATA => "READ_DATA",
        command::END_OF_IMAGE => "END_OF_IMAGE",
        command::DONE => "DONE",
        command::DONE_RESP => "DONE_RESP",
        command::RESET => "RESET",
        command::RESET_RESP => "RESET_RESP",
        command::MEMORY_DEBUG => "MEMORY_DEBUG",
        command::MEMORY_READ => "MEMORY_READ",
        command::CMD_READY => "CMD_READY",
        command::SWITCH_MODE => "SWITCH_MODE",
        command::EXECUTE => "EXECUTE",
        command::EXECUTE_RESP => "EXECUTE_RESP",
        command::EXECUTE_DATA => "EXECUTE_DATA",
        command::MEMORY_DEBUG_64 => "MEMORY_DEBUG_64",
        command::MEMORY_READ_64 => "MEMORY_READ_64",
        command::READ_DATA_64 => "READ_DATA_64",
        command::RESET_STATE_MACHINE => "RESET_STATE_MACHINE",
        _ => return None,
    })
}

/// The one valid total length of each command's packet.
pub fn packet_len(command: u32) -> Option<usize> {
    Some(match command {
        command::HELLO | command::HELLO_RESP => 0x30,
        command::READ_DATA => 0x14,
        command::END_OF_IMAGE => 0x10,
        command::DONE
        | command::RESET
        | command::RESET_RESP
        | command::CMD_READY
        | command::RESET_STATE_MACHINE => 0x08,
        command::DONE_RESP | command::SWITCH_MODE | command::EXECUTE | command::EXECUTE_DATA => {
            0x0c
        }
        command::MEMORY_DEBUG | command::MEMORY_READ | command::EXECUTE_RESP => 0x10,
        command::MEMORY_DEBUG_64 | command::MEMORY_READ_64 => 0x18,
        command::READ_DATA_64 => 0x20,
        _ => return None,
    })
}

/// The Sahara mode (HELLO, HELLO_RESP, SWITCH_MODE) or image transfer status (DONE_RESP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    ImageTxPending,
    ImageTxComplete,
    MemoryDebug,
    Command,
    /// A value this codec does not know; kept so a newer device is reported, not misread.
    Unknown(u32),
}

impl Mode {
    pub fn from_u32(value: u32) -> Mode {
        match value {
            0 => Mode::ImageTxPending,
            1 => Mode::ImageTxComplete,
            2 => Mode::MemoryDebug,
            3 => Mode::Command,
            other => Mode::Unknown(other),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            Mode::ImageTxPending => 0,
            Mode::ImageTxComplete => 1,
            Mode::MemoryDebug => 2,
            Mode::Command => 3,
            Mode::Unknown(v) => v,
        }
    }
}

/// Client commands run in command mode through EXECUTE / EXECUTE_RESP / EXECUTE_DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecCommand {
    Nop,
    /// 4 bytes: the chip serial number (u32 LE).
    SerialNumRead,
    /// 8 bytes on v1/v2: MSM_ID << 32 | OEM_ID << 16 | MODEL_ID (u64 LE). v3 ROMs refuse it.
    MsmHwIdRead,
    /// The OEM public-key hash (SHA-256 or SHA-384, sometimes repeated or zero-padded).
    OemPkHashRead,
    SwitchToDmssDload,
    SwitchToStreamDload,
    ReadDebugData,
    /// 4 bytes: the SBL (boot ROM) software version (u32 LE).
    GetSoftwareVersionSbl,
    GetCommandIdList,
    GetTrainingData,
    /// v3: extended chip information, replacing MSM_HW_ID_READ (see `identity`).
    ReadChipIdV3,
    Unknown(u32),
}

impl ExecCommand {
    pub fn from_u32(value: u32) -> ExecCommand {
        match value {
            0x00 => ExecCommand::Nop,
            0x01 => ExecCommand::SerialNumRead,
            0x02 => ExecCommand::MsmHwIdRead,
            0x03 => ExecCommand::OemPkHashRead,
            0x04 => ExecCommand::SwitchToDmssDload,
            0x05 => ExecCommand::SwitchToStreamDload,
            0x06 => ExecCommand::ReadDebugData,
            0x07 => ExecCommand::GetSoftwareVersionSbl,
            0x08 => ExecCommand::GetCommandIdList,
            0x09 => ExecCommand::GetTrainingData,
            0x0a => ExecCommand::ReadChipIdV3,
            other => ExecCommand::Unknown(other),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            ExecCommand::Nop => 0x00,
            ExecCommand::SerialNumRead => 0x01,
            ExecCommand::MsmHwIdRead => 0x02,
            ExecCommand::OemPkHashRead => 0x03,
            ExecCommand::SwitchToDmssDload => 0x04,
            ExecCommand::SwitchToStreamDload => 0x05,
            ExecCommand::ReadDebugData => 0x06,
            ExecCommand::GetSoftwareVersionSbl => 0x07,
            ExecCommand::GetCommandIdList => 0x08,
            ExecCommand::GetTrainingData => 0x09,
            ExecCommand::ReadChipIdV3 => 0x0a,
            ExecCommand::Unknown(v) => v,
        }
    }
}

/// HELLO, sent by the device when it enters Sahara.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub version: u32,
    /// The oldest version the device still accepts.
    pub version_compatible: u32,
    /// Largest command packet the device accepts.
    pub max_packet_len: u32,
    pub mode: Mode,
}

/// HELLO_RESP, the host's answer: which version it speaks and which mode it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloResp {
    pub version: u32,
    pub version_compatible: u32,
    pub status: Status,
    pub mode: Mode,
}

/// One Sahara packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    Hello(Hello),
    HelloResp(HelloResp),
    ReadData {
        image: u32,
        offset: u32,
        length: u32,
    },
    EndOfImage {
        image: u32,
        status: Status,
    },
    Done,
    /// `status` is the image transfer status: pending (more images wanted) or complete.
    DoneResp {
        status: Mode,
    },
    Reset,
    ResetResp,
    MemoryDebug {
        table_address: u32,
        table_length: u32,
    },
    MemoryRead {
        address: u32,
        length: u32,
    },
    CmdReady,
    SwitchMode {
        mode: Mode,
    },
    Execute {
        command: ExecCommand,
    },
    ExecuteResp {
        command: ExecCommand,
        data_length: u32,
    },
    ExecuteData {
        command: ExecCommand,
    },
    MemoryDebug64 {
        table_address: u64,
        table_length: u64,
    },
    MemoryRead64 {
        address: u64,
        length: u64,
    },
    ReadData64 {
        image: u64,
        offset: u64,
        length: u64,
    },
    ResetStateMachine,
}

/// Why bytes are not a Sahara packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("{len} bytes are too short for a Sahara packet header (8 bytes)")]
    Short { len: usize },
    #[error("Sahara packet declares length {declared}, outside {HEADER_LEN}..={MAX_PACKET_LEN}")]
    LengthOutOfBounds { declared: u32 },
    #[error("Sahara packet declares {declared} bytes but {actual} bytes arrived")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("unknown Sahara command 0x{command:08x}")]
    UnknownCommand { command: u32 },
    #[error("Sahara {name} packet must be {expected} bytes long, it declares {declared}")]
    WrongSize {
        name: &'static str,
        expected: usize,
        declared: u32,
    },
}

/// The 8-byte header, parsed on its own so a stream reader knows how much more to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: u32,
    pub length: u32,
}

impl Header {
    /// Parse and bound a header: the declared length must lie in `HEADER_LEN..=MAX_PACKET_LEN`.
    pub fn parse(bytes: &[u8]) -> Result<Header, PacketError> {
        let mut r = Reader::new(bytes);
        let (Some(command), Some(length)) = (r.u32(), r.u32()) else {
            return Err(PacketError::Short { len: bytes.len() });
        };
        if (length as usize) < HEADER_LEN || length as usize > MAX_PACKET_LEN {
            return Err(PacketError::LengthOutOfBounds { declared: length });
        }
        Ok(Header { command, length })
    }

    /// Bytes still to read after the header.
    pub fn body_len(&self) -> usize {
        (self.length as usize).saturating_sub(HEADER_LEN)
    }
}

impl Packet {
    pub fn command(&self) -> u32 {
        match self {
            Packet::Hello(_) => command::HELLO,
            Packet::HelloResp(_) => command::HELLO_RESP,
            Packet::ReadData { .. } => command::READ_DATA,
            Packet::EndOfImage { .. } => command::END_OF_IMAGE,
            Packet::Done => command::DONE,
            Packet::DoneResp { .. } => command::DONE_RESP,
            Packet::Reset => command::RESET,
            Packet::ResetResp => command::RESET_RESP,
            Packet::MemoryDebug { .. } => command::MEMORY_DEBUG,
            Packet::MemoryRead { .. } => command::MEMORY_READ,
            Packet::CmdReady => command::CMD_READY,
            Packet::SwitchMode { .. } => command::SWITCH_MODE,
            Packet::Execute { .. } => command::EXECUTE,
            Packet::ExecuteResp { .. } => command::EXECUTE_RESP,
            Packet::ExecuteData { .. } => command::EXECUTE_DATA,
            Packet::MemoryDebug64 { .. } => command::MEMORY_DEBUG_64,
            Packet::MemoryRead64 { .. } => command::MEMORY_READ_64,
            Packet::ReadData64 { .. } => command::READ_DATA_64,
            Packet::ResetStateMachine => command::RESET_STATE_MACHINE,
        }
    }

    pub fn name(&self) -> &'static str {
        command_name(self.command()).unwrap_or("?")
    }

    /// The packet's bytes, header included.
    pub fn encode(&self) -> Vec<u8> {
        let command = self.command();
        let len = packet_len(command).unwrap_or(HEADER_LEN);
        let mut out = Vec::with_capacity(len);
        put32(&mut out, command);
        put32(&mut out, len as u32);
        match *self {
            Packet::Hello(h) => {
                put32(&mut out, h.version);
                put32(&mut out, h.version_compatible);
                put32(&mut out, h.max_packet_len);
                put32(&mut out, h.mode.to_u32());
            }
            Packet::HelloResp(h) => {
                put32(&mut out, h.version);
                put32(&mut out, h.version_compatible);
                put32(&mut out, h.status.0);
                put32(&mut out, h.mode.to_u32());
            }
            Packet::ReadData {
                image,
                offset,
                length,
            } => {
                put32(&mut out, image);
                put32(&mut out, offset);
                put32(&mut out, length);
            }
            Packet::EndOfImage { image, status } => {
                put32(&mut out, image);
                put32(&mut out, status.0);
            }
            Packet::DoneResp { status } => put32(&mut out, status.to_u32()),
            Packet::MemoryDebug {
                table_address,
                table_length,
            } => {
                put32(&mut out, table_address);
                put32(&mut out, table_length);
            }
            Packet::MemoryRead { address, length } => {
                put32(&mut out, address);
                put32(&mut out, length);
            }
            Packet::SwitchMode { mode } => put32(&mut out, mode.to_u32()),
            Packet::Execute { command } | Packet::ExecuteData { command } => {
                put32(&mut out, command.to_u32())
            }
            Packet::ExecuteResp {
                command,
                data_length,
            } => {
                put32(&mut out, command.to_u32());
                put32(&mut out, data_length);
            }
            Packet::MemoryDebug64 {
                table_address,
                table_length,
            } => {
                put64(&mut out, table_address);
                put64(&mut out, table_length);
            }
            Packet::MemoryRead64 { address, length } => {
                put64(&mut out, address);
                put64(&mut out, length);
            }
            Packet::ReadData64 {
                image,
                offset,
                length,
            } => {
                put64(&mut out, image);
                put64(&mut out, offset);
                put64(&mut out, length);
            }
            Packet::Done
            | Packet::Reset
            | Packet::ResetResp
            | Packet::CmdReady
            | Packet::ResetStateMachine => {}
        }
        // HELLO and HELLO_RESP end in six reserved words, sent as zero.
        out.resize(len, 0);
        out
    }

    /// Decode exactly one packet: `bytes` must be the whole packet, no more, no less.
    pub fn decode(bytes: &[u8]) -> Result<Packet, PacketError> {
        let header = Header::parse(bytes)?;
        if header.length as usize != bytes.len() {
            return Err(PacketError::LengthMismatch {
                declared: header.length,
                actual: bytes.len(),
            });
        }
        let (Some(name), Some(expected)) =
            (command_name(header.command), packet_len(header.command))
        else {
            return Err(PacketError::UnknownCommand {
                command: header.command,
            });
        };
        if header.length as usize != expected {
            return Err(PacketError::WrongSize {
                name,
                expected,
                declared: header.length,
            });
        }
        let body = bytes.get(HEADER_LEN..).unwrap_or_default();
        decode_body(header.command, &mut Reader::new(body)).ok_or(PacketError::WrongSize {
            name,
            expected,
            declared: header.length,
        })
    }
}

/// The body of a packet whose size was already checked; `None` only if that check was wrong.
fn decode_body(command: u32, r: &mut Reader<'_>) -> Option<Packet> {
    Some(match command {
        command::HELLO => Packet::Hello(Hello {
            version: r.u32()?,
            version_compatible: r.u32()?,
            max_packet_len: r.u32()?,
            mode: Mode::from_u32(r.u32()?),
        }),
        command::HELLO_RESP => Packet::HelloResp(HelloResp {
            version: r.u32()?,
            version_compatible: r.u32()?,
            status: Status(r.u32()?),
            mode: Mode::from_u32(r.u32()?),
        }),
        command::READ_DATA => Packet::ReadData {
            image: r.u32()?,
            offset: r.u32()?,
            length: r.u32()?,
        },
        command::END_OF_IMAGE => Packet::EndOfImage {
            image: r.u32()?,
            status: Status(r.u32()?),
        },
        command::DONE => Packet::Done,
        command::DONE_RESP => Packet::DoneResp {
            status: Mode::from_u32(r.u32()?),
        },
        command::RESET => Packet::Reset,
        command::RESET_RESP => Packet::ResetResp,
        command::MEMORY_DEBUG => Packet::MemoryDebug {
            table_address: r.u32()?,
            table_length: r.u32()?,
        },
        command::MEMORY_READ => Packet::MemoryRead {
            address: r.u32()?,
            length: r.u32()?,
        },
        command::CMD_READY => Packet::CmdReady,
        command::SWITCH_MODE => Packet::SwitchMode {
            mode: Mode::from_u32(r.u32()?),
        },
        command::EXECUTE => Packet::Execute {
            command: ExecCommand::from_u32(r.u32()?),
        },
        command::EXECUTE_RESP => Packet::ExecuteResp {
            command: ExecCommand::from_u32(r.u32()?),
            data_length: r.u32()?,
        },
        command::EXECUTE_DATA => Packet::ExecuteData {
            command: ExecCommand::from_u32(r.u32()?),
        },
        command::MEMORY_DEBUG_64 => Packet::MemoryDebug64 {
            table_address: r.u64()?,
            table_length: r.u64()?,
        },
        command::MEMORY_READ_64 => Packet::MemoryRead64 {
            address: r.u64()?,
            length: r.u64()?,
        },
        command::READ_DATA_64 => Packet::ReadData64 {
            image: r.u64()?,
            offset: r.u64()?,
            length: r.u64()?,
        },
        command::RESET_STATE_MACHINE => Packet::ResetStateMachine,
        _ => return None,
    })
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Little-endian reads that return `None` instead of indexing past the end.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.pos.checked_add(N)?;
        let chunk: [u8; N] = self.bytes.get(self.pos..end)?.try_into().ok()?;
        self.pos = end;
        Some(chunk)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take::<2>().map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.bytes.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }
}

#[cfg(test)]
mod tests;
