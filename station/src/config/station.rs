//! `station.yaml`: which station this is, which USB port is which slot, limits, where the
//! journal, logs and images live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, KeyPath};
use super::names::check_identifier;
use super::yaml::YamlDocument;
use crate::mode::Mode;
use crate::trust::manifest_signature::TrustedKey;

/// A station, validated. Paths are absolute (relative ones in the file are taken from the
/// directory holding `station.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct StationConfig {
    pub source: PathBuf,
    pub station_id: String,
    /// The production line the station stands on, recorded with every attempt so reports
    /// group and filter by line (`report --line`); none: attempts record no line.
    pub line: Option<String>,
    pub slots: Vec<SlotConfig>,
    pub limits: Limits,
    pub journal: PathBuf,
    pub log_dir: PathBuf,
    /// Canonical path of the folder every manifest path is relative to.
    pub image_root: PathBuf,
    /// Folder holding `<product>.yaml` manifests.
    pub products_dir: PathBuf,
    /// Consecutive failures with the same code after which the operator's screen says to stop
    /// the line (a run of one cause is a config or image problem, not the phones); 0 turns the
    /// banner off.
    pub stop_line_after: u32,
    /// Who runs the station, recorded with every attempt (`--operator` overrides it).
    pub operator: Option<String>,
    /// How long and how much of the logs in `log_dir` are kept.
    pub log_retention: LogRetention,
    /// The public keys whose minisign signature makes a product manifest trusted.
    pub trusted_manifest_keys: Vec<TrustedKey>,
    /// Engineering mode: a manifest without a valid signature by a pinned key is used anyway,
    /// loudly, and every attempt records it. Never on a production line (`run --engineering`
    /// turns it on for one run).
    pub engineering_mode: bool,
    /// The key the station signs each PASS's unit proof with; none: no proofs.
    pub station_key: Option<StationKey>,
    /// The fleet database this station ships its journal to, if any.
    pub fleet: Option<super::fleet::FleetConfig>,
}

/// The station's signing key as station.yaml names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationKey {
    /// The minisign public key (base64 line), pinned: the secret key must be its pair.
    pub public_key: String,
    /// The minisign secret key file (absolute).
    pub secret_key_file: PathBuf,
}

/// The stop-line banner's default: three units in a row failing the same way.
pub const DEFAULT_STOP_LINE_AFTER: u32 = 3;

/// Bounds on the logs a station keeps (daily JSON files and per-unit logs, by day); the oldest
/// days go first. `None` is no bound of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    /// Days of logs kept, today included.
    pub max_age_days: Option<u32>,
    /// Total bytes of logs kept.
    pub max_total_bytes: Option<u64>,
}

impl Default for LogRetention {
    fn default() -> Self {
        Self {
            max_age_days: Some(DEFAULT_LOG_MAX_AGE_DAYS),
            max_total_bytes: Some(DEFAULT_LOG_MAX_TOTAL_MIB << 20),
        }
    }
}

