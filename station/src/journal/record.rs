//! What the orchestrator tells the journal about one unit attempt.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::VerifyMethod;
use crate::digest::Sha256Digest;
use crate::mode::Mode;
use crate::verdict::Verdict;

/// Row id of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AttemptId(pub i64);

/// Known when a unit is detected on a slot.
#[derive(Debug, Clone)]
pub struct AttemptStart {
    pub slot: u16,
    pub port_path: String,
    pub station_id: String,
    pub work_order: String,
    pub work_order_quantity: u32,
    pub product: String,
    pub region: String,
    pub build_id: String,
    pub manifest_sha256: Sha256Digest,
    pub tool_version: String,
    pub log_path: Option<PathBuf>,
    pub started_at: SystemTime,
}

/// Phases whose start or end time is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    FlashStarted,
    FlashDone,
    VerifyStarted,
    VerifyDone,
}

impl Phase {
    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::FlashStarted => "flash_started_at_ms",
            Self::FlashDone => "flash_done_at_ms",
            Self::VerifyStarted => "verify_started_at_ms",
            Self::VerifyDone => "verify_done_at_ms",
        }
    }
}

/// One image as it was sent to the unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSent {
    /// Partition written, with slot suffix if any (`system_a`), or the rawprogram label.
    pub partition: String,
    /// Manifest key of the file.
    pub file: String,
    /// SHA-256 of the bytes actually streamed.
    #[serde(with = "digest_hex")]
    pub sha256: Sha256Digest,
    pub bytes: u64,
}

/// The end of an attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub verdict: Verdict,
    pub images_sent: Vec<ImageSent>,
    pub activation_sha256_found: Option<Sha256Digest>,
    pub verify_method: Option<VerifyMethod>,
    /// Bytes read back from the unit to verify it.
    pub verify_bytes_read: Option<u64>,
    pub finished_at: SystemTime,
}

/// When each phase happened (unset: the attempt never reached it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    pub identified: Option<SystemTime>,
    pub flash_started: Option<SystemTime>,
    pub flash_done: Option<SystemTime>,
    pub verify_started: Option<SystemTime>,
    pub verify_done: Option<SystemTime>,
}

/// A whole attempt, written at once by [`super::Journal::record`].
#[derive(Debug, Clone)]
pub struct CompletedAttempt {
    pub start: AttemptStart,
    /// None when the unit failed before its serial was read.
    pub serial: Option<String>,
    pub mode: Option<Mode>,
    pub phases: PhaseTimes,
    pub outcome: AttemptOutcome,
}

/// What the journal knows after a verdict is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedAttempt {
    pub id: AttemptId,
    /// Other work orders under which this serial already PASSED (the row is flagged).
    pub passed_under_other_work_orders: Vec<String>,
}

pub(crate) fn millis(at: SystemTime) -> i64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) mod digest_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::digest::Sha256Digest;

    pub fn serialize<S: Serializer>(digest: &Sha256Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&digest.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Sha256Digest, D::Error> {
        let text = String::deserialize(d)?;
        Sha256Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}
