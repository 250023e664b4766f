//! A simulated Firehose programmer: what runs on the phone after Sahara has loaded it.
//!
//! Behaves like Qualcomm's programmers as qdl and qdlrs meet them: start-up `<log>` lines ending
//! with `INFO: End of supported functions N`; `configure` that NAKs a payload size above its
//! limit and offers its own; a `<log>` before every `<response>`; raw mode for program and read;
//! NUM_DISK_SECTORS / CRC32 expressions evaluated on the device; SECTOR_SIZE_IN_BYTES checked
//! against the storage (qdl probes the sector size by reading with both and watching for NAKs).
//! Storage is the shared [`Phone`], so what is written here the fastboot personality reads back.

use std::thread;
use std::time::Duration;

use crate::firehose::reader::{MessageReader, ReadError};
use crate::firehose::response::{encode_log, encode_response, Response};
use crate::firehose::xml::Element;
use crate::firehose::{StorageKind, END_OF_SUPPORTED_FUNCTIONS};
use crate::sim::lifecycle::Ending;
use crate::sim::phone::{FaultAction, Phone};
use crate::transport::{Transport, TransportError};

mod faults;
mod ops;

/// Functions announced in the greeting, in the order real programmers list them.
pub const SUPPORTED_FUNCTIONS: &[&str] = &[
    "program",
    "read",
    "nop",
    "patch",
    "configure",
    "setbootablestoragedrive",
    "erase",
    "power",
    "getstorageinfo",
    "getsha256digest",
];

#[derive(Debug, Clone)]
pub struct FirehoseSimConfig {
    /// Largest MaxPayloadSizeToTargetInBytes accepted; larger requests are NAKed with this
    /// size offered.
    pub max_payload_to_target: usize,
    /// Chunk size of read data toward the host.
    pub max_payload_from_target: usize,
    /// Largest XML command accepted (MaxXMLSizeInBytes).
    pub max_xml_size: usize,
    pub target_name: String,
    /// Send the start-up logs (a programmer handed over by an earlier session does not).
    pub greeting: bool,
    /// How long the programmer takes to start after Sahara's DONE before its first `<log>`
    /// (only when it greets: a handed-over programmer is already running). Real programmers
    /// take tens of milliseconds or more (DDR training, storage init); hosts such as qdlrs
    /// drain the link right after Sahara and would swallow logs that came at once.
    pub boot_time: Duration,
    /// How long to wait for the next command before giving up (`None`: forever).
    pub idle_timeout: Option<Duration>,
    /// How its XML documents are cut into USB transfers.
    pub answer_packets: AnswerPackets,
}

/// How a programmer hands its XML documents to USB. Firehose is a byte stream: all of these
/// are legal, real programmers differ, and a host must frame documents by `</data>` whatever
/// the transfers look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerPackets {
    /// One transfer per document.
    #[default]
    Whole,
    /// Each document in transfers of at most this many bytes (a programmer writing its XML
    /// piecemeal).
    Split(usize),
    /// The `<log>` documents before a `<response>` go out together with it in one transfer
    /// (several documents in one packet).
    Merged,
}

impl Default for FirehoseSimConfig {
    fn default() -> Self {
        FirehoseSimConfig {
            max_payload_to_target: crate::firehose::DEFAULT_MAX_PAYLOAD,
            max_payload_from_target: crate::firehose::DEFAULT_MAX_PAYLOAD,
            max_xml_size: 4096,
            target_name: "8180".to_owned(),
            greeting: true,
            boot_time: DEFAULT_PROGRAMMER_BOOT_TIME,
            idle_timeout: None,
            answer_packets: AnswerPackets::Whole,
        }
    }
}

/// How a programmer session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirehoseOutcome {
    /// `<power value="reset">`: the phone reboots through its boot chain (its lifecycle's
    /// `boots_to`).
    Reset,
    /// `<power value="reset_to_edl">`: back to Sahara.
    ResetToEdl,
    /// `<power value="off">`.
    PowerOff,
    /// The host went away (unplug, closed pty).
    HostGone,
    /// No command within the idle timeout.
    Idle,
}

