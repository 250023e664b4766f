//! Fastboot commands, both ways: [`Command::encode`] makes the bytes a host sends,
//! [`Command::parse`] reads them on the device side (AOSP `fastboot` README "Command Reference"
//! and "Logical Partitions"; spellings as AOSP's `fastboot_driver.cpp` and `constants.h` send
//! them, arguments as fastbootd's `device/commands.cpp` accepts them).
//!
//! Sans-io: bytes in, a command out, and back; nothing here touches a link. One table of literal
//! bytes (`codec_tests.rs`) pins both directions, so host and simulated device cannot drift
//! apart on a spelling.

use std::fmt;

use super::variable::Variable;

/// The command-length limit of the README this station's peers were written against
/// ("a single packet no greater than 64 bytes", AOSP's `FB_COMMAND_SZ` until 2022). AOSP raised
/// it to 4096 for fastbootd, but LK and Qualcomm ABL still read 64 bytes, so the client refuses
/// longer commands unless told otherwise, and [`Command::parse`] rejects them.
///
/// Real bootloaders differ on a longer one: ABL cuts it to 64 bytes and runs what is left (a
/// `flash:` whose name loses its tail writes another partition), fastbootd reads at most 256,
/// U-Boot answers FAIL. The codec takes U-Boot's way, an error the device answers with FAIL,
/// because running a truncated command is never what the host meant.
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

    fn wire(self) -> &'static str {
        match self {
            RebootTarget::System => "reboot",
            RebootTarget::Bootloader => "reboot-bootloader",
            RebootTarget::Fastboot => "reboot-fastboot",
            RebootTarget::Recovery => "reboot-recovery",
        }
    }

    const ALL: [RebootTarget; 4] = [
        RebootTarget::System,
        RebootTarget::Bootloader,
        RebootTarget::Fastboot,
        RebootTarget::Recovery,
    ];
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
    pub fn word(self) -> &'static str {
        match self {
            FlashingAction::Lock => "lock",
            FlashingAction::Unlock => "unlock",
            FlashingAction::LockCritical => "lock_critical",
            FlashingAction::UnlockCritical => "unlock_critical",
            FlashingAction::GetUnlockAbility => "get_unlock_ability",
        }
    }

    /// The action a word names (`unlock_critical`), as the CLI and the device read it.
    pub fn parse(word: &str) -> Option<Self> {
        [
            FlashingAction::Lock,
            FlashingAction::Unlock,
            FlashingAction::LockCritical,
            FlashingAction::UnlockCritical,
            FlashingAction::GetUnlockAbility,
        ]
        .into_iter()
        .find(|a| a.word() == word)
    }
}

/// `snapshot-update[:cancel|merge]` (Virtual A/B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotUpdate {
    /// No argument: report the merge status in an INFO line.
    Status,
    Cancel,
    Merge,
}

/// `gsi:wipe|disable|status` (fastbootd, Dynamic System Updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsiAction {
    Wipe,
    Disable,
    Status,
}

impl GsiAction {
    fn word(self) -> &'static str {
        match self {
            GsiAction::Wipe => "wipe",
            GsiAction::Disable => "disable",
            GsiAction::Status => "status",
        }
    }
}

