//! The host side of a Firehose session: one programmer on one link.
//!
//! Behaviour follows linux-msm/qdl and qualcomm/qdlrs: drain the programmer's start-up logs,
//! `configure` with payload-size negotiation, then one command at a time, each answered by any
//! number of `<log>` lines and one `<response value="ACK|NAK">`. Logs that arrive after a
//! response (MSM8916 does this) are simply read before the next response, so no command pays a
//! quiet-period timeout. Commands without data live in `commands.rs`, raw-data phases (program,
//! read) in `program.rs` / `readback.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::reader::{MessageReader, ReadError, DEFAULT_MAX_MESSAGE};
use super::response::{self, Message, Response};
use super::xml::Document;
use super::{FirehoseError, StorageKind, DEFAULT_MAX_PAYLOAD, END_OF_SUPPORTED_FUNCTIONS};
use crate::progress::{NoProgress, ProgressEvent, ProgressSink};
use crate::transport::{Framing, Transport, TransportError};

/// Device log lines kept for NAK reasons and diagnostics.
const KEPT_LOGS: usize = 64;

/// Per-operation timeouts. A response timer covers the whole answer (logs included).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Waiting for the programmer's start-up logs; a programmer that greeted earlier (or never
    /// greets) costs at most this much before `configure` is sent anyway.
    pub greeting: Duration,
    /// The answer to a command without a data phase (configure, patch, nop, …) and the ACK that
    /// opens a data phase.
    pub response: Duration,
    /// One chunk of raw data in either direction.
    pub raw_data: Duration,
    /// The final answer after a program's data (the programmer flushes to storage first).
    pub program_done: Duration,
    /// Digest and erase, which walk the storage on the device.
    pub long_operation: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            greeting: Duration::from_secs(3),
            response: Duration::from_secs(10),
            raw_data: Duration::from_secs(30),
            program_done: Duration::from_secs(120),
            long_operation: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FirehoseConfig {
    pub storage: StorageKind,
    /// Sector size; `None` uses the storage type's (UFS 4096, eMMC 512).
    pub sector_size: Option<usize>,
    /// MaxPayloadSizeToTargetInBytes asked for in the first `configure`.
    pub max_payload: usize,
    /// The most the host will re-negotiate up to when the programmer says it supports more
    /// than `max_payload` (at most [`super::configure::MAX_PAYLOAD_CAP`]). `None`: never more
    /// than `max_payload`, for callers whose transfer size is budgeted (usbfs memory).
    pub payload_cap: Option<usize>,
    pub skip_storage_init: bool,
    pub timeouts: Timeouts,
    pub max_message: usize,
}

