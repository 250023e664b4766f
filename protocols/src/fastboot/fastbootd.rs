//! Userspace fastboot (fastbootd) from the host: which fastboot is answering (`is-userspace`),
//! the logical partitions inside `super` (`is-logical`, `super-partition-name`, `update-super`,
//! `create-`/`delete-`/`resize-logical-partition`), and the refusals when a command needs the
//! other mode.
//!
//! Every decision rests on the device's own answers, as AOSP's `fastboot` makes them
//! (`is_userspace_fastboot`, `is_logical` in its fastboot.cpp): `is-userspace: yes` is fastbootd,
//! anything else (`no`, or a bootloader older than the variable) is the bootloader;
//! `is-logical:P` is only ever `yes` for a partition inside `super`. No list of partition
//! names is kept here: which partitions are logical differs from phone to phone.
//!
//! A reboot between the modes ends the session: the phone leaves the bus (USB) or closes the
//! connection (TCP) and comes back in the other mode. Waiting for it and opening a new session
//! is the caller's job, since only the caller knows the bus (the station follows the phone's
//! port path; the engineer's CLI runs one command per connection).

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::client::{Fastboot, Reply};
use super::command::{Command, FlashingAction, RebootTarget};
use super::error::FastbootError;
use super::variable::Variable;
use super::vars::yes_no;
use crate::lp::{self, ImageLayout};
use crate::transport::Transport;

/// The name of the physical partition holding the logical ones when the device does not say
/// (`super-partition-name` is fastbootd's): liblp's default, which AOSP's client falls back to.
pub const DEFAULT_SUPER_PARTITION: &str = "super";

/// The FAIL text AOSP asks a bootloader to answer when it is told to flash a logical partition
/// ("Moving Fastboot to Userspace"); matched without regard to case.
const BOOTLOADER_WANTS_FASTBOOTD: &str = "should be flashed in fastbootd";

/// Which fastboot implementation is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastbootMode {
    /// The bootloader's fastboot: physical (GPT) partitions only, and the lock state.
    Bootloader,
    /// Android's userspace fastboot (recovery's fastbootd): logical partitions in `super` as
    /// well as the physical ones it can open.
    Fastbootd,
}

impl FastbootMode {
    /// The reboot that reaches this mode.
    pub fn reboot_target(self) -> RebootTarget {
        match self {
            FastbootMode::Bootloader => RebootTarget::Bootloader,
            FastbootMode::Fastbootd => RebootTarget::Fastboot,
        }
    }

    /// What an engineer types to get there (`fastboot reboot fastboot`, `flashgate fastboot
    /// reboot fastboot`).
    pub fn reboot_command(self) -> &'static str {
        match self {
            FastbootMode::Bootloader => "reboot bootloader",
            FastbootMode::Fastbootd => "reboot fastboot",
        }
    }
}

impl fmt::Display for FastbootMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FastbootMode::Bootloader => "the bootloader",
            FastbootMode::Fastbootd => "fastbootd",
        })
    }
}

/// What the device says a partition is (`is-logical:P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKind {
    /// `yes`: inside `super`.
    Logical,
    /// `no`: a GPT partition.
    Physical,
    /// FAIL (fastbootd: "Partition not found"; a bootloader: it does not know the variable or
    /// the name).
    Unknown,
}

/// The error for a command that needs the other mode; `reason` says why, in the device's terms.
pub(crate) fn wrong_mode(command: &str, needs: FastbootMode, reason: String) -> FastbootError {
    FastbootError::WrongMode {
        command: command.to_string(),
        needs,
        reason,
    }
}

/// A bootloader's FAIL to a `flash:`/`erase:` of a logical partition, as the typed refusal;
/// other errors unchanged.
pub(crate) fn bootloader_refusal(partition: &str, e: FastbootError) -> FastbootError {
    match e {
        FastbootError::DeviceFail { command, message }
            if message
                .to_ascii_lowercase()
                .contains(BOOTLOADER_WANTS_FASTBOOTD) =>
        {
            let reason = format!(
                "`{partition}` is a logical partition (the bootloader answered \"{message}\")"
            );
            wrong_mode(&command, FastbootMode::Fastbootd, reason)
        }
        other => other,
    }
}

