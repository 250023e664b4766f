//! The commands that move data or change storage: download, upload, flash (raw or sparse),
//! erase, fetch, set_active, oem, flashing.

use std::io::{self, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use super::staging::Staging;
use super::vars::resolve;
use super::{
    parse_number, send, FastbootDevice, Flow, RebootTo, SetActiveBehaviour, WRITE_TIMEOUT,
};
use crate::sim::phone::Phone;
use crate::sim::storage::PartitionInfo;
use crate::sparse::{self, FILE_HEADER_LEN};
use crate::transport::{Transport, TransportError};

/// Unit of storage I/O while flashing, fetching and hashing.
const IO_CHUNK: usize = 1 << 20;

/// A partition as a `Write + Seek` target, so the shared sparse expander can write into it.
/// Each write takes the phone's lock for that write only.
struct PartitionWriter<'a> {
    phone: &'a Phone,
    name: &'a str,
    size: u64,
    pos: u64,
}

impl Write for PartitionWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let end = self.pos.checked_add(data.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("write past the end of {} ({} bytes)", self.name, self.size),
            ));
        }
        self.phone
            .lock()
            .storage
            .write_partition(self.name, self.pos, data)
            .map_err(io::Error::other)?;
        self.pos += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for PartitionWriter<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek out of range"))?;
        Ok(self.pos)
    }
}

impl FastbootDevice {
    fn locked(&self) -> bool {
        !self.phone.lock().identity.unlocked
    }

    fn find(&self, name: &str) -> Option<PartitionInfo> {
        resolve(&self.phone.lock().storage, name)
    }