#[derive(Debug, thiserror::Error)]
pub enum FirehoseSimError {
    #[error("simulated programmer: link failed: {0}")]
    Transport(#[from] TransportError),
}

/// A simulated programmer's start-up time unless configured otherwise.
pub const DEFAULT_PROGRAMMER_BOOT_TIME: Duration = Duration::from_millis(50);

/// How long one response write may block before the host is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve one programmer session on `link` until power/reset or the host leaves. `pushback`
/// holds bytes the Sahara stage already read past its last packet.
pub fn serve(
    link: &mut dyn Transport,
    phone: &Phone,
    config: &FirehoseSimConfig,
    pushback: &[u8],
) -> Result<FirehoseOutcome, FirehoseSimError> {
    let mut device = FirehoseDevice {
        link,
        reader: MessageReader::with_pushback(config.max_xml_size.max(1024) * 4, pushback),
        phone: phone.clone(),
        config: config.clone(),
        payload: None,
        held: Vec::new(),
        read_fault: None,
    };
    device.run()
}

pub(crate) struct FirehoseDevice<'a> {
    link: &'a mut dyn Transport,
    reader: MessageReader,
    phone: Phone,
    config: FirehoseSimConfig,
    /// Negotiated MaxPayloadSizeToTargetInBytes once configured.
    payload: Option<usize>,
    /// Documents held back to go out with the next response ([`AnswerPackets::Merged`]).
    held: Vec<u8>,
    /// An injected fault that changes what the current `<read>` sends (short, other bytes).
    read_fault: Option<FaultAction>,
}

/// What a handler tells the loop.
enum Next {
    Continue,
    End(FirehoseOutcome),
}