pub const DEFAULT_LOG_MAX_AGE_DAYS: u32 = 90;
pub const DEFAULT_LOG_MAX_TOTAL_MIB: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotConfig {
    pub slot: u16,
    pub binding: SlotBinding,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotBinding {
    /// A physical USB port path as Linux names it, e.g. `1-4.2` (bus 1, port 4, hub port 2).
    UsbPort(String),
    /// A simulated phone in the given mode (demo, training, tests).
    Simulated(Mode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub parallel_slots: u16,
    pub timeouts: Timeouts,
    pub retries: Retries,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// One command and its response (fastboot getvar, Firehose nop…).
    pub command: Duration,
    /// From detection to a known identity.
    pub identify: Duration,
    /// One partition (or one rawprogram file) written.
    pub flash_partition: Duration,
    /// The whole verification of one unit.
    pub verify: Duration,
    /// A unit re-appearing on its port after reboot or mode change.
    pub reenumerate: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retries {
    /// Extra identify attempts after a timeout or disconnect before the unit fails.
    pub identify: u8,
    /// Extra attempts of a partition write that failed with a transport error.
    pub flash_partition: u8,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(30),
            identify: Duration::from_secs(60),
            flash_partition: Duration::from_secs(600),
            verify: Duration::from_secs(300),
            reenumerate: Duration::from_secs(90),
        }
    }
}

impl Default for Retries {
    fn default() -> Self {
        Self {
            identify: 2,
            flash_partition: 1,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StationFile {
    station_id: String,
    #[serde(default)]
    line: Option<String>,
    image_root: PathBuf,
    #[serde(default)]
    products_dir: Option<PathBuf>,
    journal: PathBuf,
    log_dir: PathBuf,
    #[serde(default)]
    log_retention: LogRetentionFile,
    limits: LimitsFile,
    slots: Vec<SlotFile>,
    #[serde(default)]
    stop_line_after: Option<u32>,
    #[serde(default)]
    operator: Option<String>,
    #[serde(default)]
    trusted_manifest_keys: Vec<TrustedKeyFile>,
    #[serde(default)]
    engineering_mode: bool,
    #[serde(default)]
    station_key: Option<StationKeyFile>,
    #[serde(default)]
    fleet: Option<super::fleet::FleetFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedKeyFile {
    name: String,
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StationKeyFile {
    public_key: String,
    secret_key_file: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogRetentionFile {
    max_age_days: Option<u32>,
    max_total_mib: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    parallel_slots: u16,
    #[serde(default)]
    timeouts: TimeoutsFile,
    #[serde(default)]
    retries: RetriesFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TimeoutsFile {
    command_secs: Option<u64>,
    identify_secs: Option<u64>,
    flash_partition_secs: Option<u64>,
    verify_secs: Option<u64>,
    reenumerate_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetriesFile {
    identify: Option<u8>,
    flash_partition: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotFile {
    slot: u16,
    #[serde(default)]
    port: Option<String>,
    #[serde(default)]
    simulated: Option<Mode>,
}

fn validate_trusted_keys(
    doc: &YamlDocument,
    keys: &[TrustedKeyFile],
) -> Result<Vec<TrustedKey>, ConfigError> {
    let mut trusted: Vec<TrustedKey> = Vec::with_capacity(keys.len());
    for (index, entry) in keys.iter().enumerate() {
        let at = |field: &str| {
            KeyPath::of(&["trusted_manifest_keys"])
                .index(index)
                .key(field)
        };
        check_identifier(&entry.name).map_err(|problem| {
            doc.error_at(
                &at("name"),
                problem,
                "name the key after whoever holds its secret half, e.g. `release-2025`",
            )
        })?;
        let key = TrustedKey::parse(&entry.name, &entry.public_key).map_err(|problem| {
            doc.error_at(
                &at("public_key"),
                problem,
                "paste the second line of the release's minisign.pub (`RW…`)",
            )
        })?;
        if let Some(other) = trusted
            .iter()
            .find(|k| k.name == key.name || k.key_id == key.key_id)
        {
            return Err(doc.error_at(
                &at("name"),
                format!(
                    "key {} (key id {}) repeats key {} (key id {})",
                    key.name, key.key_id, other.name, other.key_id
                ),
                "pin each key once, under a name of its own",
            ));
        }
        trusted.push(key);
    }
    Ok(trusted)
}

/// The packaged service reads its station file here (`ConfigurationDirectory=flashgate`)...
pub const PACKAGED_CONFIG_DIR: &str = "/etc/flashgate";
/// ...and may write only here (`StateDirectory=` and `LogsDirectory=flashgate`).
pub const PACKAGED_STATE_DIR: &str = "/var/lib/flashgate";
pub const PACKAGED_LOGS_DIR: &str = "/var/log/flashgate";

/// Where relative `journal` and `log_dir` paths start: the station file's folder, except for a
/// station file in the packaged configuration folder, which the service may not write (and
/// which is no place for a database): its relative journal lands in the state folder and its
/// relative logs in the logs folder. Decided by the file's place, not by the environment, so
/// the service, `report`, `history` and `dashboard` run by hand all find the same journal.
pub fn state_bases(file_dir: &Path) -> (PathBuf, PathBuf) {
    let packaged = file_dir
        .canonicalize()
        .unwrap_or_else(|_| file_dir.to_path_buf())
        .starts_with(PACKAGED_CONFIG_DIR);
    if packaged {
        (PACKAGED_STATE_DIR.into(), PACKAGED_LOGS_DIR.into())
    } else {
        (file_dir.to_path_buf(), file_dir.to_path_buf())
    }
}

/// A longer run of one failure code than this is not an early warning any more.
const MAX_STOP_LINE_AFTER: u32 = 1000;

/// An operator id as the journal stores it: printable, one line, short enough for a badge.
pub fn check_operator(id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err("the operator id is empty".into());
    }
    if id.chars().count() > 64 {
        return Err(format!("operator id `{id}` is longer than 64 characters"));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err("the operator id holds a control character".into());
    }
    Ok(())
}

/// The most slots one station drives; beyond this a hub's power and the usbfs budget run out.
pub const MAX_SLOTS: u16 = 64;
const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

impl StationConfig {
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::from_document(&YamlDocument::read(file)?)
    }

    /// The whole loader on the bytes of a file named `file`; arbitrary bytes give an error,
    /// never a panic (the config fuzzer's entry point).
    pub fn from_bytes(file: &Path, bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_document(&YamlDocument::from_bytes(file, bytes)?)
    }

    pub fn from_document(doc: &YamlDocument) -> Result<Self, ConfigError> {
        let raw: StationFile = doc.parse()?;
        let base = doc.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };

        check_identifier(&raw.station_id).map_err(|problem| {
            doc.error_at(
                &KeyPath::of(&["station_id"]),
                problem,
                "use letters, digits, `-`, `_` or `.`, e.g. `line3-st01`",
            )
        })?;

        if let Some(line) = &raw.line {
            check_identifier(line).map_err(|problem| {
                doc.error_at(
                    &KeyPath::of(&["line"]),
                    problem,
                    "name the production line with letters, digits, `-`, `_` or `.`, e.g. \
                     `line3` (or leave `line` out: attempts then record no line)",
                )
            })?;
        }

        let image_root_key = KeyPath::of(&["image_root"]);
        let image_root = base.join(&raw.image_root);
        let image_root = image_root.canonicalize().map_err(|e| {
            doc.error_at(
                &image_root_key,
                format!("image root {} cannot be opened: {e}", image_root.display()),
                "create the folder or correct the path (relative paths start at this file's folder)",
            )
        })?;
        if !image_root.is_dir() {
            return Err(doc.error_at(
                &image_root_key,
                format!("{} is not a folder", image_root.display()),
                "point image_root at the folder holding the image sets",
            ));
        }
        let products_dir = base.join(raw.products_dir.unwrap_or_else(|| "products".into()));

        let limits = validate_limits(doc, raw.limits)?;
        let slots = validate_slots(doc, raw.slots)?;
        let stop_line_after = raw.stop_line_after.unwrap_or(DEFAULT_STOP_LINE_AFTER);
        if stop_line_after > MAX_STOP_LINE_AFTER {
            return Err(doc.error_at(
                &KeyPath::of(&["stop_line_after"]),
                format!("{stop_line_after} is out of range"),
                format!(
                    "use 1 to {MAX_STOP_LINE_AFTER} consecutive failures with the same code, or 0 \
                     to turn the stop-line banner off"
                ),
            ));
        }
        if let Some(operator) = &raw.operator {
            check_operator(operator).map_err(|problem| {
                doc.error_at(
                    &KeyPath::of(&["operator"]),
                    problem,
                    "use the operator's badge id, e.g. `op-1042` (or leave `operator` out and \
                     pass `--operator` to `flashgate run`)",
                )
            })?;
        }
        let log_retention = validate_log_retention(doc, &raw.log_retention)?;
        let trusted_manifest_keys = validate_trusted_keys(doc, &raw.trusted_manifest_keys)?;
        let station_key = match raw.station_key {
            None => None,
            Some(key) => {
                crate::trust::station_key::parse_public_key(&key.public_key).map_err(|e| {
                    doc.error_at(
                        &KeyPath::of(&["station_key", "public_key"]),
                        e.to_string(),
                        "paste the second line of the .pub file `flashgate station keygen` wrote",
                    )
                })?;
                Some(StationKey {
                    public_key: key.public_key.trim().to_string(),
                    secret_key_file: base.join(key.secret_key_file),
                })
            }
        };
        let fleet = raw
            .fleet
            .map(|fleet| super::fleet::validate_fleet(doc, &base, fleet))
            .transpose()?;
        Ok(Self {
            source: doc.file.clone(),
            station_id: raw.station_id,
            line: raw.line,
            slots,
            limits,
            journal: state_bases(&base).0.join(raw.journal),
            log_dir: state_bases(&base).1.join(raw.log_dir),
            image_root,
            products_dir,
            stop_line_after,
            operator: raw.operator,
            log_retention,
            trusted_manifest_keys,
            engineering_mode: raw.engineering_mode,
            station_key,
            fleet,
        })
    }

    /// The station as a run of simulated phones standing in for its slots (`run --sim N`) uses
    /// it: its own journal beside the production one (`journal.sqlite` → `journal.sim.sqlite`)
    /// and its logs in `<log_dir>/sim`, so `report` and `history` on the production journal
    /// never count a fake unit.
    ///
    /// Its passes are not signed: a unit proof states what a real unit got, and a station's key
    /// must never vouch for a simulated phone (whose serial may be a real unit's).
    pub fn for_simulated_phones(&self) -> Self {
        Self {
            journal: simulated_journal_path(&self.journal),
            log_dir: self.log_dir.join("sim"),
            station_key: None,
            ..self.clone()
        }
    }

    /// Where the manifest of `product` lives.
    pub fn product_manifest_path(&self, product: &str) -> PathBuf {
        self.products_dir.join(format!("{product}.yaml"))
    }

    pub fn slot_for_port(&self, port_path: &str) -> Option<u16> {
        self.slots.iter().find_map(|s| match &s.binding {
            SlotBinding::UsbPort(p) if p == port_path => Some(s.slot),
            _ => None,
        })
    }
}

fn validate_limits(doc: &YamlDocument, raw: LimitsFile) -> Result<Limits, ConfigError> {
    let key = KeyPath::of(&["limits", "parallel_slots"]);
    if raw.parallel_slots == 0 || raw.parallel_slots > MAX_SLOTS {
        return Err(doc.error_at(
            &key,
            format!("{} is out of range", raw.parallel_slots),
            format!("use 1 to {MAX_SLOTS}"),
        ));
    }
    let defaults = Timeouts::default();
    let t = raw.timeouts;
    let secs = |name: &str, value: Option<u64>, default: Duration| {
        let Some(value) = value else {
            return Ok(default);
        };
        if value == 0 || value > MAX_TIMEOUT_SECS {
            return Err(doc.error_at(
                &KeyPath::of(&["limits", "timeouts", name]),
                format!("{value} s is out of range"),
                format!("use 1 to {MAX_TIMEOUT_SECS} seconds"),
            ));
        }
        Ok(Duration::from_secs(value))
    };
    let timeouts = Timeouts {
        command: secs("command_secs", t.command_secs, defaults.command)?,
        identify: secs("identify_secs", t.identify_secs, defaults.identify)?,
        flash_partition: secs(
            "flash_partition_secs",
            t.flash_partition_secs,
            defaults.flash_partition,
        )?,
        verify: secs("verify_secs", t.verify_secs, defaults.verify)?,
        reenumerate: secs("reenumerate_secs", t.reenumerate_secs, defaults.reenumerate)?,
    };
    let default_retries = Retries::default();
    let retries = Retries {
        identify: raw.retries.identify.unwrap_or(default_retries.identify),
        flash_partition: raw
            .retries
            .flash_partition
            .unwrap_or(default_retries.flash_partition),
    };
    Ok(Limits {
        parallel_slots: raw.parallel_slots,
        timeouts,
        retries,
    })
}

/// 0 turns a bound off; sizes are MiB, at most 16 TiB.
fn validate_log_retention(
    doc: &YamlDocument,
    raw: &LogRetentionFile,
) -> Result<LogRetention, ConfigError> {
    const MAX_MIB: u64 = 16 << 20;
    let max_total_mib = raw.max_total_mib.unwrap_or(DEFAULT_LOG_MAX_TOTAL_MIB);
    if max_total_mib > MAX_MIB {
        return Err(doc.error_at(
            &KeyPath::of(&["log_retention", "max_total_mib"]),
            format!("{max_total_mib} MiB is out of range"),
            format!("use 1 to {MAX_MIB} MiB, or 0 for no size bound"),
        ));
    }
    let max_age_days = raw.max_age_days.unwrap_or(DEFAULT_LOG_MAX_AGE_DAYS);
    Ok(LogRetention {
        max_age_days: (max_age_days > 0).then_some(max_age_days),
        max_total_bytes: (max_total_mib > 0).then_some(max_total_mib << 20),
    })
}

fn validate_slots(doc: &YamlDocument, raw: Vec<SlotFile>) -> Result<Vec<SlotConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(doc.error_at(
            &KeyPath::of(&["slots"]),
            "no slots are listed",
            "add one entry per USB port: `- { slot: 1, port: \"1-4.1\" }` (`flashgate ports` prints them)",
        ));
    }
    let mut by_number: BTreeMap<u16, usize> = BTreeMap::new();
    let mut by_port: BTreeMap<String, u16> = BTreeMap::new();
    let mut slots = Vec::with_capacity(raw.len());
    for (index, entry) in raw.into_iter().enumerate() {
        let key = KeyPath::of(&["slots"]).index(index);
        if entry.slot == 0 || entry.slot > MAX_SLOTS {
            return Err(doc.error_at(
                &key.clone().key("slot"),
                format!("slot number {} is out of range", entry.slot),
                format!("number slots 1 to {MAX_SLOTS}, as labelled on the hub"),
            ));
        }
        if let Some(first) = by_number.insert(entry.slot, index) {
            return Err(doc.error_at(
                &key.clone().key("slot"),
                format!("slot {} is listed twice (also slots[{first}])", entry.slot),
                "give every slot its own number",
            ));
        }
        let binding = match (entry.port, entry.simulated) {
            (Some(port), None) => {
                check_port_path(&port).map_err(|problem| {
                    doc.error_at(
                        &key.clone().key("port"),
                        problem,
                        "copy the port path `flashgate ports` prints, e.g. `1-4.2`",
                    )
                })?;
                if let Some(other) = by_port.insert(port.clone(), entry.slot) {
                    return Err(doc.error_at(
                        &key.clone().key("port"),
                        format!("port {port} is already slot {other}"),
                        "each USB port belongs to one slot",
                    ));
                }
                SlotBinding::UsbPort(port)
            }
            (None, Some(mode)) => SlotBinding::Simulated(mode),
            (Some(_), Some(_)) => {
                return Err(doc.error_at(
                    &key,
                    format!("slot {} has both `port` and `simulated`", entry.slot),
                    "keep `port` for a real USB port or `simulated: fastboot|edl` for a simulated phone",
                ))
            }
            (None, None) => {
                return Err(doc.error_at(
                    &key,
                    format!("slot {} has neither `port` nor `simulated`", entry.slot),
                    "add `port: \"1-4.2\"` (a USB port path) or `simulated: fastboot|edl`",
                ))
            }
        };
        slots.push(SlotConfig {
            slot: entry.slot,
            binding,
        });
    }
    slots.sort_by_key(|s| s.slot);
    Ok(slots)
}

/// The journal of simulated runs beside `journal`: `state/journal.sqlite` →
/// `state/journal.sim.sqlite` (`journal` → `journal.sim`).
pub fn simulated_journal_path(journal: &Path) -> PathBuf {
    let stem = journal.file_stem().unwrap_or_default().to_string_lossy();
    let name = match journal.extension() {
        Some(ext) => format!("{stem}.sim.{}", ext.to_string_lossy()),
        None => format!("{stem}.sim"),
    };
    journal.with_file_name(name)
}

/// Linux USB port paths: `<bus>-<port>[.<port>]*`, e.g. `1-4` or `3-1.4.2`.
fn check_port_path(text: &str) -> Result<(), String> {
    let bad = || format!("`{text}` is not a USB port path");
    let (bus, ports) = text.split_once('-').ok_or_else(bad)?;
    let numeric = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(bus) || !ports.split('.').all(numeric) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn relative_state_paths_of_the_packaged_station_file_leave_etc() {
        use std::path::Path;
        assert_eq!(
            super::state_bases(Path::new("/etc/flashgate")),
            (
                Path::new("/var/lib/flashgate").to_path_buf(),
                Path::new("/var/log/flashgate").to_path_buf()
            )
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            super::state_bases(dir.path()),
            (dir.path().to_path_buf(), dir.path().to_path_buf())
        );
    }

    use super::*;

    fn station_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        dir
    }

    const GOOD: &str = "\
station_id: line3-st01
image_root: images
journal: state/journal.sqlite
log_dir: state/logs
limits:
  parallel_slots: 4
  timeouts:
    command_secs: 10
  retries:
    identify: 1
slots:
  - { slot: 2, port: \"1-4.2\" }
  - { slot: 1, port: \"1-4.1\" }
  - slot: 3
    simulated: edl
";

    fn load(dir: &tempfile::TempDir, text: &str) -> Result<StationConfig, ConfigError> {
        let file = dir.path().join("station.yaml");
        std::fs::write(&file, text).unwrap();
        StationConfig::load(&file)
    }

    #[test]
    fn loads_a_good_station() {
        let dir = station_dir();
        let station = load(&dir, GOOD).unwrap();
        assert_eq!(station.station_id, "line3-st01");
        assert_eq!(station.slots.len(), 3);
        assert_eq!(station.slots[0].slot, 1);
        assert_eq!(
            station.slots[0].binding,
            SlotBinding::UsbPort("1-4.1".into())
        );
        assert_eq!(station.slots[2].binding, SlotBinding::Simulated(Mode::Edl));
        assert_eq!(station.slot_for_port("1-4.2"), Some(2));
        assert_eq!(station.limits.timeouts.command, Duration::from_secs(10));
        assert_eq!(station.limits.timeouts.verify, Timeouts::default().verify);
        assert_eq!(station.limits.retries.identify, 1);
        assert_eq!(
            station.image_root,
            dir.path().join("images").canonicalize().unwrap()
        );
        assert_eq!(station.journal, dir.path().join("state/journal.sqlite"));
        assert_eq!(
            station.product_manifest_path("demo"),
            dir.path().join("products/demo.yaml")
        );
    }

    fn assert_error(error: ConfigError, line: usize, key: &str, words: &str) {
        let message = error.to_string();
        assert!(message.contains("station.yaml"), "{message}");
        assert_eq!(error.line(), Some(line), "{message}");
        assert_eq!(error.key().unwrap().to_string(), key, "{message}");
        assert!(
            message.contains(&format!(":{line}: key `{key}`")),
            "{message}"
        );
        assert!(message.contains(words), "{message}");
    }

    #[test]
    fn the_line_is_optional_and_named_like_a_station() {
        let dir = station_dir();
        assert_eq!(load(&dir, GOOD).unwrap().line, None);
        let text = GOOD.replace("image_root:", "line: line3\nimage_root:");
        assert_eq!(load(&dir, &text).unwrap().line.as_deref(), Some("line3"));
        let text = GOOD.replace("image_root:", "line: \"line 3\"\nimage_root:");
        assert_error(
            load(&dir, &text).unwrap_err(),
            2,
            "line",
            "name the production line",
        );
    }

    #[test]
    fn unknown_key_is_refused() {
        let dir = station_dir();
        let text = GOOD.replace("    identify: 1", "    identify: 1\n    flash: 3");
        assert_error(
            load(&dir, &text).unwrap_err(),
            11,
            "limits.retries.flash",
            "unknown field",
        );
    }

    #[test]
    fn bad_values_are_placed() {
        let dir = station_dir();
        let cases = [
            (
                GOOD.replace("\"1-4.1\"", "\"usb1\""),
                13,
                "slots[1].port",
                "not a USB port path",
            ),
            (
                GOOD.replace("slot: 2,", "slot: 1,"),
                13,
                "slots[1].slot",
                "listed twice",
            ),
            (
                GOOD.replace("\"1-4.1\"", "\"1-4.2\""),
                13,
                "slots[1].port",
                "already slot 2",
            ),
            (
                GOOD.replace(
                    "    simulated: edl",
                    "    simulated: edl\n    port: \"1-5\"",
                ),
                14,
                "slots[2]",
                "both",
            ),
            (
                GOOD.replace("    simulated: edl", ""),
                14,
                "slots[2]",
                "neither",
            ),
            (
                GOOD.replace("simulated: edl", "simulated: usb"),
                15,
                "slots[2].simulated",
                "unknown variant",
            ),
            (
                GOOD.replace("parallel_slots: 4", "parallel_slots: 0"),
                6,
                "limits.parallel_slots",
                "out of range",
            ),
            (
                GOOD.replace("command_secs: 10", "command_secs: 0"),
                8,
                "limits.timeouts.command_secs",
                "out of range",
            ),
            (
                GOOD.replace("line3-st01", "line 3"),
                1,
                "station_id",
                "letters, digits",
            ),
            (
                GOOD.replace("image_root: images", "image_root: nowhere"),
                2,
                "image_root",
                "cannot be opened",
            ),
            (
                GOOD.replace("journal: state/journal.sqlite\n", ""),
                1,
                "journal",
                "missing field",
            ),
            // A key given twice is placed at the second one, not at the top of the file.
            (
                GOOD.replace(
                    "log_dir: state/logs\n",
                    "log_dir: state/logs\njournal: j2\n",
                ),
                5,
                "journal",
                "duplicate field `journal`",
            ),
            (
                GOOD.replace("    identify: 1\n", "    identify: 1\n    identify: 2\n"),
                11,
                "limits.retries.identify",
                "duplicate field",
            ),
        ];
        for (text, line, key, words) in cases {
            assert_error(load(&dir, &text).unwrap_err(), line, key, words);
        }
    }

    #[test]
    fn stop_line_after_and_operator() {
        let dir = station_dir();
        let base = "station_id: st1\nimage_root: images\njournal: j.sqlite\nlog_dir: logs\n\
                    limits: { parallel_slots: 1 }\nslots:\n  - { slot: 1, simulated: fastboot }\n";
        let station = load(&dir, base).unwrap();
        assert_eq!(station.stop_line_after, DEFAULT_STOP_LINE_AFTER);
        assert_eq!(station.operator, None);
        let station = load(
            &dir,
            &format!("{base}stop_line_after: 0\noperator: op-1042\n"),
        )
        .unwrap();
        assert_eq!(station.stop_line_after, 0);
        assert_eq!(station.operator.as_deref(), Some("op-1042"));
        let error = load(&dir, &format!("{base}stop_line_after: 5000\n")).unwrap_err();
        assert_error(error, 8, "stop_line_after", "out of range");
        let error = load(&dir, &format!("{base}operator: \"  \"\n")).unwrap_err();
        assert_error(error, 8, "operator", "empty");
    }

    #[test]
    fn unreadable_file_says_so() {
        let error = StationConfig::load(Path::new("/nonexistent/station.yaml")).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/station.yaml"));
    }

    #[test]
    fn log_retention_has_defaults_and_can_be_turned_off() {
        let dir = station_dir();
        let station = load(&dir, GOOD).unwrap();
        assert_eq!(station.log_retention, LogRetention::default());
        assert_eq!(station.log_retention.max_age_days, Some(90));
        assert_eq!(station.log_retention.max_total_bytes, Some(4096 << 20));
        let text = GOOD.replace(
            "limits:",
            "log_retention:\n  max_age_days: 0\n  max_total_mib: 512\nlimits:",
        );
        let station = load(&dir, &text).unwrap();
        assert_eq!(station.log_retention.max_age_days, None);
        assert_eq!(station.log_retention.max_total_bytes, Some(512 << 20));
        let text = GOOD.replace(
            "limits:",
            "log_retention:\n  max_total_mib: 99999999\nlimits:",
        );
        assert_error(
            load(&dir, &text).unwrap_err(),
            6,
            "log_retention.max_total_mib",
            "out of range",
        );
    }

    #[test]
    fn simulated_phones_get_their_own_journal_and_logs() {
        let dir = station_dir();
        let station = load(&dir, GOOD).unwrap();
        let sim = station.for_simulated_phones();
        assert_eq!(sim.journal, dir.path().join("state/journal.sim.sqlite"));
        assert_eq!(sim.log_dir, dir.path().join("state/logs/sim"));
        assert_eq!(sim.slots, station.slots);
        // A station's key never signs for a simulated phone.
        let keyed = StationConfig {
            station_key: Some(StationKey {
                public_key: crate::trust::station_key::DEMO_PUBLIC_KEY.into(),
                secret_key_file: "k".into(),
            }),
            ..station.clone()
        };
        assert_eq!(keyed.for_simulated_phones().station_key, None);
        assert_eq!(
            simulated_journal_path(Path::new("/var/lib/fg/journal")),
            Path::new("/var/lib/fg/journal.sim")
        );
    }

    #[test]
    fn port_paths() {
        for good in ["1-4", "1-4.2", "3-1.4.2.1"] {
            assert!(check_port_path(good).is_ok(), "{good}");
        }
        for bad in ["1", "1-", "-4", "1-4.", "a-4", "1-4..2", "1-4 ", ""] {
            assert!(check_port_path(bad).is_err(), "{bad}");
        }
    }
}
