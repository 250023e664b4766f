//! What one unit's job hands back, and how it reaches the journal before anyone sees it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::config::VerifyMethod;
use crate::digest::Sha256Digest;
use crate::events::{Event, EventKind, EventSink};
use crate::journal::{AttemptId, AttemptOutcome, ImageSent, Journal, JournalError};
use crate::logging::UnitLog;
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
    /// The build id the phone holds (`ro.build.display.id` read back), when it was read.
    pub build_id_found: Option<String>,
    pub verify_method: Option<VerifyMethod>,
    pub verify_bytes_read: Option<u64>,
    /// The attempt's unit log, which ends with the verdict once the journal holds it.
    pub log: Option<UnitLog>,
}

impl UnitResult {
    pub fn new(attempt: Option<AttemptId>, serial: Option<String>, verdict: Verdict) -> Self {
        UnitResult {
            attempt,
            serial,
            verdict,
            images_sent: Vec::new(),
            activation_sha256_found: None,
            build_id_found: None,
            verify_method: None,
            verify_bytes_read: None,
            log: None,
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
    /// The fleet sync, told of each committed verdict so it ships at once.
    pub fleet_sync: Option<crate::fleet::sync::SyncWaker>,
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
            build_id_found: outcome.build_id_found.clone(),
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
                    if let Some(sync) = &self.fleet_sync {
                        sync.rows_committed();
                    }
                    if let Some(log) = &outcome.log {
                        log.line(&verdict_line(attempt, outcome));
                    }
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

/// The unit log's last line: the verdict as the journal now holds it, with its reason.
fn verdict_line(attempt: AttemptId, outcome: &UnitResult) -> String {
    let (result, reason) = match &outcome.verdict {
        Verdict::Pass => (
            "PASS".to_string(),
            format!(
                "the activation client on the unit{} is the region's allow-listed one{}",
                outcome
                    .activation_sha256_found
                    .map(|d| format!(" (SHA-256 {d})"))
                    .unwrap_or_default(),
                outcome
                    .verify_method
                    .map(|m| format!(", verified by {}", m.as_str()))
                    .unwrap_or_default()
            ),
        ),
        Verdict::Fail(failure) => (format!("FAIL {}", failure.code()), failure.sentence()),
        Verdict::Aborted(interruption) => ("ABORTED".to_string(), interruption.sentence()),
    };
    format!("verdict {result} (journal attempt {}): {reason}", attempt.0)
}

/// Another connection holds the journal's lock: worth waiting for.
fn is_busy(error: &JournalError) -> bool {
    matches!(
        error,
        JournalError::Sql(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::BusDevice;
    use crate::journal::AttemptStart;
    use crate::logging::UnitLogs;
    use crate::mode::Mode;

    #[test]
    fn the_unit_log_ends_with_the_journaled_verdict_and_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let journal = Arc::new(Mutex::new(journal));
        let at = SystemTime::now();
        let id = journal
            .lock()
            .unwrap()
            .begin(&AttemptStart {
                slot: 3,
                port_path: "1-4.3".into(),
                station_id: "st1".into(),
                line: None,
                work_order: "WO-1".into(),
                work_order_quantity: 5,
                product: "p".into(),
                region: "00EEA".into(),
                build_id: "B".into(),
                manifest_sha256: Sha256Digest::of_bytes(b"m"),
                tool_version: "t".into(),
                log_path: None,
                started_at: at,
                operator: None,
                manifest_signed_by: None,
                engineering_mode: false,
            })
            .unwrap();
        let log = UnitLogs::new(dir.path().join("units"))
            .open("7PL3", 1)
            .unwrap();
        log.line("flash system_a");
        let recorder = JournalRecorder {
            journal: journal.clone(),
            work_order: "WO-1".into(),
            patience: Duration::from_secs(1),
            events: Arc::new(crate::events::RecordingSink::new()),
            fleet_sync: None,
        };
        let unit = UnitInfo::new(
            3,
            "1-4.3".into(),
            BusDevice {
                port_path: "1-4.3".into(),
                kind: Mode::Fastboot,
                vendor_id: 0x18d1,
                product_id: 0x4ee0,
                serial: Some("7PL3".into()),
                speed: "high".into(),
            },
            at,
        );
        let failure = Failure::Timeout {
            unit: UnitRef {
                slot: 3,
                serial: Some("7PL3".into()),
            },
            step: "verify system_a".into(),
            secs: 300,
        };
        let mut outcome = UnitResult::new(
            Some(id),
            Some("7PL3".into()),
            Verdict::Fail(failure.clone()),
        );
        outcome.log = Some(log.clone());
        recorder.record(&unit, &outcome).unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let last = text.lines().last().unwrap();
        assert!(
            last.contains(&format!(
                "verdict FAIL TIMEOUT (journal attempt {}): {}",
                id.0,
                failure.sentence()
            )),
            "{text}"
        );
        // Written after the row: the journal already holds what the line says.
        let row = journal.lock().unwrap().attempt(id).unwrap().unwrap();
        assert_eq!(row.failure_code.as_deref(), Some("TIMEOUT"));
    }
}