impl<T: Transport> Fastboot<T> {
    /// `is-userspace` is `yes`: the phone is in fastbootd. A bootloader answers `no`, or (older
    /// than fastbootd) does not know the variable: both are the bootloader.
    pub fn is_userspace(&mut self) -> Result<bool, FastbootError> {
        Ok(yes_no(self.getvar_optional(Variable::IsUserspace)?) == Some(true))
    }

    /// The mode answering, from [`Fastboot::is_userspace`].
    pub fn mode(&mut self) -> Result<FastbootMode, FastbootError> {
        Ok(if self.is_userspace()? {
            FastbootMode::Fastbootd
        } else {
            FastbootMode::Bootloader
        })
    }

    /// `is-logical:PART` is `yes`: the partition lives inside `super`. Only fastbootd knows
    /// the logical partitions, so in the bootloader this is false for them too (AOSP's client
    /// has the same caveat); use the full name (`system_a`).
    pub fn is_logical(&mut self, partition: &str) -> Result<bool, FastbootError> {
        Ok(self.partition_kind(partition)? == PartitionKind::Logical)
    }

    /// `is-logical:PART` with its three answers.
    pub fn partition_kind(&mut self, partition: &str) -> Result<PartitionKind, FastbootError> {
        Ok(
            match yes_no(self.getvar_optional(Variable::IsLogical(partition))?) {
                Some(true) => PartitionKind::Logical,
                Some(false) => PartitionKind::Physical,
                None => PartitionKind::Unknown,
            },
        )
    }