impl Default for FirehoseConfig {
    fn default() -> Self {
        FirehoseConfig {
            storage: StorageKind::Ufs,
            sector_size: None,
            max_payload: DEFAULT_MAX_PAYLOAD,
            payload_cap: None,
            skip_storage_init: false,
            timeouts: Timeouts::default(),
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

/// A programmer's `<response>` with the log lines that came with it.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub response: Response,
    pub logs: Vec<String>,
}

impl Reply {
    pub fn ack(&self) -> bool {
        self.response.ack
    }

    /// Raw data follows (an ACK with `rawmode="true"`).
    pub fn is_raw(&self) -> bool {
        self.response.is_raw()
    }
}

pub struct Firehose<T: Transport> {
    pub(crate) link: T,
    pub(crate) reader: MessageReader,
    pub(crate) config: FirehoseConfig,
    pub(crate) payload_size: usize,
    pub(crate) sector_size: usize,
    pub(crate) progress: Arc<dyn ProgressSink>,
    logs: VecDeque<String>,
    greeted: bool,
}

impl<T: Transport> Firehose<T> {
    pub fn new(link: T, config: FirehoseConfig) -> Self {
        Self::with_pushback(link, config, &[])
    }

    /// Take over a link on which someone (the Sahara host) already read `bytes` of Firehose
    /// output.
    pub fn with_pushback(link: T, config: FirehoseConfig, bytes: &[u8]) -> Self {
        let sector_size = config
            .sector_size
            .unwrap_or_else(|| config.storage.default_sector_size());
        Firehose {
            link,
            reader: MessageReader::with_pushback(config.max_message, bytes),
            payload_size: config.max_payload,
            sector_size,
            config,
            progress: Arc::new(NoProgress),
            logs: VecDeque::new(),
            greeted: false,
        }
    }

    pub fn set_progress(&mut self, sink: Arc<dyn ProgressSink>) {
        self.progress = sink;
    }

    pub fn sector_size(&self) -> usize {
        self.sector_size
    }

    /// Negotiated MaxPayloadSizeToTargetInBytes.
    pub fn payload_size(&self) -> usize {
        self.payload_size
    }

    /// The most recent device log lines (oldest first).
    pub fn device_logs(&self) -> impl Iterator<Item = &str> {
        self.logs.iter().map(String::as_str)
    }

    pub fn link(&self) -> &T {
        &self.link
    }

    pub fn into_link(self) -> T {
        self.link
    }

    pub(crate) fn describe(&self) -> String {
        self.link.describe()
    }

    pub(crate) fn record_log(&mut self, line: &str) {
        tracing::debug!(target: "firehose", "device: {line}");
        self.progress
            .event(ProgressEvent::DeviceMessage { text: line });
        if self.logs.len() == KEPT_LOGS {
            self.logs.pop_front();
        }
        self.logs.push_back(line.to_owned());
    }

    pub(crate) fn transport_error(&self, command: &str, e: TransportError) -> FirehoseError {
        match e {
            TransportError::Timeout(t) => FirehoseError::Timeout {
                link: self.describe(),
                command: command.to_owned(),
                secs: t.as_secs_f64(),
            },
            other => FirehoseError::Transport {
                link: self.describe(),
                command: command.to_owned(),
                source: other,
            },
        }
    }

    pub(crate) fn protocol_error(&self, command: &str, detail: impl Into<String>) -> FirehoseError {
        FirehoseError::Protocol {
            link: self.describe(),
            command: command.to_owned(),
            detail: detail.into(),
        }
    }

    fn read_error(&self, command: &str, e: ReadError, timeout: Duration) -> FirehoseError {
        match e {
            ReadError::Transport(t) => self.transport_error(command, t),
            ReadError::Timeout(_) => FirehoseError::Timeout {
                link: self.describe(),
                command: command.to_owned(),
                secs: timeout.as_secs_f64(),
            },
            other => self.protocol_error(command, other.to_string()),
        }
    }

    /// Write bytes, followed by a zero-length packet when the length is a multiple of the USB
    /// max packet size: the programmer otherwise cannot tell where the transfer ends
    /// (`ZlpAwareHost="1"`). Sahara must never get one; it never comes through here.
    pub(crate) fn write_with_zlp(
        &mut self,
        data: &[u8],
        command: &str,
    ) -> Result<(), FirehoseError> {
        let timeout = self.config.timeouts.raw_data;
        self.link
            .write(data, timeout)
            .map_err(|e| self.transport_error(command, e))?;
        if let Some(mps) = self.zlp_packet_size() {
            if data.len().is_multiple_of(mps) {
                self.link
                    .write_zero_length(timeout)
                    .map_err(|e| self.transport_error(command, e))?;
            }
        }
        Ok(())
    }

    /// A write of a multiple of this many bytes must be followed by a zero-length packet, so
    /// the programmer sees where it ends (packet links with a max packet size only).
    pub(crate) fn zlp_packet_size(&self) -> Option<usize> {
        self.link
            .max_packet_size()
            .filter(|m| *m > 0 && self.link.framing() == Framing::Packets)
    }

    pub(crate) fn send(&mut self, doc: &Document, command: &str) -> Result<(), FirehoseError> {
        tracing::trace!(target: "firehose", "host: {doc}");
        self.write_with_zlp(&doc.to_bytes(), command)
    }

    /// The next document's messages, decoded by the codec.
    fn next_messages(
        &mut self,
        command: &str,
        timeout: Duration,
        whole: Duration,
    ) -> Result<Vec<Message>, FirehoseError> {
        let frame = self
            .reader
            .next_frame(&mut self.link, timeout)
            .map_err(|e| self.read_error(command, e, whole))?;
        response::parse_frame(&frame).map_err(|e| self.protocol_error(command, e.to_string()))
    }

    /// Read messages until a `<response>`, recording every `<log>` on the way. Logs after the
    /// response in the same document belong to it too (a NAK's reason can come last); a
    /// programmer's logs in later documents are read before the next response.
    pub(crate) fn await_response(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Reply, FirehoseError> {
        let deadline = Instant::now() + timeout;
        let mut logs = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut answer = None;
            for message in self.next_messages(command, left, timeout)? {
                match message {
                    Message::Log(text) => {
                        self.record_log(&text);
                        logs.push(text);
                    }
                    Message::Response(response) if answer.is_none() => answer = Some(response),
                    Message::Response(_) => {
                        return Err(
                            self.protocol_error(command, "two <response> elements in one document")
                        )
                    }
                    Message::Other(element) => {
                        tracing::debug!(
                            target: "firehose",
                            "ignoring <{}> from the device",
                            element.name
                        )
                    }
                }
            }
            if let Some(response) = answer {
                return Ok(Reply { response, logs });
            }
        }
    }

    pub(crate) fn nak_error(&self, command: &str, response: &Reply) -> FirehoseError {
        // The programmer's reason is in the log lines just before the NAK; the last few are the
        // ones that matter ("ERROR: …").
        let tail: Vec<&str> = response
            .logs
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(String::as_str)
            .collect();
        let reason = if tail.is_empty() {
            "no reason given".to_owned()
        } else {
            tail.join(" | ")
        };
        FirehoseError::Nak {
            link: self.describe(),
            command: command.to_owned(),
            reason,
            logs: response.logs.clone(),
        }
    }

    /// Send a command without data phase and require an ACK.
    pub(crate) fn command(
        &mut self,
        doc: Document,
        command: &str,
        timeout: Duration,
    ) -> Result<Reply, FirehoseError> {
        self.send(&doc, command)?;
        let response = self.await_response(command, timeout)?;
        if !response.ack() {
            return Err(self.nak_error(command, &response));
        }
        Ok(response)
    }

    /// Read the programmer's start-up logs until `INFO: End of supported functions`, a quiet
    /// spell after some logs, or the greeting timeout with none (it may have greeted already).
    /// Returns the lines read.
    pub fn wait_for_greeting(&mut self) -> Result<Vec<String>, FirehoseError> {
        let mut lines = Vec::new();
        if self.greeted {
            return Ok(lines);
        }
        self.greeted = true;
        let deadline = Instant::now() + self.config.timeouts.greeting;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(lines);
            }
            let wait = if lines.is_empty() {
                deadline - now
            } else {
                (deadline - now).min(Duration::from_millis(500))
            };
            let frame = match self.reader.next_frame(&mut self.link, wait) {
                Ok(frame) => frame,
                Err(ReadError::Timeout(_)) => return Ok(lines),
                Err(e) => {
                    return Err(self.read_error("greeting", e, self.config.timeouts.greeting))
                }
            };
            let messages = response::parse_frame(&frame)
                .map_err(|e| self.protocol_error("greeting", e.to_string()))?;
            for message in messages {
                if let Message::Log(text) = message {
                    self.record_log(&text);
                    let done = text.starts_with(END_OF_SUPPORTED_FUNCTIONS);
                    lines.push(text);
                    if done {
                        return Ok(lines);
                    }
                }
            }
        }
    }
}
