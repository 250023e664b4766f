//! The fastboot host client: one command at a time, its responses, and its data phases.
//!
//! Unlike the AOSP client (which waits forever on a stalled device), every response has a
//! deadline: the silence between two frames is bounded, and so is the whole answer when a
//! command deadline is set. INFO/TEXT lines keep a command alive (the README) but not past its
//! deadline: a device that trickles messages forever ends in a timeout, not a hang.

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::command::{Command, RebootTarget, DEFAULT_MAX_COMMAND_LEN};
use super::error::{FastbootError, Violation};
use super::fastbootd::bootloader_refusal;
use super::link_writer::{Finished, LinkWriter};
use super::response::{Response, MAX_RESPONSE_LEN};
use super::variable::Variable;
use crate::progress::{NoProgress, ProgressEvent, ProgressSink};
use crate::transport::{SendFilledError, Transport, TransportError};

/// Knobs of the client; [`Default`] suits real phones.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long to wait for each response packet and for each data-phase chunk to move.
    pub response_timeout: Duration,
    /// Longest command sent (see [`DEFAULT_MAX_COMMAND_LEN`]).
    pub max_command_len: usize,
    /// INFO/TEXT lines accepted for one command before the device is declared broken.
    pub max_messages: usize,
    /// Longest a command's answer may take, from the command to its OKAY/FAIL/DATA, INFO/TEXT
    /// lines included (None: only `response_timeout` between frames and `max_messages`).
    /// Catches a device that trickles messages forever.
    pub command_deadline: Option<Duration>,
    /// The bound on the answer of a command that writes storage ([`Command::writes_storage`]):
    /// it replaces both `response_timeout` and `command_deadline` for them, since a device
    /// writing a large image may be silent for minutes. None: bound like any other command.
    pub write_deadline: Option<Duration>,
    /// Bytes moved per transport call in a data phase (also the one buffer the client holds).
    pub chunk_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            response_timeout: Duration::from_secs(30),
            max_command_len: DEFAULT_MAX_COMMAND_LEN,
            // `getvar all` on a phone with many partitions sends several hundred lines.
            max_messages: 10_000,
            command_deadline: None,
            write_deadline: None,
            chunk_size: 1 << 20,
        }
    }
}

impl ClientOptions {
    /// How long `command`'s answer may take: the longest silence between two frames, and the
    /// bound on the whole answer.
    pub fn answer_bounds(&self, command: &Command<'_>) -> AnswerBounds {
        match self.write_deadline {
            Some(deadline) if command.writes_storage() => AnswerBounds {
                silence: deadline,
                whole: Some(deadline),
            },
            _ => AnswerBounds {
                silence: self.response_timeout,
                whole: self.command_deadline,
            },
        }
    }
}

/// See [`ClientOptions::answer_bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerBounds {
    pub silence: Duration,
    pub whole: Option<Duration>,
}

/// A command's successful answer: the OKAY text and the INFO/TEXT lines that came before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub value: String,
    pub messages: Vec<String>,
}

/// What ends a command's response sequence.
enum Final {
    Okay(String),
    Data(u32),
}

/// A fastboot session over one link.
pub struct Fastboot<T: Transport> {
    link: T,
    options: ClientOptions,
    progress: Arc<dyn ProgressSink>,
    chunk: Vec<u8>,
    /// How long the answer to the command last sent may take.
    bounds: AnswerBounds,
}

impl<T: Transport> Fastboot<T> {
    pub fn new(link: T) -> Self {
        Self::with_options(link, ClientOptions::default())
    }

    pub fn with_options(link: T, options: ClientOptions) -> Self {
        let bounds = AnswerBounds {
            silence: options.response_timeout,
            whole: options.command_deadline,
        };
        Fastboot {
            link,
            options,
            progress: Arc::new(NoProgress),
            chunk: Vec::new(),
            bounds,
        }
    }

    /// Send device messages and data-phase progress to `sink`.
    pub fn set_progress(&mut self, sink: Arc<dyn ProgressSink>) {
        self.progress = sink;
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    pub fn options_mut(&mut self) -> &mut ClientOptions {
        &mut self.options
    }

    pub fn link(&self) -> &T {
        &self.link
    }

    pub fn into_link(self) -> T {
        self.link
    }

    pub(crate) fn progress(&self) -> &dyn ProgressSink {
        &*self.progress
    }

    /// Run a command that must end in OKAY (no data phase).
    pub fn run(&mut self, command: &Command<'_>) -> Result<Reply, FastbootError> {
        let text = self.send(command)?;
        let mut messages = Vec::new();
        match self.await_final(&text, &mut messages)? {
            Final::Okay(value) => Ok(Reply { value, messages }),
            Final::Data(size) => Err(self.violation(&text, Violation::UnexpectedData { size })),
        }
    }

    /// `getvar:NAME`: the variable's value. Takes a [`Variable`] or its name.
    pub fn getvar<'v>(&mut self, var: impl Into<Variable<'v>>) -> Result<String, FastbootError> {
        Ok(self.run(&Command::GetVar(var.into()))?.value)
    }