/// One fastboot command, as a host sends it and a device receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `getvar:NAME` (`all` lists every variable as INFO lines).
    GetVar(Variable<'a>),
    /// `download:%08x`: the host will send this many bytes.
    Download(u32),
    /// `upload`: read back what the last command staged.
    Upload,
    /// `fetch:PART[:0x%08x offset[:0x%08x size]]`, as the AOSP client sends it; without an
    /// offset the device reads from 0, without a size to the partition's end.
    Fetch {
        partition: &'a str,
        offset: Option<u64>,
        size: Option<u64>,
    },
    /// `flash:PART`: write the downloaded data.
    Flash(&'a str),
    /// `erase:PART`.
    Erase(&'a str),
    /// `set_active:SLOT` (`a`, `b`; some hosts send `_a`).
    SetActive(&'a str),
    /// `boot`: boot the downloaded image.
    Boot,
    /// `continue`: leave fastboot and boot.
    Continue,
    Reboot(RebootTarget),
    /// `oem ARGS`: vendor commands, sent as the words joined by one space.
    Oem(&'a str),
    Flashing(FlashingAction),
    /// `update-super:PART[:wipe]`: write the downloaded `super_empty.img` metadata (fastbootd).
    UpdateSuper {
        partition: &'a str,
        wipe: bool,
    },
    /// `create-logical-partition:NAME:SIZE` (size in bytes, decimal as the AOSP client sends).
    CreateLogicalPartition {
        partition: &'a str,
        size: u64,
    },
    /// `delete-logical-partition:NAME`.
    DeleteLogicalPartition(&'a str),
    /// `resize-logical-partition:NAME:SIZE`.
    ResizeLogicalPartition {
        partition: &'a str,
        size: u64,
    },
    SnapshotUpdate(SnapshotUpdate),
    Gsi(GsiAction),
    /// A command this codec does not know, kept whole; devices answer `FAILunknown command`.
    Unknown(&'a str),
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Command::GetVar(var) => write!(f, "getvar:{var}"),
            Command::Download(size) => write!(f, "download:{size:08x}"),
            Command::Upload => f.write_str("upload"),
            Command::Fetch {
                partition,
                offset,
                size,
            } => {
                write!(f, "fetch:{partition}")?;
                if let Some(offset) = offset {
                    write!(f, ":0x{offset:08x}")?;
                }
                match size {
                    Some(size) => write!(f, ":0x{size:08x}"),
                    None => Ok(()),
                }
            }
            Command::Flash(partition) => write!(f, "flash:{partition}"),
            Command::Erase(partition) => write!(f, "erase:{partition}"),
            Command::SetActive(slot) => write!(f, "set_active:{slot}"),
            Command::Boot => f.write_str("boot"),
            Command::Continue => f.write_str("continue"),
            Command::Reboot(target) => f.write_str(target.wire()),
            Command::Oem(args) => write!(f, "oem {args}"),
            Command::Flashing(action) => write!(f, "flashing {}", action.word()),
            Command::UpdateSuper { partition, wipe } => {
                write!(
                    f,
                    "update-super:{partition}{}",
                    if wipe { ":wipe" } else { "" }
                )
            }
            Command::CreateLogicalPartition { partition, size } => {
                write!(f, "create-logical-partition:{partition}:{size}")
            }
            Command::DeleteLogicalPartition(partition) => {
                write!(f, "delete-logical-partition:{partition}")
            }
            Command::ResizeLogicalPartition { partition, size } => {
                write!(f, "resize-logical-partition:{partition}:{size}")
            }
            // The AOSP client sends `snapshot-update:` + the argument, empty for the status.
            Command::SnapshotUpdate(SnapshotUpdate::Status) => f.write_str("snapshot-update:"),
            Command::SnapshotUpdate(SnapshotUpdate::Cancel) => {
                f.write_str("snapshot-update:cancel")
            }
            Command::SnapshotUpdate(SnapshotUpdate::Merge) => f.write_str("snapshot-update:merge"),
            Command::Gsi(action) => write!(f, "gsi:{}", action.word()),
            Command::Unknown(text) => f.write_str(text),
        }
    }
}

/// A command the host cannot send.
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

/// Why the bytes a device received are not a command it can run. The text is what a device
/// answers after `FAIL`, so it reads like a bootloader's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Empty command")]
    Empty,
    #[error("Command too long ({len} bytes, at most {max})")]
    TooLong { len: usize, max: usize },
    /// fastbootd refuses control characters; bytes over 0x7f are not ASCII either.
    #[error("Command contains control character or non-ASCII byte 0x{byte:02x}")]
    NotPrintable { byte: u8 },
    #[error("{command}: missing {what}")]
    MissingArgument {
        command: &'static str,
        what: &'static str,
    },
    #[error("{command}: invalid {what} `{value}`")]
    InvalidArgument {
        command: &'static str,
        what: &'static str,
        value: String,
    },
}

impl<'a> Command<'a> {
    /// The packet to send, checked: printable ASCII only (bootloaders parse commands as C
    /// strings, so a NUL or newline would cut or confuse them), names not empty and free of the
    /// separators the device splits on, and at most `max_len` bytes.
    pub fn encode(&self, max_len: usize) -> Result<Vec<u8>, CommandError> {
        let text = self.to_string();
        let invalid = |reason: &str| CommandError::InvalidArgument {
            command: text.escape_debug().to_string(),
            reason: reason.to_string(),
        };
        if let Some(name) = self.name() {
            if name.is_empty() {
                return Err(invalid("the name is empty"));
            }
            // A ':' or space would make the device split the argument differently from us.
            if name.contains([':', ' ']) {
                return Err(invalid("names may not contain ':' or spaces"));
            }
        }
        match *self {
            // OEM variables may carry ':' themselves; only a known name spelled as `Other`
            // would not read back as itself.
            Command::GetVar(Variable::Other(name)) => {
                if name.is_empty() || name.contains(' ') {
                    return Err(invalid("variable names may not be empty or contain spaces"));
                }
                if Variable::parse(name) != Variable::Other(name) {
                    return Err(invalid("a known variable, spelled as an unknown one"));
                }
            }
            Command::Oem(args) if args.trim().is_empty() => {
                return Err(invalid("oem needs at least one argument"));
            }
            Command::Fetch {
                offset: None,
                size: Some(_),
                ..
            } => return Err(invalid("a fetch size needs an offset before it")),
            Command::Unknown(raw)
                if Command::parse_within(raw.as_bytes(), usize::MAX) != Ok(*self) =>
            {
                return Err(invalid("it reads as a known command or a malformed one"));
            }
            _ => {}
        }
        if !text.bytes().all(is_printable) {
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

    /// Whether the device answers only once it has written storage, work that grows with the
    /// data (`flash`, `erase`, `update-super`, `snapshot-update` merges and cancels, and the
    /// `flashing` lock changes that wipe userdata): a device may be silent for minutes.
    pub fn writes_storage(&self) -> bool {
        match *self {
            Command::Flash(_)
            | Command::Erase(_)
            | Command::UpdateSuper { .. }
            | Command::SnapshotUpdate(SnapshotUpdate::Cancel | SnapshotUpdate::Merge) => true,
            Command::Flashing(action) => action != FlashingAction::GetUnlockAbility,
            _ => false,
        }
    }

    /// The partition, slot or variable-argument name this command carries.
    fn name(&self) -> Option<&'a str> {
        match *self {
            Command::GetVar(var) => var.argument(),
            Command::Flash(name)
            | Command::Erase(name)
            | Command::SetActive(name)
            | Command::DeleteLogicalPartition(name)
            | Command::Fetch {
                partition: name, ..
            }
            | Command::UpdateSuper {
                partition: name, ..
            }
            | Command::CreateLogicalPartition {
                partition: name, ..
            }
            | Command::ResizeLogicalPartition {
                partition: name, ..
            } => Some(name),
            _ => None,
        }
    }

    /// Read one command packet as a device does, refusing packets over
    /// [`DEFAULT_MAX_COMMAND_LEN`].
    pub fn parse(bytes: &'a [u8]) -> Result<Command<'a>, ParseError> {
        Self::parse_within(bytes, DEFAULT_MAX_COMMAND_LEN)
    }

    /// [`Command::parse`] for a device that takes commands of up to `max_len` bytes.
    pub fn parse_within(bytes: &'a [u8], max_len: usize) -> Result<Command<'a>, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError::Empty);
        }
        if bytes.len() > max_len {
            return Err(ParseError::TooLong {
                len: bytes.len(),
                max: max_len,
            });
        }
        if let Some(&byte) = bytes.iter().find(|b| !is_printable(**b)) {
            return Err(ParseError::NotPrintable { byte });
        }
        // Printable ASCII is UTF-8.
        let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotPrintable { byte: 0 })?;
        // Words after a space: `oem` takes everything, `flashing` one known word.
        if let Some(args) = text.strip_prefix("oem ") {
            if args.trim().is_empty() {
                return Err(missing("oem", "arguments"));
            }
            return Ok(Command::Oem(args));
        }
        if let Some(action) = text.strip_prefix("flashing ") {
            return Ok(FlashingAction::parse(action)
                .map(Command::Flashing)
                .unwrap_or(Command::Unknown(text)));
        }
        if let Some(target) = RebootTarget::ALL.iter().find(|t| t.wire() == text) {
            return Ok(Command::Reboot(*target));
        }
        let (name, args) = match text.split_once(':') {
            Some((name, args)) => (name, Some(args)),
            None => (text, None),
        };
        let command = match (name, args) {
            ("upload", None) => Command::Upload,
            ("boot", None) => Command::Boot,
            ("continue", None) => Command::Continue,
            ("snapshot-update", None | Some("")) => Command::SnapshotUpdate(SnapshotUpdate::Status),
            ("getvar", Some(args)) => Command::GetVar(parse_variable(args)?),
            ("download", Some(args)) => Command::Download(parse_download_size(args)?),
            ("flash", Some(args)) => Command::Flash(one_name("flash", args)?),
            ("erase", Some(args)) => Command::Erase(one_name("erase", args)?),
            ("set_active", Some(args)) => Command::SetActive(one_name("set_active", args)?),
            ("fetch", Some(args)) => parse_fetch(args)?,
            ("update-super", Some(args)) => parse_update_super(args)?,
            ("create-logical-partition", Some(args)) => {
                let (partition, size) = name_and_size("create-logical-partition", args)?;
                Command::CreateLogicalPartition { partition, size }
            }
            ("delete-logical-partition", Some(args)) => {
                Command::DeleteLogicalPartition(one_name("delete-logical-partition", args)?)
            }
            ("resize-logical-partition", Some(args)) => {
                let (partition, size) = name_and_size("resize-logical-partition", args)?;
                Command::ResizeLogicalPartition { partition, size }
            }
            ("snapshot-update", Some("cancel")) => Command::SnapshotUpdate(SnapshotUpdate::Cancel),
            ("snapshot-update", Some("merge")) => Command::SnapshotUpdate(SnapshotUpdate::Merge),
            ("snapshot-update", Some(other)) => {
                return Err(invalid("snapshot-update", "action", other))
            }
            ("gsi", Some(args)) => Command::Gsi(match args {
                "wipe" => GsiAction::Wipe,
                "disable" => GsiAction::Disable,
                "status" => GsiAction::Status,
                other => return Err(invalid("gsi", "action", other)),
            }),
            ("getvar" | "download" | "flash" | "erase" | "set_active" | "fetch", None)
            | ("update-super" | "gsi", None)
            | ("create-logical-partition" | "delete-logical-partition", None)
            | ("resize-logical-partition", None) => {
                return Err(missing(known_name(name), "argument"));
            }
            _ => Command::Unknown(text),
        };
        Ok(command)
    }
}

/// Printable ASCII: what a command may hold.
fn is_printable(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte)
}

fn missing(command: &'static str, what: &'static str) -> ParseError {
    ParseError::MissingArgument { command, what }
}

fn invalid(command: &'static str, what: &'static str, value: &str) -> ParseError {
    ParseError::InvalidArgument {
        command,
        what,
        value: value.to_string(),
    }
}

/// The static spelling of a command name matched above (error messages carry `&'static str`).
fn known_name(name: &str) -> &'static str {
    [
        "getvar",
        "download",
        "flash",
        "erase",
        "set_active",
        "fetch",
        "update-super",
        "gsi",
        "create-logical-partition",
        "delete-logical-partition",
        "resize-logical-partition",
    ]
    .into_iter()
    .find(|n| *n == name)
    .unwrap_or("command")
}

