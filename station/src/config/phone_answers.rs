//! The protocol side of a phones file's faults: answers that break fastboot or Firehose
//! (`answer:`), a bootloader's `set_active`, a boot ROM that misbehaves (`sahara:`) and how a
//! programmer packetises its XML (`firehose_packets:`). Each names the key it came from when
//! it is refused.

use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, KeyPath};
use super::phone_faults::{
    Answer, AnswerScript, ByteCount, FirehosePackets, SaharaScript, SetActiveScript, Wait,
};
use super::yaml::{deserialize_checked_str, YamlDocument};
use crate::byte_size::parse_byte_size;

/// Longest answer frame `with: too_long` sends (fastboot allows 256 bytes).
pub const MAX_LONG_ANSWER: u64 = 64 << 10;
/// Text an `OKAY` frame carries besides its status (a frame is at most 256 bytes).
pub const MAX_OKAY_TEXT: usize = 252;
/// Fastest progress line `with: info_flood` sends, and the default.
const MIN_INFO_EVERY: Duration = Duration::from_millis(1);
const DEFAULT_INFO_EVERY: Duration = Duration::from_millis(100);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnswerEntry {
    on: String,
    with: AnswerKind,
    #[serde(default)]
    length: Option<ByteCount>,
    #[serde(default)]
    size: Option<ByteCount>,
    #[serde(default)]
    every: Option<Wait>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    times: Option<u32>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum AnswerKind {
    Garbage,
    TooLong,
    InfoFlood,
    Truncated,
    UnknownPrefix,
    DataSize,
    Malformed,
    Okay,
    ShortData,
}

impl AnswerKind {
    /// The one optional key this kind takes (`length`, `size`, `every`, `text`), if any.
    fn takes(self) -> Option<&'static str> {
        match self {
            AnswerKind::TooLong => Some("length"),
            AnswerKind::DataSize | AnswerKind::ShortData => Some("size"),
            AnswerKind::InfoFlood => Some("every"),
            AnswerKind::Okay => Some("text"),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for SetActiveScript {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        match word.as_str() {
            "honoured" => Ok(SetActiveScript::Honoured),
            "ignored" => Ok(SetActiveScript::Ignored),
            "lost_on_reboot" => Ok(SetActiveScript::LostOnReboot),
            other => Err(serde::de::Error::custom(format!(
                "`{other}` is not a set_active behaviour; write `honoured`, `ignored` (OKAY, \
                 nothing switched) or `lost_on_reboot` (OKAY, switched until the next reboot); \
                 a set_active that FAILs is `fail: [{{ on: set_active, message: … }}]`"
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SaharaEntry {
    with: SaharaKind,
    #[serde(default)]
    offset: Option<ByteCount>,
    #[serde(default)]
    length: Option<ByteCount>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum SaharaKind {
    Silent,
    Garbage,
    HelloLost,
    AbsurdRead,
    ExecLength,
}

/// Smallest and largest transfer `firehose_packets: split N` cuts documents into.
const SPLIT_RANGE: std::ops::RangeInclusive<u64> = 1..=(1 << 20);

deserialize_checked_str!(
    FirehosePackets,
    "`whole`, `merged` or `split N`",
    |text: &str| {
        let t = text.trim();
        let bad = || {
            format!(
                "`{text}` is not a way to packetise; write `whole`, `merged` (logs and response \
                 in one transfer) or `split 7` (transfers of at most 7 bytes, 1 to 1M)"
            )
        };
        match t {
            "whole" => Ok(FirehosePackets::Whole),
            "merged" => Ok(FirehosePackets::Merged),
            _ => {
                let n = t
                    .strip_prefix("split ")
                    .and_then(|n| parse_byte_size(n).ok())
                    .filter(|n| SPLIT_RANGE.contains(n))
                    .ok_or_else(bad)?;
                Ok(FirehosePackets::Split(n as usize))
            }
        }
    }
);

pub(super) fn answer_of(
    doc: &YamlDocument,
    at: &KeyPath,
    a: AnswerEntry,
) -> Result<AnswerScript, ConfigError> {
    if a.on.trim().is_empty() {
        return Err(doc.error_at(
            &at.clone().key("on"),
            "no operation named",
            "name a fastboot command (`download`, `getvar:product`) or a Firehose tag (`program`)",
        ));
    }
    let given = [
        ("length", a.length.is_some()),
        ("size", a.size.is_some()),
        ("every", a.every.is_some()),
        ("text", a.text.is_some()),
    ];
    if let Some((extra, _)) = given
        .iter()
        .find(|(key, present)| *present && a.with.takes() != Some(*key))
    {
        let fix = match a.with.takes() {
            Some(key) => format!("this answer takes only `{key}`"),
            None => "this answer takes no value; remove the key".to_string(),
        };
        return Err(doc.error_at(
            &at.clone().key(*extra),
            format!("`{extra}` does not go with this `with:`"),
            fix,
        ));
    }
    let needed = |key: &str, value: Option<u64>| {
        value.ok_or_else(|| {
            doc.error_at(
                at,
                format!("this answer needs `{key}`"),
                format!("add e.g. `{key}: 300`"),
            )
        })
    };
    let out_of_range = |key: &str, problem: String, fix: &str| {
        doc.error_at(&at.clone().key(key), problem, fix.to_string())
    };
    let with = match a.with {
        AnswerKind::Garbage => Answer::Garbage,
        AnswerKind::Truncated => Answer::Truncated,
        AnswerKind::UnknownPrefix => Answer::UnknownPrefix,
        AnswerKind::Malformed => Answer::Malformed,
        AnswerKind::TooLong => {
            let length = needed("length", a.length.map(|b| b.0))?;
            if !(5..=MAX_LONG_ANSWER).contains(&length) {
                return Err(out_of_range(
                    "length",
                    format!("{length} bytes is not a frame from 5 bytes to {MAX_LONG_ANSWER}"),
                    "fastboot allows 256 bytes: e.g. `length: 300` breaks it",
                ));
            }
            Answer::TooLong(length as usize)
        }
        AnswerKind::DataSize => {
            let size = needed("size", a.size.map(|b| b.0))?;
            let size = u32::try_from(size).map_err(|_| {
                out_of_range(
                    "size",
                    format!("{size} does not fit DATA's eight hex digits"),
                    "give at most 0xffffffff",
                )
            })?;
            Answer::DataSize(size)
        }
        AnswerKind::ShortData => Answer::ShortData(needed("size", a.size.map(|b| b.0))?),
        AnswerKind::InfoFlood => {
            let every = match a.every {
                None => DEFAULT_INFO_EVERY,
                Some(Wait(Some(every))) if every >= MIN_INFO_EVERY => every,
                Some(_) => {
                    return Err(out_of_range(
                        "every",
                        "progress lines need a pace of at least 1ms".into(),
                        "write e.g. `every: 100ms`",
                    ))
                }
            };
            Answer::InfoFlood(every)
        }
        AnswerKind::Okay => {
            let text = a.text.unwrap_or_default();
            if text.len() > MAX_OKAY_TEXT || !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(out_of_range(
                    "text",
                    format!(
                        "an OKAY frame carries at most {MAX_OKAY_TEXT} printable ASCII characters"
                    ),
                    "shorten it; for a frame past the limit use `with: too_long`",
                ));
            }
            Answer::Okay(text)
        }
    };
    Ok(AnswerScript {
        on: a.on,
        with,
        times: a.times,
    })
}

pub(super) fn sahara_of(
    doc: &YamlDocument,
    at: &KeyPath,
    s: SaharaEntry,
) -> Result<SaharaScript, ConfigError> {
    let takes: &[&str] = match s.with {
        SaharaKind::AbsurdRead => &["offset", "length"],
        SaharaKind::ExecLength => &["length"],
        _ => &[],
    };
    for (key, present) in [
        ("offset", s.offset.is_some()),
        ("length", s.length.is_some()),
    ] {
        if present && !takes.contains(&key) {
            return Err(doc.error_at(
                &at.clone().key(key),
                format!("`{key}` does not go with this `with:`"),
                "remove it",
            ));
        }
        if !present && takes.contains(&key) {
            return Err(doc.error_at(
                at,
                format!("this boot ROM fault needs `{key}`"),
                "e.g. `{ with: absurd_read, offset: 0, length: 0x1000000000000000 }`",
            ));
        }
    }
    let value = |b: Option<ByteCount>| b.map_or(0, |b| b.0);
    Ok(match s.with {
        SaharaKind::Silent => SaharaScript::Silent,
        SaharaKind::Garbage => SaharaScript::Garbage,
        SaharaKind::HelloLost => SaharaScript::HelloLost,
        SaharaKind::AbsurdRead => SaharaScript::AbsurdRead {
            offset: value(s.offset),
            length: value(s.length),
        },
        SaharaKind::ExecLength => {
            let length = value(s.length);
            SaharaScript::AbsurdExecLength(u32::try_from(length).map_err(|_| {
                doc.error_at(
                    &at.clone().key("length"),
                    format!("{length} does not fit EXECUTE_RESP's 32-bit length"),
                    "give at most 0xffffffff",
                )
            })?)
        }
    })
}
