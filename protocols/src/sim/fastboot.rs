//! A simulated fastboot device: the bootloader's fastboot (Qualcomm ABL-like) or, after
//! `reboot-fastboot`, userspace fastbootd, serving a [`Phone`] over the device end of any
//! [`Transport`] (in-memory link, fastboot TCP).
//!
//! Behaviour follows the AOSP fastboot README and what AOSP's `fastboot` client expects of real
//! devices: `max-download-size` as `0x…` hex, `getvar:all` as INFO lines then OKAY, a FAIL for
//! unknown variables (which the AOSP client reports but exits 0 on), partition names without a
//! slot suffix resolved to the current slot (ABL and fastbootd both do this; the AOSP client
//! appends the suffix itself after `has-slot`/`current-slot`), sparse images expanded with
//! DONT_CARE left untouched (what makes the client's split images work), `fetch` limited to an
//! allow-list and refused on locked devices like fastbootd. No response frame exceeds 256 bytes:
//! the AOSP client reads responses into a 256-byte buffer and a longer frame corrupts the next
//! command's reply.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::ops::ControlFlow;
use std::time::Duration;

use crate::fastboot::{DEFAULT_MAX_COMMAND_LEN, MAX_RESPONSE_LEN};
use crate::transport::tcp::TcpLink;
use crate::transport::{Transport, TransportError};

use super::phone::{FaultAction, Phone, PhoneMode};

mod commands;
mod staging;
mod vars;

use staging::Staging;

/// Where `fetch:` may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAllow {
    /// Any partition (a factory or engineering bootloader).
    All,
    /// Only these names, exactly as the host sends them (fastbootd allows
    /// `vendor_boot`, `vendor_boot_a`, `vendor_boot_b`).
    Only(Vec<String>),
}

