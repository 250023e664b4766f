//! Fastboot commands as the bytes the host sends (AOSP `fastboot` README, "Command Reference").
//!
//! Sans-io: [`Command::encode`] turns a command into one packet's bytes and checks it against the
//! command-length limit; nothing here touches a link.

use std::fmt;

/// The README's limit: "a single packet no greater than 64 bytes". Newer bootloaders accept up
/// to 4096, but older ones (LK-based and many vendor bootloaders) truncate or reject longer
/// commands, so the client refuses them unless told otherwise.
pub const DEFAULT_MAX_COMMAND_LEN: usize = 64;

/// Where `reboot` sends the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootTarget {
    /// `reboot`: boot the OS.
    System,
    /// `reboot-bootloader`: back into the bootloader's fastboot.
    Bootloader,
    /// `reboot-fastboot`: into userspace fastboot (fastbootd).
    Fastboot,
    /// `reboot-recovery`.
    Recovery,
}

impl RebootTarget {
    /// Parse the CLI spelling (`bootloader`, `fastboot`, `recovery`, `system` or empty).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" | "system" => Some(RebootTarget::System),
            "bootloader" => Some(RebootTarget::Bootloader),
            "fastboot" => Some(RebootTarget::Fastboot),
            "recovery" => Some(RebootTarget::Recovery),
            _ => None,
        }
    }
}

/// `flashing …` sub-commands (bootloader lock state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashingAction {
    Lock,
    Unlock,
    LockCritical,
    UnlockCritical,
    GetUnlockAbility,
}

impl FlashingAction {
    fn word(self) -> &'static str {
        match self {
            FlashingAction::Lock => "lock",
            FlashingAction::Unlock => "unlock",
            FlashingAction::LockCritical => "lock_critical",
            FlashingAction::UnlockCritical => "unlock_critical",
            FlashingAction::GetUnlockAbility => "get_unlock_ability",
        }
    }
}

/// One fastboot command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `getvar:NAME` (`all` lists every variable as INFO lines).
    GetVar(&'a str),
    /// `download:%08x`: the host will send this many bytes.
    Download(u32),
    /// `upload`: read back what the last command staged.
    Upload,
    /// `fetch:PART:0x%08x:0x%08x` (offset, size), as the AOSP client sends it.
    Fetch {
        partition: &'a str,
        offset: u64,
        size: u64,
    },
    /// `flash:PART`: write the downloaded data.
    Flash(&'a str),
    /// `erase:PART`.
    Erase(&'a str),
    Reboot(RebootTarget),
    /// `set_active:SLOT` (`a`, `b`).
    SetActive(&'a str),
    /// `continue`: leave fastboot and boot.
    Continue,
    /// `oem ARGS`: vendor commands, sent as the words joined by one space.
    Oem(&'a str),
    Flashing(FlashingAction),
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::GetVar(name) => write!(f, "getvar:{name}"),
            Command::Download(size) => write!(f, "download:{size:08x}"),
            Command::Upload => f.write_str("upload"),
            Command::Fetch {
                partition,
                offset,
                size,
            } => write!(f, "fetch:{partition}:0x{offset:08x}:0x{size:08x}"),
            Command::Flash(partition) => write!(f, "flash:{partition}"),
            Command::Erase(partition) => write!(f, "erase:{partition}"),
            Command::Reboot(RebootTarget::System) => f.write_str("reboot"),
            Command::Reboot(RebootTarget::Bootloader) => f.write_str("reboot-bootloader"),
            Command::Reboot(RebootTarget::Fastboot) => f.write_str("reboot-fastboot"),
            Command::Reboot(RebootTarget::Recovery) => f.write_str("reboot-recovery"),
            Command::SetActive(slot) => write!(f, "set_active:{slot}"),
            Command::Continue => f.write_str("continue"),
            Command::Oem(args) => write!(f, "oem {args}"),
            Command::Flashing(action) => write!(f, "flashing {}", action.word()),
        }
    }
}

/// A command that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error(
        "command `{command}` is {len} bytes, over the {max}-byte limit old bootloaders accept \
         (shorten the name or raise the command-length limit if this device takes longer ones)"
    )]
    TooLong {
        command: String,
        len: usize,
        max: usize,
    },
    #[error("command `{command}`: {reason}")]
    InvalidArgument { command: String, reason: String },
}

