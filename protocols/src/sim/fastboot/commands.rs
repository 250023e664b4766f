//! The commands that move data or change storage: download, upload, flash (raw or sparse),
//! erase, fetch, set_active.

use super::phone_memory::PhoneMemory;
use super::staging::Staging;
use super::target::{data_bytes, write_image, write_image_until, Target};
use super::vars::resolve;
use super::{
    fail, okay, reply, FastbootDevice, Flow, SessionEnd, SetActiveBehaviour, IO_CHUNK,
    WRITE_TIMEOUT,
};
use crate::fastboot::Response;
use crate::sim::storage::PartitionInfo;
use crate::transport::{Transport, TransportError};

/// What a bootloader answers when asked to write a logical partition (AOSP's "Moving Fastboot
/// to User Space": the bootloader must refuse dynamic partitions with this error).
pub(super) const FLASH_IN_FASTBOOTD: &str = "Partition should be flashed in fastbootd";

impl FastbootDevice {
    fn locked(&self) -> bool {
        !self.phone.lock().identity.unlocked
    }

    pub(super) fn find(&self, name: &str) -> Option<PartitionInfo> {
        resolve(&self.phone.lock().storage, name)
    }

    pub(super) fn download(
        &mut self,
        link: &mut dyn Transport,
        size: u32,
    ) -> Result<(), TransportError> {
        if size == 0 {
            return fail(link, "Invalid download size");
        }
        if size > self.config.max_download_size {
            return fail(link, "Requested download size is more than max allowed");
        }
        // A new download replaces the old one before any byte arrives, like a RAM buffer.
        let previous = self.download.take();
        let mut staging =
            match Staging::with_len(u64::from(size), self.config.spill_downloads_above, previous) {
                Ok(s) => s,
                Err(e) => return fail(link, format!("No room for the download: {e}")),
            };
        reply(link, Response::Data(size))?;
        let mut buf = PhoneMemory::zeroed(IO_CHUNK.min(size as usize));
        let mut left = size as usize;
        let mut stage_error = None;
        while left > 0 {
            let want = left.min(buf.len());
            let n = link.read_stream(&mut buf[..want], self.config.data_timeout)?;
            if n == 0 {
                return Err(TransportError::Disconnected);
            }
            // Keep reading after a staging failure so the host's data phase completes and it
            // gets a FAIL instead of a hang.
            if stage_error.is_none() {
                if let Err(e) = staging.append(&buf[..n]) {
                    stage_error = Some(e);
                }
            }
            left -= n;
        }
        if let Some(e) = stage_error {
            return fail(link, format!("Download buffer failed: {e}"));
        }
        self.download = Some(staging);
        okay(link, "")
    }

    pub(super) fn upload(&mut self, link: &mut dyn Transport) -> Result<(), TransportError> {
        let Some(data) = self.staged_upload.take() else {
            return fail(link, "No data staged for upload");
        };
        let Ok(len) = u32::try_from(data.len()) else {
            return fail(link, "Staged data is larger than a DATA phase can announce");
        };
        reply(link, Response::Data(len))?;
        let sent = self.bytes_to_send(len.into()) as usize;
        for piece in data[..sent].chunks(IO_CHUNK) {
            link.write(piece, WRITE_TIMEOUT)?;
        }
        okay(link, "")
    }

    /// The partition `flash:`/`erase:` write: fastbootd prefers a logical partition (as AOSP's
    /// `OpenPartition` does), the bootloader knows only the GPT and refuses logical names.
    fn write_target(&self, name: &str) -> Result<Target, String> {
        let logical = self.logical(name);
        if self.userspace() {
            if let Some((metadata, index)) = logical {
                return Ok(Target::Logical { metadata, index });
            }
        }
        match self.find(name) {
            Some(part) => Ok(Target::Physical(part)),
            None if logical.is_some() => Err(FLASH_IN_FASTBOOTD.to_string()),
            None => Err(format!("No such partition: {name}")),
        }
    }

    pub(super) fn flash(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
    ) -> Result<(), TransportError> {
        if self.locked() {
            return fail(link, self.locked_refusal("Flashing"));
        }
        let target = match self.write_target(name) {
            Ok(target) => target,
            Err(reason) => return fail(link, reason),
        };
        let Some(staging) = self.download.as_ref() else {
            return fail(link, "No image downloaded: send `download` first");
        };
        let result = write_image(&self.phone, staging, &target);
        if result.is_ok() {
            if let Target::Logical { metadata, index } = &target {
                self.cancel_snapshot(metadata, *index);
            }
        }
        match result {
            Ok(()) => okay(link, ""),
            Err(reason) => fail(link, reason),
        }
    }

    /// `flash:` that stops once `percent` % of the image's data is written and drops off the
    /// bus without answering (see [`crate::sim::FaultAction::CutDuringWrite`]). Refusals that come before
    /// any write (locked, no such partition, nothing downloaded) are answered as usual.
    pub(super) fn flash_then_drop_off(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
        percent: u8,
    ) -> Result<Flow, TransportError> {
        if self.locked() {
            return fail(link, self.locked_refusal("Flashing")).map(|()| Flow::Next);
        }
        let target = match self.write_target(name) {
            Ok(target) => target,
            Err(reason) => return fail(link, reason).map(|()| Flow::Next),
        };
        let Some(staging) = self.download.as_ref() else {
            return fail(link, "No image downloaded: send `download` first").map(|()| Flow::Next);
        };
        let written = match data_bytes(staging) {
            Ok(total) => {
                let budget = total.saturating_mul(u64::from(percent.min(100))) / 100;
                write_image_until(&self.phone, staging, &target, Some(budget))
            }
            Err(reason) => Err(reason),
        };
        if let Err(reason) = written {
            return fail(link, reason).map(|()| Flow::Next);
        }
        tracing::debug!(
            partition = name,
            percent,
            "simulated phone drops off mid-flash"
        );
        self.phone.pull_cable();
        Ok(Flow::End(SessionEnd::Disconnected))
    }

