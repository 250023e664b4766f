//! A phones file's `bootloader:` — how a simulated phone's bootloader and boot ROM are set up,
//! where real phones differ without misbehaving: the download buffer (`max-download-size`),
//! which partitions `fetch:` reads and in what pieces, and which EDL programmers secure boot
//! accepts. What a phone leaves out is the rig's (`sim_fleet::rig`); `sim_fleet::scripted`
//! sets the rest on the simulator.
//!
//! The values are read loosely and checked here rather than by serde, so that each refusal can
//! name the phone's slot as well as the key.

use serde::Deserialize;

use super::error::{ConfigError, KeyPath};
use super::yaml::{LooseValue as Value, YamlDocument};
use crate::byte_size::parse_byte_size;
use crate::digest::Sha256Digest;
use crate::events::SlotNumber;

/// Smallest `max_download_size` / `max_fetch_size`: one 4 KiB block, below which no image
/// piece or read-back fits.
pub const MIN_TRANSFER_LIMIT: u64 = 4 << 10;
/// Largest `max_download_size` / `max_fetch_size`: fastboot announces a transfer's size in
/// eight hex digits (`DATA%08x`).
pub const MAX_TRANSFER_LIMIT: u64 = u32::MAX as u64;
/// Partitions a `fetch:` list may name: a bootloader's allow-list is a handful.
pub const MAX_FETCH_NAMES: usize = 64;
/// Programmers `accepted_programmers` may list: a phone's secure boot trusts a few signing
/// keys, not a catalogue.
pub const MAX_ACCEPTED_PROGRAMMERS: usize = 16;

/// One phone's bootloader settings; `None` keeps the rig's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootloaderScript {
    /// `getvar max-download-size`, and the largest `download:` the bootloader takes.
    pub max_download_size: Option<u32>,
    /// `getvar max-fetch-size`: the largest single `fetch:` answer.
    pub max_fetch_size: Option<u32>,
    pub fetch: Option<FetchScript>,
    /// SHA-256 of each programmer the boot ROM's secure boot accepts; empty refuses every one.
    pub accepted_programmers: Option<Vec<Sha256Digest>>,
}

/// Which partitions `fetch:` may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchScript {
    /// Any partition (a factory bootloader).
    All,
    /// No `fetch` command at all (many production bootloaders).
    None,
    /// Only these names, exactly as the host sends them (`system_a`).
    Only(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BootloaderEntry {
    #[serde(default)]
    max_download_size: Option<Value>,
    #[serde(default)]
    max_fetch_size: Option<Value>,
    #[serde(default)]
    fetch: Option<Value>,
    #[serde(default)]
    accepted_programmers: Option<Value>,
}

/// The `bootloader:` of the phone on `slot` (`swapped`: the phone swapped in there), at `at`.
pub(super) fn bootloader_of(
    doc: &YamlDocument,
    at: &KeyPath,
    slot: SlotNumber,
    swapped: bool,
    entry: BootloaderEntry,
) -> Result<BootloaderScript, ConfigError> {
    let phone = if swapped {
        format!("the phone swapped in on slot {slot}")
    } else {
        format!("the phone on slot {slot}")
    };
    let refuse = |key: &str, problem: String, fix: &str| {
        doc.error_at(&at.clone().key(key), format!("{phone}: {problem}"), fix)
    };
    let limit = |key: &str, value: Option<Value>| -> Result<Option<u32>, ConfigError> {
        value
            .map(|v| transfer_limit(&v).map_err(|problem| refuse(key, problem, LIMIT_FIX)))
            .transpose()
    };
    let max_download_size = limit("max_download_size", entry.max_download_size)?;
    let max_fetch_size = limit("max_fetch_size", entry.max_fetch_size)?;
    let fetch = entry
        .fetch
        .map(|v| fetch_of(&v).map_err(|problem| refuse("fetch", problem, FETCH_FIX)))
        .transpose()?;
    if fetch == Some(FetchScript::None) && max_fetch_size.is_some() {
        return Err(refuse(
            "max_fetch_size",
            "a bootloader without `fetch` publishes no max-fetch-size".into(),
            "remove `max_fetch_size`, or let `fetch` read some partitions",
        ));
    }
    let accepted_programmers = match entry.accepted_programmers {
        None => None,
        Some(v) => Some(programmers_of(&v).map_err(|(index, problem)| {
            let key = match index {
                Some(i) => at.clone().key("accepted_programmers").index(i),
                None => at.clone().key("accepted_programmers"),
            };
            doc.error_at(&key, format!("{phone}: {problem}"), PROGRAMMERS_FIX)
        })?),
    };
    Ok(BootloaderScript {
        max_download_size,
        max_fetch_size,
        fetch,
        accepted_programmers,
    })
}

const LIMIT_FIX: &str = "write a byte size from 4K to 4G - 1, e.g. `256M` or `0x10000000`";
const FETCH_FIX: &str =
    "write `fetch: all` (a factory bootloader), `fetch: none` (no `fetch` command) or the \
     partitions it reads, with their slot suffix: `fetch: [system_a, system_b]`";
const PROGRAMMERS_FIX: &str =
    "list the SHA-256 of each programmer the phone accepts, as `sha256sum` prints it \
     (`[]` refuses every programmer)";

/// A byte size as a number or text (`256M`), within what fastboot can announce.
fn transfer_limit(value: &Value) -> Result<u32, String> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err("not a byte size".into()),
    };
    let bytes = parse_byte_size(&text)?;
    if !(MIN_TRANSFER_LIMIT..=MAX_TRANSFER_LIMIT).contains(&bytes) {
        return Err(format!(
            "{bytes} bytes is outside 4 KiB to 4 GiB - 1 (fastboot announces sizes in 8 hex \
             digits, and no image piece fits in less than a block)"
        ));
    }
    u32::try_from(bytes).map_err(|_| format!("{bytes} bytes does not fit in 32 bits"))
}

