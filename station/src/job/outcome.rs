//! What one unit's job hands back, and how it reaches the journal before anyone sees it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::config::VerifyMethod;
use crate::digest::Sha256Digest;
use crate::events;
use crate::journal::{AttemptId, AttemptOutcome, ImageSent, Journal};
use crate::run::{UnitInfo, UnitOutcome, VerdictRecorder};
use crate::verdict::{Failure, FailureCode, UnitRef, Verdict};

/// The end of one unit attempt, with everything its journal row needs.
#[derive(Debug, Clone)]
pub struct UnitResult {
    /// The journal row opened when the unit was detected (None if even that failed).
    pub attempt: Option<AttemptId>,
    pub serial: Option<String>,
    pub verdict: Verdict,
    /// The verdict as the dashboard shows it (derived from `verdict`).
    pub shown: events::Verdict,
    pub images_sent: Vec<ImageSent>,
    pub activation_sha256_found: Option<Sha256Digest>,
    pub verify_method: Option<VerifyMethod>,
    pub verify_bytes_read: Option<u64>,
}

impl UnitResult {
    pub fn new(attempt: Option<AttemptId>, serial: Option<String>, verdict: Verdict) -> Self {
        let shown = events::Verdict::from(&verdict);
        UnitResult {
            attempt,
            serial,
            verdict,
            shown,
            images_sent: Vec::new(),
            activation_sha256_found: None,
            verify_method: None,
            verify_bytes_read: None,
        }
    }
}

impl UnitOutcome for UnitResult {
    fn verdict(&self) -> &events::Verdict {
        &self.shown
    }

    fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    fn internal_error(unit: &UnitInfo, message: String) -> Self {
        let failure = Failure::HostError {
            unit: UnitRef {
                slot: unit.slot,
                serial: None,
            },
            step: "the unit's job".into(),
            detail: message,
        };
        UnitResult::new(None, None, Verdict::Fail(failure))
    }
}

/// Commits verdicts to the journal (WAL, synchronous=FULL): `finish` returns only once the row
/// is on disk.
pub struct JournalRecorder {
    pub journal: Arc<Mutex<Journal>>,
}

impl VerdictRecorder<UnitResult> for JournalRecorder {
    fn record(&self, unit: &UnitInfo, outcome: &UnitResult) -> Result<(), String> {
        let Some(attempt) = outcome.attempt else {
            return Err(format!(
                "slot {}: the attempt has no journal row (it could not be opened); its verdict {} cannot be recorded",
                unit.slot,
                outcome.verdict.code().map_or("PASS", FailureCode::as_str)
            ));
        };
        let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        journal
            .finish(
                attempt,
                &AttemptOutcome {
                    verdict: outcome.verdict.clone(),
                    images_sent: outcome.images_sent.clone(),
                    activation_sha256_found: outcome.activation_sha256_found,
                    verify_method: outcome.verify_method,
                    verify_bytes_read: outcome.verify_bytes_read,
                    finished_at: SystemTime::now(),
                },
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
