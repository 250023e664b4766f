//! A phones file's `faults:` — how a simulated phone departs from a correct one: lost writes,
//! a pulled cable, hangs, refusals, answers that break the protocol, a bootloader that does
//! not keep its `set_active`, a boot ROM or programmer that misbehaves. Loaded as strictly as
//! the rest of the file (every mistake names the phone's key); `sim_fleet::scripted` arms them
//! on the simulator.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, KeyPath};
use super::phone_answers::{answer_of, sahara_of, AnswerEntry, SaharaEntry};
use super::phones::{contents_of, Contents};
use super::yaml::{deserialize_checked_str, YamlDocument};
use crate::byte_size::parse_byte_size;

/// Fault rules (`hang`, `fail`, `answer`, `disconnect_during`, `read_back`) one phone may have
/// in all: a scenario needs a handful, and each is checked on every command the phone serves.
pub const MAX_FAULT_RULES: usize = 64;
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultScript {
    /// Writes answered OKAY/ACK and not stored: every partition (`all`) or these.
    pub drop_writes: Option<DropWritesScript>,
    /// The cable drops after this many bytes from the host on each link.
    pub disconnect_after: Option<u64>,
    /// The phone drops off while it writes a partition, at a percentage of what that command
    /// writes (`flash:system_a` or Firehose `program:system_a`), once: `(on, percent)`.
    pub disconnect_during: Vec<(String, u8)>,
    /// The cable is pulled at an event: as a command arrives, or during the next reboot.
    pub pull_cable: Option<PullCableScript>,
    /// Operations that hang: for a time, then answer (`Some`), or for ever (`None`).
    pub hang: Vec<(String, Option<Duration>, Option<u32>)>,
    /// Operations refused with this message.
    pub fail: Vec<(String, String, Option<u32>)>,
    /// Operations answered with something the protocol does not allow.
    pub answer: Vec<AnswerScript>,
    /// How the bootloader carries out an acknowledged `set_active` (default: it does).
    pub set_active: Option<SetActiveScript>,
    /// The link's bandwidth in bytes per second.
    pub rate: Option<u64>,
    /// How long the EDL programmer takes to start after Sahara.
    pub programmer_boot: Option<Duration>,
    /// How the EDL boot ROM misbehaves.
    pub sahara: Option<SaharaScript>,
    /// How the EDL programmer cuts its XML documents into USB transfers.
    pub firehose_packets: Option<FirehosePackets>,
    /// Reads (fastboot `fetch:…`, Firehose `read`) answered with other bytes.
    pub read_back: Vec<(String, Contents)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropWritesScript {
    All,
    Partitions(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullCableScript {
    /// As this operation arrives (never answered).
    On(String),
    /// While the phone is off the bus for its next reboot, `continue` or power reset: it
    /// acknowledges and never comes back.
    AtNextReboot,
}

/// One rule of `answer:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerScript {
    pub on: String,
    pub with: Answer,
    pub times: Option<u32>,
}

/// An answer that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Bytes that are no answer at all.
    Garbage,
    /// One frame of this many bytes.
    TooLong(usize),
    /// Progress lines at this pace, for ever.
    InfoFlood(Duration),
    /// An answer cut short.
    Truncated,
    /// A status the protocol does not have.
    UnknownPrefix,
    /// fastboot `DATA` announcing this size, not the one asked for.
    DataSize(u32),
    /// fastboot `DATA` whose size is not hex; Firehose XML that is not well-formed.
    Malformed,
    /// Success, with this text, without doing the operation.
    Okay(String),
    /// A read that sends only this many bytes, then its closing OKAY/ACK.
    ShortData(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetActiveScript {
    Honoured,
    /// OKAY, and nothing changes.
    Ignored,
    /// OKAY, switched in RAM only: the old slot boots again after a reboot.
    LostOnReboot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaharaScript {
    Silent,
    Garbage,
    HelloLost,
    AbsurdRead { offset: u64, length: u64 },
    AbsurdExecLength(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirehosePackets {
    Whole,
    Merged,
    Split(usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FaultsEntry {
    #[serde(default)]
    drop_writes: Option<DropWritesEntry>,
    #[serde(default)]
    disconnect_after: Option<ByteCount>,
    #[serde(default)]
    disconnect_during: Vec<DisconnectEntry>,
    #[serde(default)]
    pull_cable: Option<PullCableEntry>,
    #[serde(default)]
    hang: Vec<HangEntry>,
    #[serde(default)]
    fail: Vec<FailEntry>,
    #[serde(default)]
    answer: Vec<AnswerEntry>,
    #[serde(default)]
    set_active: Option<SetActiveScript>,
    #[serde(default)]
    rate: Option<ByteCount>,
    #[serde(default)]
    programmer_boot: Option<Wait>,
    #[serde(default)]
    sahara: Option<SaharaEntry>,
    #[serde(default)]
    firehose_packets: Option<FirehosePackets>,
    #[serde(default)]
    read_back: Vec<ReadBackEntry>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DropWritesEntry {
    Word(String),
    Partitions(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HangEntry {
    on: String,
    #[serde(rename = "for")]
    duration: Wait,
    #[serde(default)]
    times: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectEntry {
    on: String,
    at: Percent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullCableEntry {
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailEntry {
    on: String,
    message: String,
    #[serde(default)]
    times: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBackEntry {
    on: String,
    #[serde(default)]
    image: Option<std::path::PathBuf>,
    #[serde(default)]
    fill: Option<u8>,
    #[serde(default)]
    size: Option<ByteCount>,
}

/// A share of something, `40%`.
struct Percent(u8);

deserialize_checked_str!(
    Percent,
    "a percentage from 0% to 100% (40%)",
    |text: &str| {
        text.trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u8>().ok())
            .filter(|n| *n <= 100)
            .map(Percent)
            .ok_or_else(|| {
                format!("`{text}` is not a percentage from 0% to 100%; write e.g. `40%`")
            })
    }
);

/// A byte count in the spellings of [`parse_byte_size`] (`40M`, `4096`, `0x1000`).
pub(super) struct ByteCount(pub(super) u64);

deserialize_checked_str!(ByteCount, "a byte count (4096, 64K, 40M, 1G)", |text| {
    parse_byte_size(text).map(ByteCount)
});

/// A time (`50ms`, `5s`, `2m`) or `ever`.
pub(super) struct Wait(pub(super) Option<Duration>);

deserialize_checked_str!(Wait, "a time (50ms, 5s, 2m) or `ever`", parse_wait);

fn parse_wait(text: &str) -> Result<Wait, String> {
    let t = text.trim();
    if t == "ever" {
        return Ok(Wait(None));
    }
    let bad = || format!("`{text}` is not a time; write it as 50ms, 5s or 2m (or `ever`)");
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" | "min" => n.checked_mul(60_000),
        _ => None,
    };
    millis
        .map(|ms| Wait(Some(Duration::from_millis(ms))))
        .ok_or_else(bad)
}

/// The `faults:` of one phone, at `at` in `doc`; image paths resolve against `folder`.
pub(super) fn faults_of(
    doc: &YamlDocument,
    folder: &Path,
    at: &KeyPath,
    f: FaultsEntry,
) -> Result<FaultScript, ConfigError> {
    let rules = f.hang.len() + f.fail.len() + f.answer.len();
    let rules = rules + f.disconnect_during.len() + f.read_back.len();
    if rules > MAX_FAULT_RULES {
        return Err(doc.error_at(
            at,
            format!("{rules} fault rules; a phone takes at most {MAX_FAULT_RULES}"),
            "describe one misbehaviour per phone; give other faults to other slots",
        ));
    }
    let drop_writes = match f.drop_writes {
        None => None,
        Some(DropWritesEntry::Word(w)) if w == "all" => Some(DropWritesScript::All),
        Some(DropWritesEntry::Word(w)) => {
            return Err(doc.error_at(
                &at.clone().key("drop_writes"),
                format!("`{w}` is neither `all` nor a list of partitions"),
                "write `drop_writes: all` or `drop_writes: [system_a, boot_a]`",
            ))
        }
        Some(DropWritesEntry::Partitions(names)) => Some(DropWritesScript::Partitions(names)),
    };
    let programmer_boot = match f.programmer_boot {
        None => None,
        Some(Wait(Some(d))) => Some(d),
        Some(Wait(None)) => {
            return Err(doc.error_at(
                &at.clone().key("programmer_boot"),
                "a programmer that never boots is a hang",
                "give a time (e.g. `2s`), or hang the first command: `hang: [{ on: configure, for: ever }]`",
            ))
        }
    };
    let mut read_back = Vec::new();
    for (i, r) in f.read_back.into_iter().enumerate() {
        let key = at.clone().key("read_back").index(i);
        let contents = contents_of(doc, folder, &key, r.image, r.fill, r.size)?;
        if matches!(contents, Contents::Fill { size: None, .. }) {
            return Err(doc.error_at(
                &key,
                "a read-back fill needs a `size`",
                "add e.g. `size: 1M`",
            ));
        }
        read_back.push((r.on, contents));
    }
    let mut disconnect_during = Vec::new();
    for (i, d) in f.disconnect_during.into_iter().enumerate() {
        let writes = ["flash", "program"].iter().any(|op| {
            d.on.strip_prefix(op)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
        });
        if !writes {
            return Err(doc.error_at(
                &at.clone().key("disconnect_during").index(i).key("on"),
                format!("`{}` writes nothing: a phone drops off during a write", d.on),
                "name a fastboot flash (`flash:system_a`) or a Firehose program (`program:system_a`)",
            ));
        }
        disconnect_during.push((d.on, d.at.0));
    }
    let pull_cable = match f.pull_cable {
        None => None,
        Some(p) => Some(pull_cable_of(doc, &at.clone().key("pull_cable"), p)?),
    };
    let mut answer = Vec::with_capacity(f.answer.len());
    for (i, a) in f.answer.into_iter().enumerate() {
        answer.push(answer_of(doc, &at.clone().key("answer").index(i), a)?);
    }
    let sahara = match f.sahara {
        None => None,
        Some(s) => Some(sahara_of(doc, &at.clone().key("sahara"), s)?),
    };
    Ok(FaultScript {
        drop_writes,
        disconnect_after: f.disconnect_after.map(|b| b.0),
        disconnect_during,
        pull_cable,
        hang: f
            .hang
            .into_iter()
            .map(|h| (h.on, h.duration.0, h.times))
            .collect(),
        fail: f
            .fail
            .into_iter()
            .map(|x| (x.on, x.message, x.times))
            .collect(),
        answer,
        set_active: f.set_active,
        rate: f.rate.map(|b| b.0),
        programmer_boot,
        sahara,
        firehose_packets: f.firehose_packets,
        read_back,
    })
}

fn pull_cable_of(
    doc: &YamlDocument,
    at: &KeyPath,
    entry: PullCableEntry,
) -> Result<PullCableScript, ConfigError> {
    const EXAMPLE: &str =
        "write `pull_cable: { on: \"flash:system_a\" }` (as that command arrives) \
                           or `pull_cable: { at: next_reboot }` (while it reboots)";
    match (entry.on, entry.at) {
        (Some(on), None) if !on.trim().is_empty() => Ok(PullCableScript::On(on)),
        (None, Some(event)) if event == "next_reboot" => Ok(PullCableScript::AtNextReboot),
        (None, Some(event)) => Err(doc.error_at(
            &at.clone().key("at"),
            format!("`{event}` is not an event the cable can be pulled at"),
            EXAMPLE,
        )),
        _ => Err(doc.error_at(
            at,
            "give exactly one of `on: COMMAND` or `at: next_reboot`",
            EXAMPLE,
        )),
    }
}

#[cfg(test)]
mod tests;