impl Command<'_> {
    /// The packet to send, checked: printable ASCII only (bootloaders parse commands as C
    /// strings, so a NUL or newline would cut or confuse them), names not empty, and at most
    /// `max_len` bytes.
    pub fn encode(&self, max_len: usize) -> Result<Vec<u8>, CommandError> {
        let text = self.to_string();
        let invalid = |reason: &str| CommandError::InvalidArgument {
            command: text.escape_debug().to_string(),
            reason: reason.to_string(),
        };
        if let Some(name) = self.name_argument() {
            if name.is_empty() {
                return Err(invalid("the name is empty"));
            }
            // A ':' or space would make the device split the argument differently from us
            // (variable names legitimately carry ':' as in `has-slot:system`).
            let forbidden: &[char] = if matches!(self, Command::GetVar(_)) {
                &[' ']
            } else {
                &[':', ' ']
            };
            if name.contains(forbidden) {
                return Err(invalid("names may not contain ':' or spaces"));
            }
        }
        if let Command::Oem(args) = self {
            if args.trim().is_empty() {
                return Err(invalid("oem needs at least one argument"));
            }
        }
        if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(invalid("only printable ASCII can be sent"));
        }
        if text.len() > max_len {
            return Err(CommandError::TooLong {
                len: text.len(),
                command: text,
                max: max_len,
            });
        }
        Ok(text.into_bytes())
    }

    fn name_argument(&self) -> Option<&str> {
        match self {
            Command::GetVar(name)
            | Command::Flash(name)
            | Command::Erase(name)
            | Command::SetActive(name) => Some(name),
            Command::Fetch { partition, .. } => Some(partition),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(c: Command<'_>) -> Vec<u8> {
        c.encode(DEFAULT_MAX_COMMAND_LEN).unwrap()
    }

    #[test]
    fn encodes_literal_bytes() {
        let table: &[(Command<'_>, &[u8])] = &[
            (Command::GetVar("product"), b"getvar:product"),
            (Command::GetVar("all"), b"getvar:all"),
            (
                Command::GetVar("has-slot:system"),
                b"getvar:has-slot:system",
            ),
            (Command::Download(0x1234), b"download:00001234"),
            (Command::Download(0xa00_0000), b"download:0a000000"),
            (Command::Download(u32::MAX), b"download:ffffffff"),
            (Command::Upload, b"upload"),
            (
                Command::Fetch {
                    partition: "boot_a",
                    offset: 0,
                    size: 0x10_0000,
                },
                b"fetch:boot_a:0x00000000:0x00100000",
            ),
            (
                Command::Fetch {
                    partition: "system_a",
                    offset: 0x1_2345_6789,
                    size: 0x800,
                },
                b"fetch:system_a:0x123456789:0x00000800",
            ),
            (Command::Flash("boot_a"), b"flash:boot_a"),
            (Command::Erase("userdata"), b"erase:userdata"),
            (Command::Reboot(RebootTarget::System), b"reboot"),
            (
                Command::Reboot(RebootTarget::Bootloader),
                b"reboot-bootloader",
            ),
            (Command::Reboot(RebootTarget::Fastboot), b"reboot-fastboot"),
            (Command::Reboot(RebootTarget::Recovery), b"reboot-recovery"),
            (Command::SetActive("b"), b"set_active:b"),
            (Command::Continue, b"continue"),
            (Command::Oem("sha256 system_a"), b"oem sha256 system_a"),
            (Command::Flashing(FlashingAction::Lock), b"flashing lock"),
            (
                Command::Flashing(FlashingAction::Unlock),
                b"flashing unlock",
            ),
            (
                Command::Flashing(FlashingAction::UnlockCritical),
                b"flashing unlock_critical",
            ),
        ];
        for (command, expected) in table {
            assert_eq!(bytes(command.clone()), *expected, "{command:?}");
        }
    }

    #[test]
    fn refuses_commands_over_the_limit_unless_configured() {
        let long = "p".repeat(60);
        let err = Command::Flash(&long).encode(64).unwrap_err();
        assert!(matches!(
            err,
            CommandError::TooLong {
                len: 66,
                max: 64,
                ..
            }
        ));
        assert_eq!(Command::Flash(&long).encode(4096).unwrap().len(), 66);
        // Exactly 64 bytes is allowed.
        let name = "p".repeat(58);
        assert_eq!(Command::Flash(&name).encode(64).unwrap().len(), 64);
    }

    #[test]
    fn refuses_names_the_device_would_misparse() {
        for bad in ["", "a b", "sys\0tem", "boot\n", "x:y", "é"] {
            assert!(
                matches!(
                    Command::Flash(bad).encode(64),
                    Err(CommandError::InvalidArgument { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(Command::Oem("  ").encode(64).is_err());
        assert!(Command::Oem("device-info\x07").encode(64).is_err());
    }

    #[test]
    fn reboot_targets_parse_cli_words() {
        assert_eq!(
            RebootTarget::parse("bootloader"),
            Some(RebootTarget::Bootloader)
        );
        assert_eq!(RebootTarget::parse(""), Some(RebootTarget::System));
        assert_eq!(RebootTarget::parse("edl"), None);
    }
}
