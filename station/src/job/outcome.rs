//! What one unit's job hands back, and how it reaches the journal before anyone sees it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::config::VerifyMethod;
use crate::digest::Sha256Digest;
use crate::events::{Event, EventKind, EventSink};
use crate::journal::{AttemptId, AttemptOutcome, ImageSent, Journal, JournalError};
use crate::run::{Recorded, UnitInfo, UnitOutcome, VerdictRecorder};
use crate::verdict::{Failure, FailureCode, UnitRef, Verdict};

/// The end of one unit attempt, with everything its journal row needs.
#[derive(Debug, Clone)]
pub struct UnitResult {
    /// The journal row opened when the unit was detected (None if even that failed).
    pub attempt: Option<AttemptId>,
    pub serial: Option<String>,
    pub verdict: Verdict,
    pub images_sent: Vec<ImageSent>,
    pub activation_sha256_found: Option<Sha256Digest>,
    pub verify_method: Option<VerifyMethod>,
    pub verify_bytes_read: Option<u64>,
}

impl UnitResult {
    pub fn new(attempt: Option<AttemptId>, serial: Option<String>, verdict: Verdict) -> Self {
        UnitResult {
            attempt,
            serial,
            verdict,
            images_sent: Vec::new(),
            activation_sha256_found: None,
            verify_method: None,
            verify_bytes_read: None,
        }
    }
}

impl UnitOutcome for UnitResult {
    fn verdict(&self) -> &Verdict {
        &self.verdict
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
        // The job registered its journal row before it could crash: the row gets the verdict.
        UnitResult::new(
            unit.record_id().map(AttemptId),
            None,
            Verdict::Fail(failure),
        )
    }
}

/// Commits verdicts to the journal (WAL, synchronous=FULL): `finish` returns only once the row
/// is on disk. A journal that is busy (another program holding its lock) is tried again for a
/// while, loudly; a verdict is never shown that is not written.
pub struct JournalRecorder {
    pub journal: Arc<Mutex<Journal>>,
    /// The work order whose passed units are counted after each verdict.
    pub work_order: String,
    /// How long a verdict waits for a journal that does not answer before the batch stops.
    pub patience: Duration,
    pub events: Arc<dyn EventSink>,
}

impl VerdictRecorder<UnitResult> for JournalRecorder {
    fn record(&self, unit: &UnitInfo, outcome: &UnitResult) -> Result<Recorded, String> {
        let Some(attempt) = outcome.attempt else {
            return Err(format!(
                "slot {}: the attempt has no journal row (it could not be opened); its verdict {} cannot be recorded",
                unit.slot,
                outcome.verdict.code().map_or("PASS", FailureCode::as_str)
            ));
        };
        let row = AttemptOutcome {
            verdict: outcome.verdict.clone(),
            images_sent: outcome.images_sent.clone(),
            activation_sha256_found: outcome.activation_sha256_found,
            verify_method: outcome.verify_method,
            verify_bytes_read: outcome.verify_bytes_read,
            finished_at: SystemTime::now(),
        };
        let started = Instant::now();
        let mut warned = false;
        loop {
            let written = {
                let mut journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
                journal
                    .finish(attempt, &row)
                    .and_then(|_| journal.units_passed(&self.work_order))
            };
            match written {
                Ok(units_passed) => {
                    crate::metrics::record_commit(unit.slot, started.elapsed());
                    if warned {
                        self.events.emit(Event::now(EventKind::Warning {
                            slot: Some(unit.slot),
                            message: format!(
                                "slot {}: journal answers again; verdict written after {:.0} s",
                                unit.slot,
                                started.elapsed().as_secs_f64()
                            ),
                        }));
                    }
                    return Ok(Recorded {
                        units_passed: Some(units_passed),
                    });
                }
                Err(e) if is_busy(&e) && started.elapsed() < self.patience => {
                    if !warned {
                        warned = true;
                        self.events.emit(Event::now(EventKind::Warning {
                            slot: Some(unit.slot),
                            message: format!(
                                "JOURNAL NOT ANSWERING: slot {}'s verdict is held ({e}); no new \
                                 unit starts until it is written; trying for {} s — find what \
                                 holds {} locked",
                                unit.slot,
                                self.patience.as_secs(),
                                self.journal
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .path()
                                    .display()
                            ),
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Another connection holds the journal's lock: worth waiting for.
fn is_busy(error: &JournalError) -> bool {
    matches!(
        error,
        JournalError::Sql(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
