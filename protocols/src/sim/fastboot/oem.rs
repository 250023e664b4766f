//! `oem` (the vendor commands a station uses: a storage digest, device info, the command log,
//! EDL) and `flashing` (the bootloader's lock state).

use sha2::{Digest, Sha256};

use super::phone_memory::PhoneMemory;
use super::IO_CHUNK;
use super::{fail, info, okay, FastbootDevice, Flow, RebootTo, UNKNOWN_COMMAND};
use crate::fastboot::command::parse_number;
use crate::fastboot::FlashingAction;
use crate::transport::{Transport, TransportError};

impl FastbootDevice {
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
                info(link, "Verity mode: true")?;
                info(link, format!("Device unlocked: {unlocked}"))?;
                info(link, format!("Device critical unlocked: {critical}"))?;
                info(link, "Charger screen enabled: false")?;
                okay(link, "").map(|_| Flow::Next)
            }
            ["log"] => {
                let text: String = self.log.iter().map(|l| format!("{l}\n")).collect();
                let len = text.len();
                self.staged_upload = Some(text.into_bytes());
                info(link, format!("{len} bytes of log staged for upload"))?;
                okay(link, "").map(|_| Flow::Next)
            }
            ["edl"] => self.reboot(link, RebootTo::Edl),
            _ => fail(link, UNKNOWN_COMMAND).map(|_| Flow::Next),
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
                _ => return fail(link, USAGE),
            },
            _ => return fail(link, USAGE),
        };
        let Some(part) = self.find(name) else {
            return fail(link, format!("No such partition: {name}"));
        };
        let (offset, len) = range.unwrap_or((0, part.size_bytes));
        if offset.checked_add(len).is_none_or(|e| e > part.size_bytes) {
            return fail(
                link,
                format!(
                    "range {offset}+{len} is outside {} ({} bytes)",
                    part.name, part.size_bytes
                ),
            );
        }
        let mut hasher = Sha256::new();
        let mut buf = PhoneMemory::zeroed(IO_CHUNK.min(len as usize).max(1));
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            let read =
                self.phone
                    .lock()
                    .storage
                    .read_partition(&part.name, offset + done, &mut buf[..n]);
            if let Err(e) = read {
                return fail(link, format!("reading {}: {e}", part.name));
            }
            hasher.update(&buf[..n]);
            done += n as u64;
        }
        info(link, hex::encode(hasher.finalize()))?;
        okay(link, "")
    }

    pub(super) fn flashing(
        &mut self,
        link: &mut dyn Transport,
        action: FlashingAction,
    ) -> Result<(), TransportError> {
        match action {
            FlashingAction::GetUnlockAbility => {
                info(link, "get_unlock_ability: 1")?;
                okay(link, "")
            }
            FlashingAction::Unlock | FlashingAction::Lock => {
                let want_unlocked = action == FlashingAction::Unlock;
                let result = {
                    let mut s = self.phone.lock();
                    if s.identity.unlocked == want_unlocked {
                        Err(format!("Device already : {}ed!", action.word()))
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
                    Ok(()) => okay(link, ""),
                    Err(reason) => fail(link, reason),
                }
            }
            FlashingAction::UnlockCritical | FlashingAction::LockCritical => {
                let want = action == FlashingAction::UnlockCritical;
                let already = {
                    let mut s = self.phone.lock();
                    let already = s.identity.critical_unlocked == want;
                    s.identity.critical_unlocked = want;
                    already
                };
                if already {
                    let word = if want { "unlocked" } else { "locked" };
                    fail(link, format!("Device already : critical {word}!"))
                } else {
                    okay(link, "")
                }
            }
        }
    }
}