    /// `getvar:all`: every variable the device lists, as (name, value) in its order. Names keep
    /// their qualifiers (`partition-size:system_a`).
    pub fn getvar_all(&mut self) -> Result<Vec<(String, String)>, FastbootError> {
        let reply = self.run(&Command::GetVar(Variable::All))?;
        Ok(reply
            .messages
            .iter()
            .map(|line| split_variable_line(line))
            .collect())
    }

    /// `download:%08x` then `size` bytes from `source`, streamed in chunks.
    pub fn download(&mut self, source: &mut dyn Read, size: u32) -> Result<Reply, FastbootError> {
        let (text, mut messages) = self.begin_download(size)?;
        self.send_data(&text, source, size.into())?;
        self.finish_download(&text, &mut messages)
    }

    /// `download:%08x`, then `produce` writes the `size` data bytes into a writer that streams
    /// them to the device chunk by chunk (for data generated on the fly, like sparse pieces).
    /// Producing more or fewer than `size` bytes is an error.
    pub fn download_with(
        &mut self,
        size: u32,
        produce: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<Reply, FastbootError> {
        self.download_streamed(size, &mut |writer| produce(writer))
    }

    /// [`Fastboot::download_with`] with the writer itself, which can also read data from a
    /// source straight into the buffer it sends from ([`LinkWriter::read_from`]).
    pub(crate) fn download_streamed(
        &mut self,
        size: u32,
        produce: &mut dyn FnMut(&mut LinkWriter<'_>) -> std::io::Result<()>,
    ) -> Result<Reply, FastbootError> {
        let (text, mut messages) = self.begin_download(size)?;
        let chunk = self.send_chunk();
        let timeout = self.options.response_timeout;
        let mut writer =
            LinkWriter::new(&mut self.link, chunk, size.into(), timeout, &*self.progress);
        let produced = produce(&mut writer).and_then(|()| writer.flush_buf());
        let Finished {
            written,
            failure,
            stopped,
        } = writer.finish();
        if let Some(e) = failure {
            return Err(self.transport_error(&text, e));
        }
        if stopped {
            return Err(FastbootError::Stopped {
                command: text,
                done: written,
            });
        }
        produced.map_err(|source| FastbootError::Io {
            what: format!("producing the data for `{text}`"),
            source,
        })?;
        if written != u64::from(size) {
            return Err(FastbootError::Image(format!(
                "the data for `{text}` came to {written} bytes, not the {size} announced"
            )));
        }
        self.finish_download(&text, &mut messages)
    }

    fn begin_download(&mut self, size: u32) -> Result<(String, Vec<String>), FastbootError> {
        let text = self.send(&Command::Download(size))?;
        let mut messages = Vec::new();
        match self.await_final(&text, &mut messages)? {
            Final::Data(offered) if offered == size => Ok((text, messages)),
            Final::Data(offered) => Err(self.violation(
                &text,
                Violation::DataSizeMismatch {
                    requested: size.into(),
                    offered,
                },
            )),
            Final::Okay(_) => Err(self.violation(&text, Violation::MissingData)),
        }
    }

    fn finish_download(
        &mut self,
        text: &str,
        messages: &mut Vec<String>,
    ) -> Result<Reply, FastbootError> {
        match self.await_final(text, messages)? {
            Final::Okay(value) => Ok(Reply {
                value,
                messages: std::mem::take(messages),
            }),
            Final::Data(size) => Err(self.violation(text, Violation::UnexpectedData { size })),
        }
    }

    /// `upload`: what the last command staged, streamed into `out`. Returns the byte count.
    pub fn upload(&mut self, out: &mut dyn Write) -> Result<u64, FastbootError> {
        self.receive(&Command::Upload, None, out)
    }

    /// One `fetch:PART:0xOFFSET:0xSIZE` command: `size` bytes of the partition from `offset`
    /// into `out`. The device must offer exactly `size` bytes. For ranges larger than the
    /// device's `max-fetch-size` use [`Fastboot::fetch_partition`].
    pub fn fetch(
        &mut self,
        partition: &str,
        offset: u64,
        size: u32,
        out: &mut dyn Write,
    ) -> Result<u64, FastbootError> {
        let command = Command::Fetch {
            partition,
            offset: Some(offset),
            size: Some(size.into()),
        };
        self.receive(&command, Some(size), out)
    }

    /// `flash:PART`: write what was downloaded. A bootloader's refusal of a logical
    /// partition comes back as [`FastbootError::WrongMode`].
    pub fn flash(&mut self, partition: &str) -> Result<Reply, FastbootError> {
        self.run(&Command::Flash(partition))
            .map_err(|e| bootloader_refusal(partition, e))
    }

    /// `erase:PART`; a logical partition refused by a bootloader as in [`Fastboot::flash`].
    pub fn erase(&mut self, partition: &str) -> Result<Reply, FastbootError> {
        self.run(&Command::Erase(partition))
            .map_err(|e| bootloader_refusal(partition, e))
    }

    pub fn set_active(&mut self, slot: &str) -> Result<Reply, FastbootError> {
        self.run(&Command::SetActive(slot))
    }

    pub fn reboot(&mut self, target: RebootTarget) -> Result<Reply, FastbootError> {
        self.run(&Command::Reboot(target))
    }

    pub fn continue_boot(&mut self) -> Result<Reply, FastbootError> {
        self.run(&Command::Continue)
    }

    /// `oem ARGS`: vendor commands answer in INFO lines, which the reply keeps.
    pub fn oem(&mut self, args: &str) -> Result<Reply, FastbootError> {
        self.run(&Command::Oem(args))
    }

    fn link_name(&self) -> String {
        self.link.describe()
    }

    fn violation(&self, command: &str, violation: Violation) -> FastbootError {
        FastbootError::Protocol {
            command: command.to_string(),
            link: self.link_name(),
            violation,
        }
    }

    fn transport_error(&self, command: &str, e: TransportError) -> FastbootError {
        FastbootError::from_transport(command, self.link_name(), e)
    }

    fn send(&mut self, command: &Command<'_>) -> Result<String, FastbootError> {
        let bytes = command.encode(self.options.max_command_len)?;
        let text = command.to_string();
        self.bounds = self.options.answer_bounds(command);
        tracing::debug!(command = %text, link = %self.link_name(), "fastboot command");
        self.link
            .write(&bytes, self.options.response_timeout)
            .map_err(|e| self.transport_error(&text, e))?;
        Ok(text)
    }

    /// Read responses until OKAY, FAIL or DATA; INFO/TEXT go to the sink and into `messages`.
    fn await_final(
        &mut self,
        command: &str,
        messages: &mut Vec<String>,
    ) -> Result<Final, FastbootError> {
        let mut packet = [0u8; MAX_RESPONSE_LEN];
        let mut seen = 0usize;
        let AnswerBounds { silence, whole } = self.bounds;
        // INFO/TEXT lines do not move this: the whole answer is bound, not only each gap.
        let deadline = whole.map(|d| (d, Instant::now() + d));
        loop {
            let mut wait = silence;
            if let Some((limit, at)) = deadline {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(FastbootError::Timeout {
                        command: command.to_string(),
                        link: self.link_name(),
                        timeout: limit,
                    });
                }
                wait = wait.min(left);
            }
            let len = match self.link.read_packet(&mut packet, wait) {
                Ok(len) => len,
                Err(TransportError::Timeout(_)) if wait < silence => {
                    // The command deadline, not the device's silence, cut this wait short.
                    return Err(FastbootError::Timeout {
                        command: command.to_string(),
                        link: self.link_name(),
                        timeout: deadline.map_or(wait, |(limit, _)| limit),
                    });
                }
                Err(e) => return Err(self.transport_error(command, e)),
            };
            seen += 1;
            if seen > self.options.max_messages {
                return Err(self.violation(
                    command,
                    Violation::TooManyMessages {
                        limit: self.options.max_messages,
                    },
                ));
            }
            // Zero-length packets are ignored by the protocol (a USB device may send one to
            // end a transfer that filled whole packets).
            if len == 0 {
                continue;
            }
            let response =
                Response::parse(&packet[..len]).map_err(|e| self.violation(command, e.into()))?;
            match response {
                Response::Okay(value) => return Ok(Final::Okay(value)),
                Response::Data(size) => return Ok(Final::Data(size)),
                Response::Fail(message) => {
                    return Err(FastbootError::DeviceFail {
                        command: command.to_string(),
                        message,
                    })
                }
                Response::Info(line) | Response::Text(line) => {
                    tracing::debug!(command, message = %line, "device message");
                    self.progress
                        .event(ProgressEvent::DeviceMessage { text: &line });
                    messages.push(line);
                }
            }
        }
    }

    fn take_chunk(&mut self) -> Vec<u8> {
        let mut chunk = std::mem::take(&mut self.chunk);
        chunk.resize(self.send_chunk(), 0);
        chunk
    }

    /// Bytes per data-phase transfer.
    fn send_chunk(&self) -> usize {
        self.options.chunk_size.max(4096)
    }

    /// Host → device data phase: exactly `size` bytes from `source`, each chunk read straight
    /// into the buffer the link lends, so the image's bytes are copied once on the host: by the
    /// read (a memory link hands the filled buffer to the device, USB sends from it in place).
    fn send_data(
        &mut self,
        command: &str,
        source: &mut dyn Read,
        size: u64,
    ) -> Result<(), FastbootError> {
        let timeout = self.options.response_timeout;
        let chunk = self.send_chunk();
        let mut out = self.link.send_buffer(chunk);
        let mut sent = 0u64;
        let mut failure = None;
        while sent < size {
            if self.progress.stop_requested() {
                return Err(FastbootError::Stopped {
                    command: command.to_string(),
                    done: sent,
                });
            }
            let want = usize::try_from(size - sent)
                .unwrap_or(usize::MAX)
                .min(out.buffer().len());
            let mut read_chunk = |buf: &mut [u8]| {
                let got = fill(source, buf)?;
                if got < buf.len() {
                    return Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!(
                            "the source ended after {} of {size} bytes",
                            sent + got as u64
                        ),
                    ));
                }
                Ok(())
            };
            if let Err(e) = out.send_filled(want, &mut read_chunk, timeout) {
                failure = Some(e);
                break;
            }
            sent += want as u64;
            self.progress
                .event(ProgressEvent::Bytes { bytes: want as u64 });
        }
        drop(out);
        match failure {
            None => Ok(()),
            Some(SendFilledError::Fill(source)) => Err(FastbootError::Io {
                what: format!("reading the data for `{command}`"),
                source,
            }),
            Some(SendFilledError::Link(e)) => Err(self.transport_error(command, e)),
        }
    }

    /// A command whose answer is a device → host data phase, then OKAY.
    fn receive(
        &mut self,
        command: &Command<'_>,
        expected: Option<u32>,
        out: &mut dyn Write,
    ) -> Result<u64, FastbootError> {
        let text = self.send(command)?;
        let mut messages = Vec::new();
        let size = match self.await_final(&text, &mut messages)? {
            Final::Data(size) => size,
            Final::Okay(_) => return Err(self.violation(&text, Violation::MissingData)),
        };
        if let Some(requested) = expected {
            if requested != size {
                return Err(self.violation(
                    &text,
                    Violation::DataSizeMismatch {
                        requested: requested.into(),
                        offered: size,
                    },
                ));
            }
        }
        let mut chunk = self.take_chunk();
        let result = self.receive_data_with(&text, size.into(), out, &mut chunk);
        self.chunk = chunk;
        result?;
        match self.await_final(&text, &mut messages)? {
            Final::Okay(_) => Ok(size.into()),
            Final::Data(size) => Err(self.violation(&text, Violation::UnexpectedData { size })),
        }
    }

    fn receive_data_with(
        &mut self,
        command: &str,
        size: u64,
        out: &mut dyn Write,
        chunk: &mut [u8],
    ) -> Result<(), FastbootError> {
        let mut received = 0u64;
        while received < size {
            if self.progress.stop_requested() {
                return Err(FastbootError::Stopped {
                    command: command.to_string(),
                    done: received,
                });
            }
            let want = usize::try_from(size - received)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            let got = self
                .link
                .read_stream(&mut chunk[..want], self.options.response_timeout)
                .map_err(|e| self.transport_error(command, e))?;
            if got == 0 {
                return Err(FastbootError::Disconnected {
                    command: command.to_string(),
                    link: self.link_name(),
                });
            }
            out.write_all(&chunk[..got])
                .map_err(|source| FastbootError::Io {
                    what: format!("writing the data of `{command}`"),
                    source,
                })?;
            received += got as u64;
            self.progress
                .event(ProgressEvent::Bytes { bytes: got as u64 });
        }
        Ok(())
    }
}

/// Read until `buf` is full or the source ends; the count read.
fn fill(source: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `getvar all` lines are `name: value` (LK, ABL) or `name:value` (AOSP fastbootd); names may
/// hold ':' themselves (`partition-size:system_a`), so without ": " the last ':' separates.
pub fn split_variable_line(line: &str) -> (String, String) {
    let split = line.split_once(": ").or_else(|| line.rsplit_once(':'));
    match split {
        Some((name, value)) => (name.trim().to_string(), value.trim().to_string()),
        None => (line.trim().to_string(), String::new()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
