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
//!
//! Every packet is read with [`Command::parse`] and every answer written with
//! [`Response::encode`], the codec the host uses the other way round, so a command both sides
//! misspelled the same way cannot pass; what the codec refuses is answered with its reason.

use std::collections::VecDeque;
use std::time::Duration;

use crate::fastboot::{Command, ParseError, RebootTarget, Response, DEFAULT_MAX_COMMAND_LEN};
use crate::transport::{Transport, TransportError};

use super::lifecycle::Ending;
pub use super::lifecycle::RebootTo;
use super::phone::{FaultAction, Phone};

mod commands;
mod faults;
mod logical;
mod oem;
mod phone_memory;
mod staging;
mod target;
mod userspace;
mod vars;

pub use phone_memory::held_bytes;
use staging::Staging;

/// Where `fetch:` may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAllow {
    /// Any partition (a factory or engineering bootloader).
    All,
    /// No `fetch` at all: many production bootloaders do not implement the command, and answer
    /// it as any command they do not know (`FAILunknown command`), publishing no
    /// `max-fetch-size` either.
    None,
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
            FetchAllow::None => false,
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

/// Why [`FastbootDevice::serve`] returned. Where the phone ended the session (a reboot,
/// `continue`, `boot`), its lifecycle has already moved it: the host carries out
/// [`Phone::take_transition`].
#[derive(Debug)]
pub enum SessionEnd {
    /// The host closed the link (the AOSP client does after every invocation) or it was cut.
    Disconnected,
    /// A reboot was acknowledged.
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

/// Unit of storage I/O while flashing, fetching and hashing.
const IO_CHUNK: usize = 1 << 20;
/// Time allowed to hand one response frame to the link.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Commands longer than this are read whole (so the answer can be a clean FAIL) and refused.
const COMMAND_BUFFER: usize = 4096;
/// Commands kept for `oem log`.
const LOG_LINES: usize = 200;
/// What bootloaders answer to a command they do not have (the README's example).
const UNKNOWN_COMMAND: &str = "unknown command";

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
    /// An injected fault that changes what the current command reads back (short data, other
    /// bytes); cleared when the command is answered.
    read_fault: Option<FaultAction>,
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
            read_fault: None,
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
                    let too_long = ParseError::TooLong {
                        len,
                        max: DEFAULT_MAX_COMMAND_LEN,
                    };
                    if let Err(e) = fail(link, too_long.to_string()) {
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

    fn remember(&mut self, command: &str) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(command.to_string());
    }

    /// One command packet: parsed with the codec the host encodes with, refused with the
    /// codec's reason when it is not a command, else faults, then its handler.
    fn handle(&mut self, link: &mut dyn Transport, raw: &[u8]) -> Result<Flow, TransportError> {
        self.remember(&String::from_utf8_lossy(raw));
        let command = match Command::parse(raw) {
            Ok(command) => command,
            Err(e) => {
                fail(link, e.to_string())?;
                return Ok(Flow::Next);
            }
        };
        // Faults name operations by the command text as sent (printable ASCII, checked above).
        let text = String::from_utf8_lossy(raw);
        match self.phone.take_fault(&text) {
            Some(fault) => self.dispatch_faulty(link, command, fault),
            None => self.dispatch(link, command),
        }
    }

    fn dispatch(
        &mut self,
        link: &mut dyn Transport,
        command: Command<'_>,
    ) -> Result<Flow, TransportError> {
        let next = |result: Result<(), TransportError>| result.map(|()| Flow::Next);
        match command {
            Command::GetVar(var) => next(self.getvar(link, var)),
            Command::Download(size) => next(self.download(link, size)),
            Command::Upload => next(self.upload(link)),
            Command::Flash(partition) => next(self.flash(link, partition)),
            Command::Erase(partition) => next(self.erase(link, partition)),
            Command::Fetch {
                partition,
                offset,
                size,
            } => next(self.fetch(link, partition, offset, size)),
            Command::SetActive(slot) => next(self.set_active(link, slot)),
            Command::Oem(args) => self.oem(link, args),
            Command::Flashing(action) => next(self.flashing(link, action)),
            Command::Reboot(target) => self.reboot(link, RebootTo::from(target)),
            Command::Continue => {
                okay(link, "")?;
                self.lose_ram();
                self.phone.end_session(Ending::Continue);
                Ok(Flow::End(SessionEnd::Continue))
            }
            Command::Boot => self.boot(link),
            Command::UpdateSuper { .. }
            | Command::CreateLogicalPartition { .. }
            | Command::DeleteLogicalPartition(_)
            | Command::ResizeLogicalPartition { .. }
            | Command::SnapshotUpdate(_)
            | Command::Gsi(_) => next(self.userspace_only(link, command)),
            Command::Unknown(_) => next(fail(link, UNKNOWN_COMMAND)),
        }
    }

    fn reboot(&mut self, link: &mut dyn Transport, to: RebootTo) -> Result<Flow, TransportError> {
        okay(link, "")?;
        self.lose_ram();
        self.phone.end_session(Ending::Reboot(to));
        Ok(Flow::End(SessionEnd::Reboot(to)))
    }

    /// RAM does not survive a reboot: the download buffer, staged uploads and a slot switch
    /// that was never written back.
    fn lose_ram(&mut self) {
        self.download = None;
        self.staged_upload = None;
        self.forget_unpersisted_slot();
    }

    fn boot(&mut self, link: &mut dyn Transport) -> Result<Flow, TransportError> {
        if self.download.is_none() {
            fail(link, "No image downloaded")?;
            return Ok(Flow::Next);
        }
        if !self.phone.lock().identity.unlocked {
            fail(link, "Boot Command is not allowed in Lock State")?;
            return Ok(Flow::Next);
        }
        okay(link, "")?;
        self.lose_ram();
        self.phone.end_session(Ending::BootDownloaded);
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

/// Send one response frame (the codec cuts a message to the protocol's 256 bytes).
fn reply(link: &mut dyn Transport, response: Response) -> Result<(), TransportError> {
    link.write(&response.encode(), WRITE_TIMEOUT)
}

fn okay(link: &mut dyn Transport, message: impl Into<String>) -> Result<(), TransportError> {
    reply(link, Response::Okay(message.into()))
}

fn fail(link: &mut dyn Transport, message: impl Into<String>) -> Result<(), TransportError> {
    reply(link, Response::Fail(message.into()))
}

fn info(link: &mut dyn Transport, message: impl Into<String>) -> Result<(), TransportError> {
    reply(link, Response::Info(message.into()))
}

impl From<RebootTarget> for RebootTo {
    fn from(target: RebootTarget) -> Self {
        match target {
            RebootTarget::System => RebootTo::System,
            RebootTarget::Bootloader => RebootTo::Bootloader,
            RebootTarget::Fastboot => RebootTo::Fastbootd,
            RebootTarget::Recovery => RebootTo::Recovery,
        }
    }
}

#[cfg(test)]
mod fastbootd_tests;
#[cfg(test)]
mod tests;