    pub(super) fn download(
        &mut self,
        link: &mut dyn Transport,
        arg: &str,
    ) -> Result<(), TransportError> {
        let size = match u32::from_str_radix(arg, 16) {
            Ok(n) if !arg.is_empty() && arg.len() <= 8 && n > 0 => n,
            _ => return send(link, b"FAIL", "Invalid download size"),
        };
        if size > self.config.max_download_size {
            return send(
                link,
                b"FAIL",
                "Requested download size is more than max allowed",
            );
        }
        // A new download replaces the old one before any byte arrives, like a RAM buffer.
        self.download = None;
        let mut staging =
            match Staging::with_len(u64::from(size), self.config.spill_downloads_above) {
                Ok(s) => s,
                Err(e) => return send(link, b"FAIL", &format!("No room for the download: {e}")),
            };
        send(link, b"DATA", &format!("{size:08x}"))?;
        let mut buf = vec![0u8; IO_CHUNK.min(size as usize)];
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
            return send(link, b"FAIL", &format!("Download buffer failed: {e}"));
        }
        self.download = Some(staging);
        send(link, b"OKAY", "")
    }

    pub(super) fn upload(&mut self, link: &mut dyn Transport) -> Result<(), TransportError> {
        let Some(data) = self.staged_upload.take() else {
            return send(link, b"FAIL", "No data staged for upload");
        };
        send(link, b"DATA", &format!("{:08x}", data.len()))?;
        for piece in data.chunks(IO_CHUNK) {
            link.write(piece, WRITE_TIMEOUT)?;
        }
        send(link, b"OKAY", "")
    }

    pub(super) fn flash(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
    ) -> Result<(), TransportError> {
        if self.locked() {
            return send(link, b"FAIL", "Flashing is not allowed in Lock State");
        }
        let Some(part) = self.find(name) else {
            return send(link, b"FAIL", &format!("No such partition: {name}"));
        };
        let Some(staging) = self.download.as_ref() else {
            return send(link, b"FAIL", "No image downloaded: send `download` first");
        };
        let result = write_image(&self.phone, staging, &part);
        match result {
            Ok(()) => send(link, b"OKAY", ""),
            Err(reason) => send(link, b"FAIL", &reason),
        }
    }

    pub(super) fn erase(
        &mut self,
        link: &mut dyn Transport,
        name: &str,
    ) -> Result<(), TransportError> {
        if self.locked() {
            return send(link, b"FAIL", "Erase is not allowed in Lock State");
        }
        let Some(part) = self.find(name) else {
            return send(link, b"FAIL", &format!("No such partition: {name}"));
        };
        let result = self
            .phone
            .lock()
            .storage
            .discard_partition(&part.name, 0, part.size_bytes);
        match result {
            Ok(()) => send(link, b"OKAY", ""),
            Err(e) => send(
                link,
                b"FAIL",
                &format!("Erase of {} failed: {e}", part.name),
            ),
        }
    }

    /// `fetch:<partition>[:<offset>[:<size>]]` as fastbootd implements it.
    pub(super) fn fetch(
        &mut self,
        link: &mut dyn Transport,
        arg: &str,
    ) -> Result<(), TransportError> {
        if self.config.fetch_requires_unlocked && self.locked() {
            return send(link, b"FAIL", "Fetch is not allowed on locked devices");
        }
        let mut args = arg.split(':');
        let name = args.next().unwrap_or("");
        if name.is_empty() {
            return send(link, b"FAIL", "Missing partition arg");
        }
        if !self.config.fetch_allow.allows(name) {
            let list = match &self.config.fetch_allow {
                super::FetchAllow::Only(names) => names.join(", "),
                super::FetchAllow::All => String::new(),
            };
            return send(link, b"FAIL", &format!("Fetch is only allowed on [{list}]"));
        }
        let Some(part) = self.find(name) else {
            return send(link, b"FAIL", &format!("Cannot open {name}"));
        };
        let offset = match args.next() {
            None => 0,
            Some(t) => match parse_number(t) {
                Some(n) => n,
                None => return send(link, b"FAIL", "Invalid offset, must be integer"),
            },
        };
        if offset > part.size_bytes {
            return send(
                link,
                b"FAIL",
                &format!(
                    "Invalid offset 0x{offset:x}, partition {} has size 0x{:x}",
                    part.name, part.size_bytes
                ),
            );
        }
        let max_len = part.size_bytes - offset;
        let len = match args.next() {
            None => max_len,
            Some(t) => match parse_number(t) {
                Some(n) => n,
                None => return send(link, b"FAIL", "Invalid size, must be integer"),
            },
        };
        if len == 0 {
            return send(link, b"OKAY", "Read 0 bytes");
        }
        if len > max_len {
            return send(
                link,
                b"FAIL",
                &format!(
                    "Invalid size to read 0x{len:x}, partition {} has size 0x{:x} and fetching \
                     from offset 0x{offset:x}",
                    part.name, part.size_bytes
                ),
            );
        }
        if len > u64::from(self.config.max_fetch_size) {
            return send(
                link,
                b"FAIL",
                &format!(
                    "Cannot fetch 0x{len:x} bytes because it exceeds maximum transport size 0x{:x}",
                    self.config.max_fetch_size
                ),
            );
        }
        send(link, b"DATA", &format!("{len:08x}"))?;
        let mut buf = vec![0u8; IO_CHUNK.min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            let read =
                self.phone
                    .lock()
                    .storage
                    .read_partition(&part.name, offset + done, &mut buf[..n]);
            if read.is_err() {
                // Mid-data there is no way to report a reason: end the stream early like
                // fastbootd does and let the host notice the short transfer.
                return Err(TransportError::Disconnected);
            }
            link.write(&buf[..n], WRITE_TIMEOUT)?;
            done += n as u64;
        }
        send(
            link,
            b"OKAY",
            &format!(
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
            Ok(()) => send(link, b"OKAY", ""),
            Err(reason) => send(link, b"FAIL", &reason),
        }
    }

    /// A reboot loses what `set_active` kept only in RAM: the slot active before it boots.
    pub(super) fn forget_unpersisted_slot(&mut self) {
        if let Some(slot) = self.unpersisted_from.take() {
            // The slot existed a moment ago on this phone; nothing to report if it vanished.
            let _ = self.phone.lock().storage.set_active_slot(&slot);
        }
    }

    pub(super) fn oem(
        &mut self,
        link: &mut dyn Transport,
        args: &str,
    ) -> Result<Flow, TransportError> {
        let words: Vec<&str> = args.split_whitespace().collect();
        match words.as_slice() {
            ["sha256", rest @ ..] => self.oem_sha256(link, rest).map(|_| Flow::Next),
            ["device-info"] => {
                let (unlocked, critical) = {
                    let s = self.phone.lock();
                    (s.identity.unlocked, s.identity.critical_unlocked)
                };
                send(link, b"INFO", "Verity mode: true")?;
                send(link, b"INFO", &format!("Device unlocked: {unlocked}"))?;
                send(
                    link,
                    b"INFO",
                    &format!("Device critical unlocked: {critical}"),
                )?;
                send(link, b"INFO", "Charger screen enabled: false")?;
                send(link, b"OKAY", "").map(|_| Flow::Next)
            }
            ["log"] => {
                let text: String = self.log.iter().map(|l| format!("{l}\n")).collect();
                let len = text.len();
                self.staged_upload = Some(text.into_bytes());
                send(
                    link,
                    b"INFO",
                    &format!("{len} bytes of log staged for upload"),
                )?;
                send(link, b"OKAY", "").map(|_| Flow::Next)
            }
            ["edl"] => self.reboot(link, RebootTo::Edl),
            _ => send(link, b"FAIL", "unknown command").map(|_| Flow::Next),
        }
    }

    /// `oem sha256 <partition> [<offset> <length>]`: the vendor digest the station verifies
    /// with; the device hashes its own storage and answers the hex digest in an INFO line.
    fn oem_sha256(
        &mut self,
        link: &mut dyn Transport,
        args: &[&str],
    ) -> Result<(), TransportError> {
        const USAGE: &str = "usage: oem sha256 <partition> [<offset> <length>]";
        let (name, range) = match args {
            [name] => (*name, None),
            [name, offset, length] => match (parse_number(offset), parse_number(length)) {
                (Some(o), Some(l)) => (*name, Some((o, l))),
                _ => return send(link, b"FAIL", USAGE),
            },
            _ => return send(link, b"FAIL", USAGE),
        };
        let Some(part) = self.find(name) else {
            return send(link, b"FAIL", &format!("No such partition: {name}"));
        };
        let (offset, len) = range.unwrap_or((0, part.size_bytes));
        if offset.checked_add(len).is_none_or(|e| e > part.size_bytes) {
            return send(
                link,
                b"FAIL",
                &format!(
                    "range {offset}+{len} is outside {} ({} bytes)",
                    part.name, part.size_bytes
                ),
            );
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; IO_CHUNK.min(len as usize).max(1)];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            let read =
                self.phone
                    .lock()
                    .storage
                    .read_partition(&part.name, offset + done, &mut buf[..n]);
            if let Err(e) = read {
                return send(link, b"FAIL", &format!("reading {}: {e}", part.name));
            }
            hasher.update(&buf[..n]);
            done += n as u64;
        }
        send(link, b"INFO", &hex::encode(hasher.finalize()))?;
        send(link, b"OKAY", "")
    }

    pub(super) fn flashing(
        &mut self,
        link: &mut dyn Transport,
        args: &str,
    ) -> Result<(), TransportError> {
        match args.trim() {
            "get_unlock_ability" => {
                send(link, b"INFO", "get_unlock_ability: 1")?;
                send(link, b"OKAY", "")
            }
            action @ ("unlock" | "lock") => {
                let want_unlocked = action == "unlock";
                let result = {
                    let mut s = self.phone.lock();
                    if s.identity.unlocked == want_unlocked {
                        Err(format!("Device already : {action}ed!"))
                    } else {
                        s.identity.unlocked = want_unlocked;
                        // Changing the lock state wipes user data (ABL asks on screen first;
                        // the simulated user always confirms).
                        match s.storage.partition("userdata") {
                            Some(p) => s
                                .storage
                                .discard_partition("userdata", 0, p.size_bytes)
                                .map_err(|e| format!("wiping userdata: {e}")),
                            None => Ok(()),
                        }
                    }
                };
                match result {
                    Ok(()) => send(link, b"OKAY", ""),
                    Err(reason) => send(link, b"FAIL", &reason),
                }
            }
            action @ ("unlock_critical" | "lock_critical") => {
                let want = action == "unlock_critical";
                let already = {
                    let mut s = self.phone.lock();
                    let already = s.identity.critical_unlocked == want;
                    s.identity.critical_unlocked = want;
                    already
                };
                if already {
                    let word = if want { "unlocked" } else { "locked" };
                    send(link, b"FAIL", &format!("Device already : critical {word}!"))
                } else {
                    send(link, b"OKAY", "")
                }
            }
            _ => send(link, b"FAIL", "unknown command"),
        }
    }
}

