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
    /// The production line the station stands on (station.yaml `line`), when it names one.
    pub line: Option<String>,
    pub work_order: String,
    pub work_order_quantity: u32,
    pub product: String,
    pub region: String,
    pub build_id: String,
    pub manifest_sha256: Sha256Digest,
    pub tool_version: String,
    pub log_path: Option<PathBuf>,
    pub started_at: SystemTime,
    /// Who runs the station, when known.
    pub operator: Option<String>,
    /// The pinned key that verified the manifest's signature (`name (key id ID)`).
    pub manifest_signed_by: Option<String>,
    /// The station ran in engineering mode (manifest signatures not enforced).
    pub engineering_mode: bool,
}

/// The moments of an attempt the journal keeps a time for. They are not a second vocabulary of
/// phases: the job derives them from the unit's phases (`events::Phase`) as they change
/// ([`Milestone::reached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    FlashStarted,
    FlashDone,
    VerifyStarted,
    VerifyDone,
}

impl Milestone {
    /// The milestones passed when a unit whose milestones so far are `passed` leaves
    /// `previous` for `phase`: flashing starts with its first flash (or patch) step and is done
    /// whenever a step that is not flashing follows one that is (the last time counts: a
    /// fastbootd plan flashes before and after a reboot); verification starts with its step.
    pub fn reached(
        passed: &[Milestone],
        previous: Option<&crate::events::Phase>,
        phase: &crate::events::Phase,
    ) -> Vec<Milestone> {
        use crate::events::Phase;
        let flashing = |p: &Phase| matches!(p, Phase::Flash { .. } | Phase::Patch);
        let mut now = Vec::new();
        if flashing(phase) {
            if !passed.contains(&Self::FlashStarted) {
                now.push(Self::FlashStarted);
            }
            return now;
        }
        if previous.is_some_and(flashing) {
            now.push(Self::FlashDone);
        }
        if matches!(phase, Phase::Verify { .. }) && !passed.contains(&Self::VerifyStarted) {
            now.push(Self::VerifyStarted);
        }
        now
    }

    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::FlashStarted => "flash_started_at_ms",
            Self::FlashDone => "flash_done_at_ms",
            Self::VerifyStarted => "verify_started_at_ms",
            Self::VerifyDone => "verify_done_at_ms",
        }
    }
}

#[cfg(test)]
mod milestone_tests {
    use super::Milestone::{self, *};
    use crate::events::Phase;

    fn walk(phases: &[Phase]) -> Vec<(usize, Milestone)> {
        let mut passed = Vec::new();
        let mut at = Vec::new();
        for (i, phase) in phases.iter().enumerate() {
            for m in Milestone::reached(&passed, i.checked_sub(1).map(|p| &phases[p]), phase) {
                passed.push(m);
                at.push((i, m));
            }
        }
        at
    }

    #[test]
    fn milestones_follow_the_phases_once_each() {
        let flash = |p: &str| Phase::Flash {
            partition: p.into(),
        };
        let verify = Phase::Verify { what: "x".into() };
        // fastboot: identify, two partitions, set_active, reboot, identify, verify.
        let fastboot = [
            Phase::Identify,
            flash("boot_a"),
            flash("system_a"),
            Phase::SetActive {
                slot_suffix: "_a".into(),
            },
            Phase::Reboot,
            Phase::Identify,
            verify.clone(),
        ];
        assert_eq!(
            walk(&fastboot),
            vec![(1, FlashStarted), (3, FlashDone), (6, VerifyStarted)]
        );
        // EDL: program and patch, reset, back as fastboot, verify; no flash: no flash times.
        let edl = [
            Phase::UploadProgrammer,
            flash("rawprogram0.xml"),
            Phase::Patch,
            Phase::Reboot,
            verify.clone(),
        ];
        assert_eq!(
            walk(&edl),
            vec![(1, FlashStarted), (3, FlashDone), (4, VerifyStarted)]
        );
        assert_eq!(
            walk(&[Phase::Identify, verify.clone()]),
            vec![(1, VerifyStarted)]
        );
        // fastbootd: boot in the bootloader, reboot, system in fastbootd: flashing is done
        // after the last flash.
        let fastbootd = [
            flash("boot_a"),
            Phase::Reboot,
            Phase::Identify,
            flash("system_a"),
            Phase::Reboot,
            verify,
        ];
        assert_eq!(
            walk(&fastbootd),
            vec![
                (0, FlashStarted),
                (1, FlashDone),
                (4, FlashDone),
                (5, VerifyStarted)
            ]
        );
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
    /// The build id read back from the phone (`ro.build.display.id`), when it was read.
    pub build_id_found: Option<String>,
    pub verify_method: Option<VerifyMethod>,
    /// Bytes read back from the unit to verify it.
    pub verify_bytes_read: Option<u64>,
    pub finished_at: SystemTime,
}

/// When each milestone was passed (unset: the attempt never reached it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MilestoneTimes {
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
    pub phases: MilestoneTimes,
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