fn parse_variable(args: &str) -> Result<Variable<'_>, ParseError> {
    if args.is_empty() {
        return Err(missing("getvar", "variable name"));
    }
    let var = Variable::parse(args);
    if var.argument() == Some("") {
        return Err(missing("getvar", "variable argument"));
    }
    Ok(var)
}

/// Exactly 8 hex digits, as the README's `download:%08x` and fastbootd require (LK and ABL
/// take fewer; the AOSP client always sends 8, so anything else is a host bug worth seeing).
fn parse_download_size(args: &str) -> Result<u32, ParseError> {
    if args.len() != 8 || !args.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("download", "size (8 hex digits)", args));
    }
    u32::from_str_radix(args, 16).map_err(|_| invalid("download", "size (8 hex digits)", args))
}

/// One partition or slot name, with nothing after it.
fn one_name<'a>(command: &'static str, args: &'a str) -> Result<&'a str, ParseError> {
    match args {
        "" => Err(missing(command, "name")),
        name if name.contains(':') => Err(invalid(command, "name", name)),
        name => Ok(name),
    }
}

/// A number as fastbootd's `ParseUint` reads it: `0x` hex or decimal. A decimal with a leading
/// zero is refused: fastbootd would read it as octal, every other bootloader as decimal.
pub(crate) fn parse_number(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

fn parse_fetch(args: &str) -> Result<Command<'_>, ParseError> {
    let mut parts = args.split(':');
    let partition = parts.next().unwrap_or_default();
    if partition.is_empty() {
        return Err(missing("fetch", "partition"));
    }
    let mut number = |what: &'static str| -> Result<Option<u64>, ParseError> {
        parts
            .next()
            .map(|t| parse_number(t).ok_or_else(|| invalid("fetch", what, t)))
            .transpose()
    };
    let offset = number("offset")?;
    let size = number("size")?;
    if let Some(extra) = parts.next() {
        return Err(invalid("fetch", "argument", extra));
    }
    Ok(Command::Fetch {
        partition,
        offset,
        size,
    })
}

fn parse_update_super(args: &str) -> Result<Command<'_>, ParseError> {
    let (partition, wipe) = match args.split_once(':') {
        None => (args, false),
        Some((partition, "wipe")) => (partition, true),
        Some((_, other)) => return Err(invalid("update-super", "argument", other)),
    };
    if partition.is_empty() {
        return Err(missing("update-super", "partition"));
    }
    Ok(Command::UpdateSuper { partition, wipe })
}

fn name_and_size<'a>(command: &'static str, args: &'a str) -> Result<(&'a str, u64), ParseError> {
    let Some((partition, size)) = args.split_once(':') else {
        return Err(missing(command, "size"));
    };
    if partition.is_empty() {
        return Err(missing(command, "name"));
    }
    let size = parse_number(size).ok_or_else(|| invalid(command, "size", size))?;
    Ok((partition, size))
}