    pub(super) fn erase(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
    ) -> Result<(), TransportError> {
        if self.locked() {
            return fail(link, self.locked_refusal("Erase"));
        }
        let target = match self.write_target(name) {
            Ok(target) => target,
            Err(reason) => return fail(link, reason),
        };
        let result = target.discard(&mut self.phone.lock().storage);
        match result {
            Ok(()) => okay(link, ""),
            Err(reason) => fail(link, reason),
        }
    }

    /// How a locked phone refuses `what`: ABL's wording, or fastbootd's.
    fn locked_refusal(&self, what: &str) -> String {
        if self.userspace() {
            format!("{what} is not allowed on locked devices")
        } else {
            format!("{what} is not allowed in Lock State")
        }
    }

    /// `fetch:<partition>[:<offset>[:<size>]]` as fastbootd implements it.
    pub(super) fn fetch(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
        offset: Option<u64>,
        size: Option<u64>,
    ) -> Result<(), TransportError> {
        if self.config.fetch_allow == super::FetchAllow::None {
            return fail(link, super::UNKNOWN_COMMAND);
        }
        if self.config.fetch_requires_unlocked && self.locked() {
            return fail(link, "Fetch is not allowed on locked devices");
        }
        if !self.config.fetch_allow.allows(name) {
            let list = match &self.config.fetch_allow {
                super::FetchAllow::Only(names) => names.join(", "),
                super::FetchAllow::All | super::FetchAllow::None => String::new(),
            };
            return fail(link, format!("Fetch is only allowed on [{list}]"));
        }
        let Some(part) = self.find(name) else {
            return fail(link, format!("Cannot open {name}"));
        };
        let offset = offset.unwrap_or(0);
        if offset > part.size_bytes {
            return fail(
                link,
                format!(
                    "Invalid offset 0x{offset:x}, partition {} has size 0x{:x}",
                    part.name, part.size_bytes
                ),
            );
        }
        let max_len = part.size_bytes - offset;
        let len = size.unwrap_or(max_len);
        if len == 0 {
            return okay(link, "Read 0 bytes");
        }
        if len > max_len {
            return fail(
                link,
                format!(
                    "Invalid size to read 0x{len:x}, partition {} has size 0x{:x} and fetching \
                     from offset 0x{offset:x}",
                    part.name, part.size_bytes
                ),
            );
        }
        if len > u64::from(self.config.max_fetch_size) {
            return fail(
                link,
                format!(
                    "Cannot fetch 0x{len:x} bytes because it exceeds maximum transport size 0x{:x}",
                    self.config.max_fetch_size
                ),
            );
        }
        // Bounded by max_fetch_size (a u32) just above.
        reply(link, Response::Data(len as u32))?;
        let mut buf = PhoneMemory::zeroed(IO_CHUNK.min(len as usize));
        let mut done = 0u64;
        let sent = self.bytes_to_send(len);
        while done < sent {
            let n = (sent - done).min(buf.len() as u64) as usize;
            let read = self.read_for_host(&part.name, offset + done, &mut buf[..n]);
            if read.is_err() {
                // Mid-data there is no way to report a reason: end the stream early like
                // fastbootd does and let the host notice the short transfer.
                return Err(TransportError::Disconnected);
            }
            link.write(&buf[..n], WRITE_TIMEOUT)?;
            done += n as u64;
        }
        okay(
            link,
            format!(
                "Fetched {} (offset=0x{offset:x}, size=0x{len:x})",
                part.name
            ),
        )
    }

    pub(super) fn set_active(
        &mut self,
        link: &mut dyn Transport,
        arg: &str,
    ) -> Result<(), TransportError> {
        let slot = arg.strip_prefix('_').unwrap_or(arg);
        let behaviour = self.config.set_active;
        let result = {
            let mut state = self.phone.lock();
            let before = state.storage.current_slot();
            if state.storage.slot_suffixes().is_empty() {
                Err("Slot Change is not supported".to_string())
            } else if !state.storage.slot_suffixes().iter().any(|s| s == slot) {
                Err(format!("Invalid slot suffix: {arg}"))
            } else if behaviour == SetActiveBehaviour::IgnoredAfterOkay {
                Ok(())
            } else {
                let switched = state
                    .storage
                    .set_active_slot(slot)
                    .map_err(|_| format!("Invalid slot suffix: {arg}"));
                if switched.is_ok() && behaviour == SetActiveBehaviour::LostOnReboot {
                    // Keep the first slot of this boot: that is what the GPT still says.
                    self.unpersisted_from = self.unpersisted_from.take().or(before);
                }
                switched
            }
        };
        match result {
            Ok(()) => okay(link, ""),
            Err(reason) => fail(link, reason),
        }
    }

    /// A reboot loses what `set_active` kept only in RAM: the slot active before it boots.
    pub(super) fn forget_unpersisted_slot(&mut self) {
        if let Some(slot) = self.unpersisted_from.take() {
            // The slot existed a moment ago on this phone; nothing to report if it vanished.
            let _ = self.phone.lock().storage.set_active_slot(&slot);
        }
    }
}