/// Write a staged image into a partition: sparse images are expanded (RAW copied, FILL
/// written, DONT_CARE left as it is, so each piece of a split image keeps the others' data);
/// anything else is written raw from the partition's start.
fn write_image(phone: &Phone, staging: &Staging, part: &PartitionInfo) -> Result<(), String> {
    let staged = |e: io::Error| format!("reading the download buffer: {e}");
    let mut head = [0u8; FILE_HEADER_LEN];
    let n = staging.head(&mut head).map_err(staged)?;
    if sparse::is_sparse(&head[..n]) {
        let header = sparse::SparseHeader::parse(&head[..n])
            .map_err(|e| format!("Invalid sparse image: {e}"))?;
        if header.expanded_len() > part.size_bytes {
            return Err(format!(
                "Sparse image size span overflow: {} bytes expanded, {} holds {}",
                header.expanded_len(),
                part.name,
                part.size_bytes
            ));
        }
        let mut target = PartitionWriter {
            phone,
            name: &part.name,
            size: part.size_bytes,
            pos: 0,
        };
        sparse::expand(staging.reader().map_err(staged)?, &mut target)
            .map(|_| ())
            .map_err(|e| format!("Flashing sparse image to {} failed: {e}", part.name))
    } else {
        if staging.len() > part.size_bytes {
            return Err(format!(
                "Image size {} exceeds partition size {} of {}",
                staging.len(),
                part.size_bytes,
                part.name
            ));
        }
        let mut reader = staging.reader().map_err(staged)?;
        let mut buf = vec![0u8; IO_CHUNK];
        let mut pos = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(staged)?;
            if n == 0 {
                return Ok(());
            }
            phone
                .lock()
                .storage
                .write_partition(&part.name, pos, &buf[..n])
                .map_err(|e| format!("Writing {} failed: {e}", part.name))?;
            pos += n as u64;
        }
    }
}