impl FetchAllow {
    /// AOSP fastbootd's list.
    pub fn aosp_default() -> Self {
        FetchAllow::Only(
            ["vendor_boot", "vendor_boot_a", "vendor_boot_b"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }

    fn allows(&self, name: &str) -> bool {
        match self {
            FetchAllow::All => true,
            FetchAllow::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Bootloader properties of the fastboot personality.
#[derive(Debug, Clone)]
pub struct FastbootConfig {
    /// `max-download-size` (fastbootd's default is 256 MiB).
    pub max_download_size: u32,
    /// `max-fetch-size`: the largest single `fetch:` answer.
    pub max_fetch_size: u32,
    pub fetch_allow: FetchAllow,
    /// fastbootd refuses `fetch` on a locked device; a factory bootloader may not.
    pub fetch_requires_unlocked: bool,
    /// How long the host may pause inside a data phase before the device gives up.
    pub data_timeout: Duration,
    /// How long to wait for the next command; `None` waits as long as the link lives.
    pub idle_timeout: Option<Duration>,
    /// Downloads larger than this are staged in an unlinked temporary file, not memory.
    pub spill_downloads_above: u64,
    /// How `set_active` is honoured (a fault real bootloaders have shown).
    pub set_active: SetActiveBehaviour,
}

/// What the bootloader does with an acknowledged `set_active`. Real ABLs have answered OKAY and
/// still booted the old slot: the requested slot was marked unbootable, or the new slot
/// attributes stayed in RAM and were never written back to the GPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetActiveBehaviour {
    /// Switch and persist the slot attributes (both GPT copies).
    #[default]
    Honoured,
    /// Answer OKAY and change nothing: `current-slot` stays where it was.
    IgnoredAfterOkay,
    /// Answer OKAY and switch in RAM only: `current-slot` shows the new slot for the rest of
    /// this boot, and the old slot is the active one again after the next reboot.
    LostOnReboot,
}

impl Default for FastbootConfig {
    fn default() -> Self {
        FastbootConfig {
            max_download_size: 256 << 20,
            max_fetch_size: 256 << 20,
            fetch_allow: FetchAllow::aosp_default(),
            fetch_requires_unlocked: true,
            data_timeout: Duration::from_secs(30),
            idle_timeout: None,
            spill_downloads_above: 8 << 20,
            set_active: SetActiveBehaviour::Honoured,
        }
    }
}

/// Where a reboot command sends the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootTo {
    /// `reboot`: Android.
    System,
    /// `reboot-bootloader`: the bootloader's fastboot again.
    Bootloader,
    /// `reboot-fastboot`: fastbootd.
    Fastbootd,
    /// `reboot-recovery`.
    Recovery,
    /// `oem edl`: Qualcomm Emergency Download (the phone re-enumerates as 05c6:9008).
    Edl,
}

/// Why [`FastbootDevice::serve`] returned: callers model re-enumeration from it.
#[derive(Debug)]
pub enum SessionEnd {
    /// The host closed the link (the AOSP client does after every invocation) or it was cut.
    Disconnected,
    /// A reboot was acknowledged; the phone's mode is already updated.
    Reboot(RebootTo),
    /// `continue`: boot the installed OS.
    Continue,
    /// `boot`: boot the downloaded image.
    BootDownloaded,
    /// The link failed in a way that is not a disconnect (timeout inside a data phase, I/O).
    LinkError(TransportError),
}

/// What one command left the session in.
enum Flow {
    Next,
    End(SessionEnd),
}

/// Time allowed to hand one response frame to the link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Commands longer than this are read whole (so the answer can be a clean FAIL) and refused.
const COMMAND_BUFFER: usize = 4096;
/// Commands kept for `oem log`.
const LOG_LINES: usize = 200;

/// The fastboot personality of one phone. Keeps its download buffer across connections, as a
/// device keeps its RAM while the AOSP client connects once per command.
pub struct FastbootDevice {
    phone: Phone,
    config: FastbootConfig,
    download: Option<Staging>,
    /// Data an `oem` command staged for `upload`.
    staged_upload: Option<Vec<u8>>,
    log: VecDeque<String>,
    /// The slot that was active before a `set_active` this boot did not persist
    /// ([`SetActiveBehaviour::LostOnReboot`]): it is active again after a reboot.
    unpersisted_from: Option<String>,
}

impl FastbootDevice {
    pub fn new(phone: Phone, config: FastbootConfig) -> Self {
        FastbootDevice {
            phone,
            config,
            download: None,
            staged_upload: None,
            log: VecDeque::new(),
            unpersisted_from: None,
        }
    }

    pub fn phone(&self) -> &Phone {
        &self.phone
    }

    pub fn config(&self) -> &FastbootConfig {
        &self.config
    }

    /// Change the bootloader's behaviour from the next command on (a test arming a fault on a
    /// phone that is already on the bus).
    pub fn config_mut(&mut self) -> &mut FastbootConfig {
        &mut self.config
    }

    /// Serve commands until the host disconnects, a reboot/continue/boot ends the session, or
    /// the link fails.
    pub fn serve(&mut self, link: &mut dyn Transport) -> SessionEnd {
        let mut buf = vec![0u8; COMMAND_BUFFER];
        let poll = self
            .config
            .idle_timeout
            .unwrap_or(Duration::from_secs(3600));
        loop {
            let n = match link.read_packet(&mut buf, poll) {
                Ok(n) => n,
                Err(TransportError::Timeout(_)) if self.config.idle_timeout.is_none() => continue,
                Err(TransportError::Overflow { len, .. }) => {
                    let reason = format!("Command too long ({len} bytes)");
                    if let Err(e) = send(link, b"FAIL", &reason) {
                        return end_for(e);
                    }
                    continue;
                }
                Err(e) => return end_for(e),
            };
            // The README: zero-length packets are ignored.
            if n == 0 {
                continue;
            }
            match self.handle(link, &buf[..n]) {
                Ok(Flow::Next) => {}
                Ok(Flow::End(end)) => return end,
                Err(e) => return end_for(e),
            }
        }
    }

    /// Accept fastboot TCP connections one after another and serve each (the AOSP client
    /// connects once per command). `after_session` sees how each ended and decides whether to
    /// keep going. Handshake failures are skipped.
    pub fn serve_tcp(
        &mut self,
        listener: &TcpListener,
        mut after_session: impl FnMut(&SessionEnd) -> ControlFlow<()>,
    ) {
        loop {
            let mut link = match TcpLink::accept(listener, Duration::from_secs(5)) {
                Ok(link) => link,
                Err(e) => {
                    tracing::warn!("fastboot TCP accept/handshake failed: {e}");
                    // A listener that keeps failing (e.g. out of descriptors) must not spin.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let end = self.serve(&mut link);
            tracing::info!(peer = %link.describe(), "fastboot session ended: {end:?}");
            if after_session(&end).is_break() {
                return;
            }
        }
    }

    fn remember(&mut self, command: &str) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(command.to_string());
    }

    fn handle(&mut self, link: &mut dyn Transport, raw: &[u8]) -> Result<Flow, TransportError> {
        let Ok(command) = std::str::from_utf8(raw) else {
            send(link, b"FAIL", "unknown command")?;
            return Ok(Flow::Next);
        };
        let command = command.to_string();
        self.remember(&command);
        if raw.len() > DEFAULT_MAX_COMMAND_LEN {
            send(
                link,
                b"FAIL",
                &format!(
                    "Command too long ({} bytes, at most {DEFAULT_MAX_COMMAND_LEN})",
                    raw.len()
                ),
            )?;
            return Ok(Flow::Next);
        }
        match self.phone.take_fault(&command) {
            Some(FaultAction::Fail(message)) => {
                send(link, b"FAIL", &message)?;
                return Ok(Flow::Next);
            }
            Some(FaultAction::Garbage) => {
                link.write(
                    b"\xffGARBAGE\x00\x13\x37 not a fastboot response",
                    WRITE_TIMEOUT,
                )?;
                return Ok(Flow::Next);
            }
            Some(FaultAction::Delay(by)) => std::thread::sleep(by),
            None => {}
        }
        self.dispatch(link, &command)
    }

    fn dispatch(
        &mut self,
        link: &mut dyn Transport,
        command: &str,
    ) -> Result<Flow, TransportError> {
        if let Some(name) = command.strip_prefix("getvar:") {
            return self.getvar(link, name).map(|_| Flow::Next);
        }
        if let Some(arg) = command.strip_prefix("download:") {
            return self.download(link, arg).map(|_| Flow::Next);
        }
        if let Some(arg) = command.strip_prefix("flash:") {
            return self.flash(link, arg).map(|_| Flow::Next);
        }
        if let Some(arg) = command.strip_prefix("erase:") {
            return self.erase(link, arg).map(|_| Flow::Next);
        }
        if let Some(arg) = command.strip_prefix("fetch:") {
            return self.fetch(link, arg).map(|_| Flow::Next);
        }
        if let Some(arg) = command.strip_prefix("set_active:") {
            return self.set_active(link, arg).map(|_| Flow::Next);
        }
        if let Some(args) = command.strip_prefix("oem ") {
            return self.oem(link, args);
        }
        if let Some(args) = command.strip_prefix("flashing ") {
            return self.flashing(link, args).map(|_| Flow::Next);
        }
        match command {
            "upload" => self.upload(link).map(|_| Flow::Next),
            "reboot" => self.reboot(link, RebootTo::System),
            "reboot-bootloader" => self.reboot(link, RebootTo::Bootloader),
            "reboot-fastboot" => self.reboot(link, RebootTo::Fastbootd),
            "reboot-recovery" => self.reboot(link, RebootTo::Recovery),
            "continue" => {
                send(link, b"OKAY", "")?;
                self.phone.set_mode(PhoneMode::Android);
                self.download = None;
                self.forget_unpersisted_slot();
                Ok(Flow::End(SessionEnd::Continue))
            }
            "boot" => self.boot(link),
            _ => {
                send(link, b"FAIL", "unknown command")?;
                Ok(Flow::Next)
            }
        }
    }

    fn reboot(&mut self, link: &mut dyn Transport, to: RebootTo) -> Result<Flow, TransportError> {
        send(link, b"OKAY", "")?;
        self.phone.set_mode(match to {
            RebootTo::System => PhoneMode::Android,
            RebootTo::Bootloader => PhoneMode::Bootloader,
            RebootTo::Fastbootd => PhoneMode::Fastbootd,
            RebootTo::Recovery => PhoneMode::Recovery,
            RebootTo::Edl => PhoneMode::Edl,
        });
        // RAM does not survive a reboot.
        self.download = None;
        self.staged_upload = None;
        self.forget_unpersisted_slot();
        Ok(Flow::End(SessionEnd::Reboot(to)))
    }

    fn boot(&mut self, link: &mut dyn Transport) -> Result<Flow, TransportError> {
        if self.download.is_none() {
            send(link, b"FAIL", "No image downloaded")?;
            return Ok(Flow::Next);
        }
        if !self.phone.lock().identity.unlocked {
            send(link, b"FAIL", "Boot Command is not allowed in Lock State")?;
            return Ok(Flow::Next);
        }
        send(link, b"OKAY", "")?;
        self.phone.set_mode(PhoneMode::Android);
        self.download = None;
        self.forget_unpersisted_slot();
        Ok(Flow::End(SessionEnd::BootDownloaded))
    }
}

fn end_for(e: TransportError) -> SessionEnd {
    if e.is_disconnect() {
        SessionEnd::Disconnected
    } else {
        SessionEnd::LinkError(e)
    }
}

/// Send one response frame, never longer than the protocol's 256 bytes (the message is cut at
/// a character boundary).
fn send(link: &mut dyn Transport, status: &[u8; 4], message: &str) -> Result<(), TransportError> {
    let room = MAX_RESPONSE_LEN - status.len();
    let mut end = message.len().min(room);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut frame = Vec::with_capacity(status.len() + end);
    frame.extend_from_slice(status);
    frame.extend_from_slice(&message.as_bytes()[..end]);
    link.write(&frame, WRITE_TIMEOUT)
}

/// A number as fastboot devices accept them: decimal or `0x` hex.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u64::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests;