    /// `super-partition-name` (fastbootd), or [`DEFAULT_SUPER_PARTITION`] when the device
    /// does not say, as AOSP's client falls back.
    pub fn super_partition_name(&mut self) -> Result<String, FastbootError> {
        Ok(self
            .getvar_optional(Variable::SuperPartitionName)?
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| DEFAULT_SUPER_PARTITION.to_string()))
    }

    /// `reboot-fastboot`: into fastbootd. The device answers OKAY and leaves: this session is
    /// over (on USB the phone re-enumerates on the same port path, on TCP it closes the
    /// connection and listens again). The caller waits for it, opens a new session and
    /// should check [`Fastboot::is_userspace`] there: a phone whose recovery cannot start
    /// fastbootd comes back as the bootloader, or not at all.
    pub fn reboot_fastboot(&mut self) -> Result<Reply, FastbootError> {
        self.reboot(RebootTarget::Fastboot)
    }

    /// Fail with [`FastbootError::WrongMode`] unless the phone is in fastbootd; `command` is
    /// what would have been sent.
    fn require_fastbootd(&mut self, command: &Command<'_>) -> Result<(), FastbootError> {
        let answer = self.getvar_optional(Variable::IsUserspace)?;
        if yes_no(answer.clone()) == Some(true) {
            return Ok(());
        }
        let text = command.to_string();
        let verb = text.split(':').next().unwrap_or(&text);
        let reason = format!(
            "`{verb}` works only in fastbootd and the phone is in its bootloader \
             (is-userspace: {})",
            answer.as_deref().unwrap_or("not reported")
        );
        Err(wrong_mode(&text, FastbootMode::Fastbootd, reason))
    }

    /// Download `size` bytes of a `super_empty.img` from `super_empty`, then
    /// `update-super:<super-partition-name>[:wipe]`: fastbootd replaces the partition table
    /// of `super` with the image's (keeping the other slot's partitions unless `wipe`).
    /// Refused before anything is sent when the phone is not in fastbootd.
    pub fn update_super(
        &mut self,
        super_empty: &mut dyn Read,
        size: u64,
        wipe: bool,
    ) -> Result<Reply, FastbootError> {
        let name = self.super_partition_name()?;
        let command = Command::UpdateSuper {
            partition: &name,
            wipe,
        };
        self.require_fastbootd(&command)?;
        let size = match u32::try_from(size) {
            Ok(0) => {
                return Err(FastbootError::Image(
                    "the super_empty image is empty".into(),
                ))
            }
            Ok(size) => size,
            Err(_) => {
                return Err(FastbootError::Image(format!(
                    "a super_empty image of {size} bytes does not fit one download"
                )))
            }
        };
        self.download(super_empty, size)?;
        self.run(&command)
    }

    /// [`Fastboot::update_super`] with a file, checked first: it must be LP metadata in the
    /// `super_empty.img` layout (geometry at offset 0), which is what fastbootd parses; a
    /// whole `super.img` belongs to `flash super` from the bootloader instead.
    pub fn update_super_file(&mut self, path: &Path, wipe: bool) -> Result<Reply, FastbootError> {
        let io = |what: &str| {
            let what = format!("{what} {}", path.display());
            move |source| FastbootError::Io { what, source }
        };
        let mut file = File::open(path).map_err(io("opening"))?;
        let size = file.metadata().map_err(io("measuring"))?.len();
        let mut read_at = |offset: u64, buf: &mut [u8]| file.read_exact_at(buf, offset);
        match lp::read_image(&mut read_at, 0) {
            Ok((ImageLayout::SuperEmpty, _)) => {}
            Ok((ImageLayout::Super, _)) => {
                return Err(FastbootError::Image(format!(
                    "{} is a whole super image, not a super_empty.img: fastbootd's \
                     update-super takes only the partition table; flash a super image to \
                     `super` instead",
                    path.display()
                )))
            }
            Err(e) => {
                return Err(FastbootError::Image(format!(
                    "{} is not a super_empty.img: {e}",
                    path.display()
                )))
            }
        }
        file.seek(SeekFrom::Start(0)).map_err(io("rewinding"))?;
        self.update_super(&mut file, size, wipe)
    }

    /// `create-logical-partition:NAME:SIZE` (fastbootd): a new partition of `size` bytes in
    /// `super`'s default group. `name` is used as given (add the slot suffix yourself).
    pub fn create_logical_partition(
        &mut self,
        name: &str,
        size: u64,
    ) -> Result<Reply, FastbootError> {
        let command = Command::CreateLogicalPartition {
            partition: name,
            size,
        };
        self.require_fastbootd(&command)?;
        self.run(&command)
    }

    /// `delete-logical-partition:NAME` (fastbootd). A physical partition is refused here:
    /// fastbootd would answer OKAY and change nothing.
    pub fn delete_logical_partition(&mut self, name: &str) -> Result<Reply, FastbootError> {
        let command = Command::DeleteLogicalPartition(name);
        self.require_fastbootd(&command)?;
        if self.partition_kind(name)? == PartitionKind::Physical {
            return Err(FastbootError::Unsupported(format!(
                "`{name}` is a physical partition (is-logical: no): only logical partitions \
                 inside super can be deleted"
            )));
        }
        self.run(&command)
    }

    /// `resize-logical-partition:NAME:SIZE` (fastbootd): grow or shrink to `size` bytes (the
    /// device rounds up to its block size). Growing leaves the new extents' bytes as they were.
    pub fn resize_logical_partition(
        &mut self,
        name: &str,
        size: u64,
    ) -> Result<Reply, FastbootError> {
        let command = Command::ResizeLogicalPartition {
            partition: name,
            size,
        };
        self.require_fastbootd(&command)?;
        self.run(&command)
    }

    /// `flashing ACTION`: the lock state belongs to the bootloader; fastbootd has no such
    /// command, so there it is refused before it is sent.
    pub fn flashing(&mut self, action: FlashingAction) -> Result<Reply, FastbootError> {
        let command = Command::Flashing(action);
        if self.is_userspace()? {
            let reason =
                format!("fastbootd has no `{command}`: the lock state belongs to the bootloader");
            return Err(wrong_mode(
                &command.to_string(),
                FastbootMode::Bootloader,
                reason,
            ));
        }
        self.run(&command)
    }

    /// Check that `target` can be flashed in `mode` and say whether it is logical (then it is
    /// resized before it is written). In the bootloader only a definite `is-logical: yes` is
    /// refused here: a bootloader does not know logical names, and refuses them itself
    /// ([`bootloader_refusal`]). In fastbootd a partition it knows neither as logical nor as
    /// physical cannot be opened, so it is refused before the download.
    pub(crate) fn check_flash_target(
        &mut self,
        mode: FastbootMode,
        target: &str,
    ) -> Result<bool, FastbootError> {
        let kind = self.partition_kind(target)?;
        let command = Command::Flash(target).to_string();
        match (mode, kind) {
            (FastbootMode::Bootloader, PartitionKind::Logical) => Err(wrong_mode(
                &command,
                FastbootMode::Fastbootd,
                format!("`{target}` is a logical partition"),
            )),
            (FastbootMode::Fastbootd, PartitionKind::Unknown) => Err(wrong_mode(
                &command,
                FastbootMode::Bootloader,
                format!(
                    "fastbootd cannot write `{target}`: it has no such partition, logical or \
                     physical (is-logical answered FAIL)"
                ),
            )),
            (FastbootMode::Fastbootd, PartitionKind::Logical) => Ok(true),
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastboot::client::tests::{scripted, send, Step::*};

    #[test]
    fn modes_name_their_reboot() {
        assert_eq!(FastbootMode::Fastbootd.reboot_command(), "reboot fastboot");
        assert_eq!(
            FastbootMode::Bootloader.reboot_command(),
            "reboot bootloader"
        );
        assert_eq!(
            FastbootMode::Fastbootd.reboot_target(),
            RebootTarget::Fastboot
        );
        assert_eq!(
            FastbootMode::Bootloader.reboot_target(),
            RebootTarget::Bootloader
        );
        assert_eq!(FastbootMode::Bootloader.to_string(), "the bootloader");
    }

    #[test]
    fn an_old_bootloader_without_is_userspace_is_the_bootloader() {
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:is-userspace"),
            send(b"FAILGetVar Variable Not found"),
            Expect(b"getvar:is-userspace"),
            send(b"OKAYno"),
            Expect(b"getvar:is-userspace"),
            send(b"OKAYyes"),
        ]);
        let mut fb = Fastboot::new(link);
        assert_eq!(fb.mode().unwrap(), FastbootMode::Bootloader);
        assert_eq!(fb.mode().unwrap(), FastbootMode::Bootloader);
        assert_eq!(fb.mode().unwrap(), FastbootMode::Fastbootd);
        drop(fb);
        dev.join().unwrap();
    }

    #[test]
    fn super_partition_name_falls_back_to_super_as_aosp() {
        let (link, dev, _c) = scripted(vec![
            Expect(b"getvar:super-partition-name"),
            send(b"OKAYsuper_a"),
            Expect(b"getvar:super-partition-name"),
            send(b"FAILUnknown variable"),
        ]);
        let mut fb = Fastboot::new(link);
        assert_eq!(fb.super_partition_name().unwrap(), "super_a");
        assert_eq!(fb.super_partition_name().unwrap(), "super");
        drop(fb);
        dev.join().unwrap();
    }

    /// The refusal is made of the device's answers and sends nothing after them.
    #[test]
    fn logical_commands_in_the_bootloader_are_refused_before_sending() {
        let (link, dev, c) = scripted(vec![Expect(b"getvar:is-userspace"), send(b"OKAYno")]);
        let mut fb = Fastboot::new(link);
        let err = fb.resize_logical_partition("system_a", 4096).unwrap_err();
        let FastbootError::WrongMode { command, needs, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(command, "resize-logical-partition:system_a:4096");
        assert_eq!(*needs, FastbootMode::Fastbootd);
        assert_eq!(
            err.to_string(),
            "`resize-logical-partition` works only in fastbootd and the phone is in its \
             bootloader (is-userspace: no): reboot to fastbootd first (`reboot fastboot`)"
        );
        assert_eq!(c.host_bytes_written(), "getvar:is-userspace".len() as u64);
        drop(fb);
        dev.join().unwrap();
    }

    #[test]
    fn a_bootloader_fail_for_a_logical_partition_becomes_the_typed_refusal() {
        let fail = FastbootError::DeviceFail {
            command: "flash:system".into(),
            message: "Partition should be flashed in fastbootd".into(),
        };
        let err = bootloader_refusal("system", fail);
        assert!(
            matches!(
                &err,
                FastbootError::WrongMode { needs: FastbootMode::Fastbootd, command, .. }
                    if command == "flash:system"
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "`system` is a logical partition (the bootloader answered \"Partition should be \
             flashed in fastbootd\"): reboot to fastbootd first (`reboot fastboot`)"
        );
        let other = FastbootError::DeviceFail {
            command: "flash:boot_a".into(),
            message: "No such partition".into(),
        };
        assert!(matches!(
            bootloader_refusal("boot_a", other),
            FastbootError::DeviceFail { .. }
        ));
    }
}