impl FirehoseDevice<'_> {
    fn run(&mut self) -> Result<FirehoseOutcome, FirehoseSimError> {
        if self.config.greeting {
            thread::sleep(self.config.boot_time);
            match self.greet().and_then(|()| self.flush_held()) {
                Ok(()) => {}
                Err(e) if e.is_disconnect() => return Ok(FirehoseOutcome::HostGone),
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            let wait = self
                .config
                .idle_timeout
                .unwrap_or(Duration::from_secs(3600));
            let message = match self.reader.next_message(self.link, wait) {
                Ok(m) => m,
                Err(ReadError::Timeout(_)) if self.config.idle_timeout.is_some() => {
                    return Ok(FirehoseOutcome::Idle)
                }
                Err(ReadError::Timeout(_)) => continue,
                Err(ReadError::Transport(e)) if e.is_disconnect() => {
                    return Ok(FirehoseOutcome::HostGone)
                }
                Err(ReadError::Transport(e)) => return Err(e.into()),
                Err(other) => {
                    // Real programmers log the parse failure and NAK, then carry on.
                    self.reader = MessageReader::new(self.config.max_xml_size.max(1024) * 4);
                    self.nak(&format!("ERROR: XML not formed correctly: {other}"))?;
                    continue;
                }
            };
            let Some(command) = message.into_iter().next() else {
                self.nak("ERROR: empty <data> element")?;
                continue;
            };
            match self
                .dispatch(&command)
                .and_then(|next| self.flush_held().map(|()| next))
            {
                Ok(Next::Continue) => {}
                Ok(Next::End(outcome)) => return Ok(outcome),
                Err(e) if e.is_disconnect() => return Ok(FirehoseOutcome::HostGone),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn greet(&mut self) -> Result<(), TransportError> {
        let identity = self.phone.identity();
        let (luns, kind) = {
            let state = self.phone.lock();
            let luns = state.storage.luns().len();
            let sector = state
                .storage
                .luns()
                .first()
                .map_or(4096, |l| l.sector_size());
            (luns, storage_kind_for(sector))
        };
        self.log("INFO: Binary build date: Nov 28 2026 @ 09:00:00")?;
        self.log(&format!(
            "INFO: Chip serial num: {} (0x{:x})",
            identity.chip_serial, identity.chip_serial
        ))?;
        self.log(&format!(
            "INFO: Firehose version 1, flashgate simulated programmer, target {}",
            self.config.target_name
        ))?;
        self.log(&format!(
            "INFO: Storage: {} with {luns} LUN(s)",
            kind.memory_name().to_ascii_uppercase()
        ))?;
        self.log(&format!(
            "INFO: Supported Functions ({}):",
            SUPPORTED_FUNCTIONS.len()
        ))?;
        for f in SUPPORTED_FUNCTIONS {
            self.log(&format!("INFO: {f}"))?;
        }
        self.log(&format!(
            "{END_OF_SUPPORTED_FUNCTIONS} {}",
            SUPPORTED_FUNCTIONS.len()
        ))
    }

    fn log(&mut self, text: &str) -> Result<(), TransportError> {
        self.emit(encode_log(text), false)
    }

    fn respond(&mut self, response: &Response) -> Result<(), TransportError> {
        self.emit(encode_response(response), true)
    }

    /// Hand one document to USB as [`AnswerPackets`] says; a response releases what was held.
    fn emit(&mut self, document: Vec<u8>, response: bool) -> Result<(), TransportError> {
        match self.config.answer_packets {
            AnswerPackets::Whole => self.link.write(&document, WRITE_TIMEOUT),
            AnswerPackets::Split(size) => {
                for piece in document.chunks(size.max(1)) {
                    self.link.write(piece, WRITE_TIMEOUT)?;
                }
                Ok(())
            }
            AnswerPackets::Merged => {
                self.held.extend_from_slice(&document);
                if response {
                    self.flush_held()?;
                }
                Ok(())
            }
        }
    }

    /// Send the documents held back for merging, in one transfer.
    fn flush_held(&mut self) -> Result<(), TransportError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        self.link.write(&held, WRITE_TIMEOUT)
    }

    fn ack(&mut self, rawmode: bool) -> Result<(), TransportError> {
        self.respond(&Response::ack(rawmode))
    }

    /// Real programmers log the reason, then NAK.
    fn nak(&mut self, reason: &str) -> Result<(), TransportError> {
        self.log(reason)?;
        self.respond(&Response::nak())
    }

    fn dispatch(&mut self, command: &Element) -> Result<Next, TransportError> {
        let tag = command.name.as_str();
        // A `<program>` is also named by the partition its first sector is in, as the
        // programmer's own GPT says (`program:system_a`), so a rule can pick one partition's
        // write; `program` still matches every one.
        let operation = match (tag, self.range(command, false)) {
            ("program", Ok(range)) => {
                let partition = self
                    .phone
                    .lock()
                    .storage
                    .partitions()
                    .into_iter()
                    .find(|p| {
                        p.lun == range.lun
                            && p.first_lba <= range.start_sector
                            && range.start_sector <= p.last_lba
                    });
                match partition {
                    Some(p) => format!("program:{}", p.name),
                    None => tag.to_string(),
                }
            }
            _ => tag.to_string(),
        };
        match self.phone.take_fault(&operation) {
            Some(fault) => self.dispatch_faulty(command, fault),
            None => self.handle(command),
        }
    }

    fn handle(&mut self, command: &Element) -> Result<Next, TransportError> {
        let tag = command.name.as_str();
        self.log(&format!("INFO: Calling handler for {tag}"))?;
        match tag {
            "configure" => self.configure(command).map(|_| Next::Continue),
            "nop" => {
                self.log("INFO: Binary build date: Nov 28 2026 @ 09:00:00")?;
                self.ack(false).map(|_| Next::Continue)
            }
            "power" => self.power(command),
            "program"
            | "read"
            | "patch"
            | "erase"
            | "getsha256digest"
            | "getstorageinfo"
            | "setbootablestoragedrive" => {
                if self.payload.is_none() {
                    self.nak("ERROR: Storage is not initialized; send <configure> first")?;
                    return Ok(Next::Continue);
                }
                match tag {
                    "program" => self.program(command)?,
                    "read" => self.read(command)?,
                    "patch" => self.patch(command)?,
                    "erase" => self.erase(command)?,
                    "getsha256digest" => self.digest(command)?,
                    "getstorageinfo" => self.storage_info(command)?,
                    _ => self.set_bootable(command)?,
                }
                Ok(Next::Continue)
            }
            other => {
                self.nak(&format!("ERROR: Unrecognized tag <{other}>"))?;
                Ok(Next::Continue)
            }
        }
    }

    fn configure(&mut self, command: &Element) -> Result<(), TransportError> {
        let kind = {
            let state = self.phone.lock();
            storage_kind_for(
                state
                    .storage
                    .luns()
                    .first()
                    .map_or(4096, |l| l.sector_size()),
            )
        };
        let asked_memory = command.attr("MemoryName").and_then(StorageKind::parse);
        if asked_memory != Some(kind) {
            return self.nak(&format!(
                "ERROR: Failed to open the {} storage: this device has {}",
                command.attr("MemoryName").unwrap_or("(no MemoryName)"),
                kind.memory_name().to_ascii_uppercase()
            ));
        }
        let max = self.config.max_payload_to_target;
        let asked = command
            .attr("MaxPayloadSizeToTargetInBytes")
            .and_then(|v| v.trim().parse::<usize>().ok());
        let Some(asked) = asked.filter(|a| *a > 0) else {
            return self.nak("ERROR: MaxPayloadSizeToTargetInBytes missing or not a number");
        };
        // What real programmers answer a configure with: no rawmode, the negotiated sizes.
        let config = &self.config;
        let answer = |ack: bool, size: usize| {
            Response {
                ack,
                rawmode: None,
                attributes: Vec::new(),
            }
            .with("MinVersionSupported", 1)
            .with("MemoryName", kind.memory_name().to_ascii_uppercase())
            .with(
                "MaxPayloadSizeFromTargetInBytes",
                config.max_payload_from_target,
            )
            .with("MaxPayloadSizeToTargetInBytes", size)
            .with("MaxPayloadSizeToTargetInBytesSupported", max)
            .with("MaxXMLSizeInBytes", config.max_xml_size)
            .with("Version", 1)
            .with("TargetName", &config.target_name)
        };
        if asked > max {
            let nak = answer(false, max);
            self.log(&format!(
                "ERROR: MaxPayloadSizeToTargetInBytes {asked} is larger than the supported {max}"
            ))?;
            return self.respond(&nak);
        }
        let ack = answer(true, asked);
        self.payload = Some(asked);
        self.respond(&ack)
    }

    fn power(&mut self, command: &Element) -> Result<Next, TransportError> {
        let value = command.attr("value").unwrap_or_default();
        let (outcome, ending) = match value {
            "reset" => (FirehoseOutcome::Reset, Ending::PowerReset),
            "reset_to_edl" => (FirehoseOutcome::ResetToEdl, Ending::PowerResetToEdl),
            "off" => (FirehoseOutcome::PowerOff, Ending::PowerOff),
            other => {
                self.nak(&format!("ERROR: Unknown power value '{other}'"))?;
                return Ok(Next::Continue);
            }
        };
        self.ack(false)?;
        self.log(&format!("INFO: Power {value} requested"))?;
        // The reset takes a moment on a real phone (and DelayInSeconds asks for more): give the
        // host time to read the ACK before the link goes away.
        let delay = command
            .attr("DelayInSeconds")
            .and_then(|d| d.trim().parse::<u64>().ok())
            .unwrap_or(0)
            .min(2);
        thread::sleep(Duration::from_millis(100).max(Duration::from_secs(delay)));
        self.phone.end_session(ending);
        Ok(Next::End(outcome))
    }
}

/// UFS exposes 4 KiB sectors, eMMC 512 B: the simulated storage's sector size says which it is.
pub(crate) fn storage_kind_for(sector_size: u32) -> StorageKind {
    if sector_size == 512 {
        StorageKind::Emmc
    } else {
        StorageKind::Ufs
    }
}

#[cfg(test)]
mod tests;