fn fetch_of(value: &Value) -> Result<FetchScript, String> {
    match value {
        Value::String(word) if word == "all" => Ok(FetchScript::All),
        Value::String(word) if word == "none" => Ok(FetchScript::None),
        Value::String(word) => Err(format!(
            "`{word}` is neither `all`, `none` nor a list of partitions"
        )),
        Value::Sequence(items) if items.is_empty() => {
            Err("`[]` lists no partition; a bootloader that reads none has no `fetch`".into())
        }
        Value::Sequence(items) if items.len() > MAX_FETCH_NAMES => Err(format!(
            "{} partitions; a bootloader's list holds at most {MAX_FETCH_NAMES} (or write `all`)",
            items.len()
        )),
        Value::Sequence(items) => items
            .iter()
            .map(|item| match item {
                Value::String(name) if is_partition_name(name) => Ok(name.clone()),
                Value::String(name) => Err(format!("`{name}` is not a partition name")),
                _ => Err("a list of partitions holds names only".into()),
            })
            .collect::<Result<_, _>>()
            .map(FetchScript::Only),
        _ => Err("not `all`, `none` or a list of partitions".into()),
    }
}

/// A name `fetch:NAME` can carry: no separator of the command and no spaces.
fn is_partition_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The digests, or the index of the entry that is not one (`None`: the value is no list).
fn programmers_of(value: &Value) -> Result<Vec<Sha256Digest>, (Option<usize>, String)> {
    let Value::Sequence(items) = value else {
        return Err((None, "not a list of SHA-256 digests".into()));
    };
    if items.len() > MAX_ACCEPTED_PROGRAMMERS {
        return Err((
            None,
            format!(
                "{} programmers; a phone accepts at most {MAX_ACCEPTED_PROGRAMMERS}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::String(text) = item else {
                return Err((Some(i), "not a SHA-256 in hex".into()));
            };
            Sha256Digest::parse(text)
                .map_err(|e| (Some(i), format!("`{text}` is not a SHA-256 ({e})")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PhonesFile;

    fn load(text: &str) -> Result<PhonesFile, ConfigError> {
        PhonesFile::from_document(YamlDocument::from_text("/line/phones.yaml", text))
    }

    /// The `bootloader:` of a fastboot phone on slot 3.
    fn bootloader(yaml: &str) -> Result<BootloaderScript, String> {
        load(&format!("phones:\n  - slot: 3\n    bootloader: {yaml}\n"))
            .map(|f| f.phones[0].bootloader.clone())
            .map_err(|e| e.to_string())
    }

    const SIGNED: &str = "4f1d2b7c1e9d1cbe0aa6f3d1c2b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6";

    #[test]
    fn each_setting_is_read_and_what_is_left_out_stays_the_rigs() {
        assert_eq!(bootloader("{}").unwrap(), BootloaderScript::default());
        let none = load("phones:\n  - slot: 1\n").unwrap();
        assert_eq!(none.phones[0].bootloader, BootloaderScript::default());

        let production = bootloader(&format!(
            "{{ max_download_size: 128M, fetch: none, accepted_programmers: [{}] }}",
            SIGNED.to_uppercase()
        ))
        .unwrap();
        assert_eq!(production.max_download_size, Some(128 << 20));
        assert_eq!(production.fetch, Some(FetchScript::None));
        assert_eq!(
            production.accepted_programmers,
            Some(vec![Sha256Digest::parse(SIGNED).unwrap()])
        );
        assert_eq!(production.max_fetch_size, None);

        let factory =
            bootloader("{ max_download_size: 0x1000, max_fetch_size: 4294967295, fetch: all }")
                .unwrap();
        assert_eq!(factory.max_download_size, Some(4096));
        assert_eq!(factory.max_fetch_size, Some(u32::MAX));
        assert_eq!(factory.fetch, Some(FetchScript::All));

        let listed =
            bootloader("{ fetch: [system_a, vendor_boot-b.1], accepted_programmers: [] }").unwrap();
        assert_eq!(
            listed.fetch,
            Some(FetchScript::Only(vec![
                "system_a".into(),
                "vendor_boot-b.1".into()
            ]))
        );
        assert_eq!(listed.accepted_programmers, Some(Vec::new()));
    }

    /// `KEY: VALUE | what the refusal says`, one bad value a line.
    const BAD_VALUES: &str = "\
        max_download_size: lots         | `lots` is not a byte count
        max_download_size: 4G           | 4294967296 bytes is outside 4 KiB to 4 GiB - 1
        max_download_size: 4095         | 4095 bytes is outside
        max_download_size: -1           | `-1` is not a byte count
        max_download_size: [1]          | not a byte size
        max_fetch_size: 0               | 0 bytes is outside
        fetch: some                     | `some` is neither `all`, `none`
        fetch: []                       | lists no partition
        fetch: [\"system a\"]            | `system a` is not a partition name
        fetch: [\"fetch:boot\"]          | `fetch:boot` is not a partition name
        fetch: [[a]]                    | names only
        fetch: 3                        | not `all`, `none` or a list
        accepted_programmers: abc       | not a list of SHA-256
        accepted_programmers: [abc]     | `abc` is not a SHA-256 (expected 64 hex digits
        accepted_programmers: [0, 1]    | not a SHA-256 in hex";

    #[test]
    fn each_bad_value_names_the_slot_the_key_and_what_to_write() {
        for case in BAD_VALUES.lines() {
            let (value, says) = case.split_once('|').unwrap();
            let (value, says) = (value.trim(), says.trim());
            let key = value.split(':').next().unwrap();
            let e = bootloader(&format!("{{ {value} }}")).unwrap_err();
            assert!(e.contains("/line/phones.yaml:3"), "{value}: {e}");
            assert!(e.contains(&format!("phones[0].bootloader.{key}")), "{e}");
            assert!(e.contains("the phone on slot 3: "), "{value}: {e}");
            assert!(e.contains(says), "{value}: {e}");
        }
        let e = bootloader("{ accepted_programmers: [0, 1] }").unwrap_err();
        assert!(e.contains("bootloader.accepted_programmers[0]"), "{e}");
        let e = bootloader("{ fetch: none, max_fetch_size: 1M }").unwrap_err();
        assert!(e.contains("phones[0].bootloader.max_fetch_size"), "{e}");
        assert!(
            e.contains("without `fetch` publishes no max-fetch-size"),
            "{e}"
        );
        let e =
            bootloader(&format!("{{ fetch: [{}] }}", vec!["boot_a"; 65].join(", "))).unwrap_err();
        assert!(
            e.contains("65 partitions") && e.contains("at most 64"),
            "{e}"
        );
        let e = bootloader(&format!(
            "{{ accepted_programmers: [{}] }}",
            vec![SIGNED; 17].join(", ")
        ))
        .unwrap_err();
        assert!(
            e.contains("17 programmers") && e.contains("at most 16"),
            "{e}"
        );
        assert!(e.contains("sha256sum"), "{e}");
    }

    #[test]
    fn unknown_keys_and_a_swapped_in_phones_mistakes_are_placed() {
        let e = bootloader("{ max_upload_size: 1M }").unwrap_err();
        assert!(e.contains("/line/phones.yaml:3"), "{e}");
        assert!(
            e.contains("max_upload_size") && e.contains("max_download_size"),
            "{e}"
        );

        let e = load(
            "phones:\n  - slot: 5\n    swap_at_next_reboot:\n      bootloader: { fetch: maybe }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/line/phones.yaml:4"), "{e}");
        assert!(
            e.contains("phones[0].swap_at_next_reboot.bootloader.fetch"),
            "{e}"
        );
        assert!(e.contains("the phone swapped in on slot 5"), "{e}");
    }
}
