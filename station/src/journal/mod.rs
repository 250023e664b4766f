//! The journal: one SQLite row per unit attempt, in WAL mode with synchronous=FULL. Every
//! method commits before it returns, so whatever the dashboard shows after a call is on disk.

mod chain;
mod inspect;
mod lock;
mod outbox;
mod proofs;
mod query;
mod record;
mod report_filter;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension};

pub use chain::{ChainEntry, ChainHead, ChainProblem, ChainReport};
pub use inspect::{lock_holder, JournalInspection, LockHolder};
pub use lock::StationLock;
pub use outbox::{Backlog, Cell, ColumnKind, ShippedRow, SHIPPED_COLUMNS};
pub use proofs::StoredProof;
pub use query::{
    AttemptRow, CodeCount, Counts, FlaggedUnit, LineCounts, WorkOrderReport, NO_LINE_RECORDED,
};
pub use record::{
    AttemptId, AttemptOutcome, AttemptStart, CompletedAttempt, FinishedAttempt, ImageSent,
    Milestone, MilestoneTimes,
};
pub use report_filter::{ExportedAttempt, QuantityCheck, ReportFilter};
pub use schema::SCHEMA_VERSION;

use record::millis;

use crate::mode::Mode;
use crate::trust::station_key::StationSigner;
use crate::trust::unit_proof::UnitProof;
use crate::verdict::Verdict;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("journal: cannot create folder {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal schema v{found} was written by a newer flashgate (this one knows v{supported}); upgrade flashgate")]
    NewerSchema { found: i64, supported: i64 },
    #[error("journal set-up: {0}")]
    Setup(String),
    #[error("journal: attempt {0} does not exist")]
    NoSuchAttempt(i64),
    #[error("journal: attempt {0} already has a verdict; start a new attempt for a retry")]
    AlreadyFinished(i64),
    #[error("journal: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("journal {} is in use by another flashgate station (pid {pid}{since}): one station process per journal; stop the other one, or give this station its own `journal` in station.yaml", path.display())]
    InUse {
        path: PathBuf,
        pid: String,
        since: String,
    },
    #[error("journal {}: cannot take the station lock {}: {source}", path.display(), lock.display())]
    Lock {
        path: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal: row {id} holds unreadable {column}: {detail}")]
    Corrupt {
        id: i64,
        column: &'static str,
        detail: String,
    },
}

pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// Signs a proof for each PASS, in the verdict's transaction (a station with a key).
    signer: Option<Arc<StationSigner>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens (creating it and its folder if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_error)?;
        schema::prepare(&mut conn)?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            signer: None,
        })
    }

    /// Opens the journal for a station run: takes the journal's station lock first (one station
    /// process per journal; the lock goes with the process, even on a crash), then closes every
    /// attempt a previous run left without a verdict as ABORTED. Returns the closed attempts so
    /// the console can name them.
    pub fn open_for_station(
        path: &Path,
        now: SystemTime,
    ) -> Result<(Self, StationLock, Vec<AttemptRow>), JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let lock = StationLock::take(path)?;
        let mut journal = Self::open(path)?;
        let closed = journal.close_interrupted(now)?;
        Ok((journal, lock, closed))
    }

    /// Closes every `IN_PROGRESS` attempt as ABORTED ("the station stopped before a verdict").
    /// Only the station holding the journal's lock may call this: an open attempt of a running
    /// station is not interrupted.
    pub fn close_interrupted(&mut self, now: SystemTime) -> Result<Vec<AttemptRow>, JournalError> {
        let tx = self.conn.transaction()?;
        let open = query::rows_in(
            &tx,
            &format!(
                "SELECT {} FROM attempts WHERE result = 'IN_PROGRESS' ORDER BY id",
                query::ROW_COLUMNS
            ),
            rusqlite::params![],
        )?;
        for row in &open {
            let interruption = crate::verdict::Interruption {
                unit: crate::verdict::UnitRef {
                    slot: row.slot,
                    serial: row.unit_serial.clone(),
                },
                step: row.last_step().to_string(),
                why: "the station stopped (crash, kill or power loss)".into(),
                not_flashed: None,
            };
            tx.execute(
                "UPDATE attempts SET result = 'ABORTED', failure_message = ?1, finished_at_ms = ?2
                 WHERE id = ?3 AND result = 'IN_PROGRESS'",
                params![interruption.to_string(), millis(now), row.id],
            )?;
            chain::append(&tx, AttemptId(row.id))?;
        }
        tx.commit()?;
        Ok(open)
    }

    /// Distinct units with a PASS under `work_order`, in every run this journal holds.
    pub fn units_passed(&self, work_order: &str) -> Result<u32, JournalError> {
        let count: i64 = self.conn.query_row(
            "SELECT COUNT(DISTINCT unit_serial) FROM attempts
             WHERE work_order = ?1 AND result = 'PASS' AND unit_serial IS NOT NULL",
            [work_order],
            |row| row.get(0),
        )?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The highest serial (in text order) that starts with `prefix`.
    pub fn highest_serial_with_prefix(&self, prefix: &str) -> Result<Option<String>, JournalError> {
        Ok(self.conn.query_row(
            "SELECT MAX(unit_serial) FROM attempts WHERE substr(unit_serial, 1, length(?1)) = ?1",
            [prefix],
            |row| row.get(0),
        )?)
    }

    /// SQLite's own check of the file (`ok` when sound).
    pub fn integrity_check(&self) -> Result<String, JournalError> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }

    /// Opens an existing journal for reading only (report, history): never creates one.
    pub fn open_existing(path: &Path) -> Result<Self, JournalError> {
        if !path.exists() {
            return Err(JournalError::Setup(format!(
                "{} does not exist; check the station's `journal` path",
                path.display()
            )));
        }
        Self::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on each PASS this journal records carries a unit proof signed by `signer`,
    /// written in the verdict's transaction.
    pub fn sign_passes_with(&mut self, signer: Arc<StationSigner>) {
        self.signer = Some(signer);
    }

    /// Records that a unit appeared on a slot. The row stays `IN_PROGRESS` until
    /// [`Journal::finish`], so a station crash leaves a visible trace.
    pub fn begin(&mut self, start: &AttemptStart) -> Result<AttemptId, JournalError> {
        begin_in(&self.conn, start)
    }

    /// Records the unit's serial and mode. Returns the other work orders under which this serial
    /// already passed, so the station can warn before flashing.
    pub fn identified(
        &mut self,
        id: AttemptId,
        serial: &str,
        mode: Mode,
        at: SystemTime,
    ) -> Result<Vec<String>, JournalError> {
        let tx = self.conn.transaction()?;
        let prior = identified_in(&tx, id, serial, mode, at)?;
        tx.commit()?;
        Ok(prior)
    }

    /// Records the serial the unit shows on the bus (a fastboot device's USB serial number)
    /// before it answers for itself, so an attempt that fails before identification is found
    /// under the serial the operator was shown. Identification replaces it; a row that already
    /// has a serial keeps it.
    pub fn seen_as(&mut self, id: AttemptId, serial: &str) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        open_attempt_work_order(&tx, id)?;
        tx.execute(
            "UPDATE attempts SET unit_serial = ?1 WHERE id = ?2 AND unit_serial IS NULL",
            params![serial, id.0],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records the unit's scanned code (IMEI or label code) and where it came from
    /// (`getvar:imei`), for the line's MES.
    pub fn unit_code(
        &mut self,
        id: AttemptId,
        code: &str,
        source: &str,
    ) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        open_attempt_work_order(&tx, id)?;
        tx.execute(
            "UPDATE attempts SET unit_code = ?1, unit_code_source = ?2 WHERE id = ?3",
            params![code, source, id.0],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records where the unit's own log file is, once it is known (it is named after the serial).
    pub fn set_log_path(&mut self, id: AttemptId, path: &Path) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        open_attempt_work_order(&tx, id)?;
        tx.execute(
            "UPDATE attempts SET log_path = ?1 WHERE id = ?2",
            params![path.display().to_string(), id.0],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn milestone(
        &mut self,
        id: AttemptId,
        milestone: Milestone,
        at: SystemTime,
    ) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        milestone_in(&tx, id, milestone, at)?;
        tx.commit()?;
        Ok(())
    }

    /// Commits the verdict (durably) and returns only then. A serial that already passed under
    /// another work order is flagged in the row and in the answer.
    pub fn finish(
        &mut self,
        id: AttemptId,
        outcome: &AttemptOutcome,
    ) -> Result<FinishedAttempt, JournalError> {
        let tx = self.conn.transaction()?;
        let finished = finish_in(&tx, id, outcome, self.signer.as_deref())?;
        tx.commit()?;
        Ok(finished)
    }

    /// A whole attempt in one durable transaction, for a caller that collects the milestones
    /// itself and writes once at the verdict.
    pub fn record(&mut self, attempt: &CompletedAttempt) -> Result<FinishedAttempt, JournalError> {
        let tx = self.conn.transaction()?;
        let id = begin_in(&tx, &attempt.start)?;
        if let Some(serial) = &attempt.serial {
            let at = attempt
                .phases
                .identified
                .unwrap_or(attempt.start.started_at);
            let mode = attempt.mode.ok_or_else(|| {
                JournalError::Setup("an identified attempt needs its mode (fastboot or edl)".into())
            })?;
            identified_in(&tx, id, serial, mode, at)?;
        }
        for (milestone, at) in [
            (Milestone::FlashStarted, attempt.phases.flash_started),
            (Milestone::FlashDone, attempt.phases.flash_done),
            (Milestone::VerifyStarted, attempt.phases.verify_started),
            (Milestone::VerifyDone, attempt.phases.verify_done),
        ] {
            if let Some(at) = at {
                milestone_in(&tx, id, milestone, at)?;
            }
        }
        let finished = finish_in(&tx, id, &attempt.outcome, self.signer.as_deref())?;
        tx.commit()?;
        Ok(finished)
    }

    /// Work orders other than `work_order` under which `serial` has a PASS.
    pub fn passed_under_other_work_orders(
        &self,
        serial: &str,
        work_order: &str,
    ) -> Result<Vec<String>, JournalError> {
        prior_passes(&self.conn, serial, work_order)
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn begin_in(conn: &Connection, start: &AttemptStart) -> Result<AttemptId, JournalError> {
    conn.execute(
        "INSERT INTO attempts (slot, port_path, station_id, work_order, work_order_quantity,
                 product, region, build_id, manifest_sha256, result, started_at_ms, tool_version,
                 log_path, operator_id, manifest_signed_by, engineering_mode, line)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'IN_PROGRESS', ?10, ?11, ?12, ?13, ?14,
                     ?15, ?16)",
        params![
            start.slot,
            start.port_path,
            start.station_id,
            start.work_order,
            start.work_order_quantity,
            start.product,
            start.region,
            start.build_id,
            start.manifest_sha256.to_hex(),
            millis(start.started_at),
            start.tool_version,
            start.log_path.as_ref().map(|p| p.display().to_string()),
            start.operator,
            start.manifest_signed_by,
            start.engineering_mode.then_some(1),
            start.line,
        ],
    )?;
    Ok(AttemptId(conn.last_insert_rowid()))
}

fn identified_in(
    conn: &Connection,
    id: AttemptId,
    serial: &str,
    mode: Mode,
    at: SystemTime,
) -> Result<Vec<String>, JournalError> {
    let work_order = open_attempt_work_order(conn, id)?;
    // An EDL unit's first identity is its chip serial; it stays in `chip_serial` when the unit
    // later answers in fastboot with its own serial (which becomes `unit_serial`).
    conn.execute(
        "UPDATE attempts SET unit_serial = ?1, mode = ?2, identified_at_ms = ?3,
             chip_serial = CASE WHEN ?2 = 'edl' AND chip_serial IS NULL THEN ?1
                                ELSE chip_serial END
         WHERE id = ?4",
        params![serial, mode.as_str(), millis(at), id.0],
    )?;
    prior_passes(conn, serial, &work_order)
}

fn milestone_in(
    conn: &Connection,
    id: AttemptId,
    milestone: Milestone,
    at: SystemTime,
) -> Result<(), JournalError> {
    open_attempt_work_order(conn, id)?;
    conn.execute(
        &format!(
            "UPDATE attempts SET {} = ?1 WHERE id = ?2",
            milestone.column()
        ),
        params![millis(at), id.0],
    )?;
    Ok(())
}

fn finish_in(
    conn: &Connection,
    id: AttemptId,
    outcome: &AttemptOutcome,
    signer: Option<&StationSigner>,
) -> Result<FinishedAttempt, JournalError> {
    let work_order = open_attempt_work_order(conn, id)?;
    let serial: Option<String> = conn.query_row(
        "SELECT unit_serial FROM attempts WHERE id = ?1",
        [id.0],
        |row| row.get(0),
    )?;
    let prior = match &serial {
        Some(serial) => prior_passes(conn, serial, &work_order)?,
        None => Vec::new(),
    };
    let (result, code, message) = match &outcome.verdict {
        Verdict::Pass => ("PASS", None, None),
        Verdict::Fail(failure) => (
            "FAIL",
            Some(failure.code().as_str()),
            Some(failure.to_string()),
        ),
        Verdict::Aborted(interruption) => ("ABORTED", None, Some(interruption.to_string())),
    };
    let images = serde_json::to_string(&outcome.images_sent)
        .map_err(|e| JournalError::Setup(format!("cannot encode images_sent: {e}")))?;
    conn.execute(
        "UPDATE attempts SET result = ?1, failure_code = ?2, failure_message = ?3,
             images_sent = ?4, activation_sha256_found = ?5, verify_method = ?6,
             verify_bytes_read = ?7, passed_under_other_work_orders = ?8, finished_at_ms = ?9,
             build_id_found = ?10
         WHERE id = ?11",
        params![
            result,
            code,
            message,
            images,
            outcome.activation_sha256_found.map(|d| d.to_hex()),
            outcome.verify_method.map(|m| m.as_str()),
            outcome
                .verify_bytes_read
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            (!prior.is_empty()).then(|| prior.join(",")),
            millis(outcome.finished_at),
            outcome.build_id_found,
            id.0,
        ],
    )?;
    // The verdict joins the chain in its own transaction: no finished row is ever unchained.
    let entry = chain::append(conn, id)?;
    if let (Verdict::Pass, Some(signer)) = (&outcome.verdict, signer) {
        write_unit_proof(conn, id, &entry, signer)?;
    }
    Ok(FinishedAttempt {
        id,
        passed_under_other_work_orders: prior,
    })
}

/// The signed statement of a PASS, beside its row, in the verdict's transaction.
fn write_unit_proof(
    conn: &Connection,
    id: AttemptId,
    entry: &ChainEntry,
    signer: &StationSigner,
) -> Result<(), JournalError> {
    let row = query::rows_in(
        conn,
        &format!("SELECT {} FROM attempts WHERE id = ?1", query::ROW_COLUMNS),
        params![id.0],
    )?
    .pop()
    .ok_or(JournalError::NoSuchAttempt(id.0))?;
    // A PASS without a serial or a client read back states nothing worth signing.
    let Some(proof) = UnitProof::of(&row, entry, signer.is_demo()) else {
        return Ok(());
    };
    let (statement, signature) = proof
        .sign(signer)
        .map_err(|e| JournalError::Setup(format!("cannot sign the unit proof: {e}")))?;
    conn.execute(
        "INSERT INTO unit_proofs (attempt_id, statement, signature) VALUES (?1, ?2, ?3)",
        params![id.0, statement, signature],
    )?;
    Ok(())
}

/// The attempt's work order, if the attempt exists and has no verdict yet.
fn open_attempt_work_order(conn: &Connection, id: AttemptId) -> Result<String, JournalError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT work_order, result FROM attempts WHERE id = ?1",
            [id.0],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match row {
        None => Err(JournalError::NoSuchAttempt(id.0)),
        Some((_, result)) if result != "IN_PROGRESS" => Err(JournalError::AlreadyFinished(id.0)),
        Some((work_order, _)) => Ok(work_order),
    }
}

fn prior_passes(
    conn: &Connection,
    serial: &str,
    work_order: &str,
) -> Result<Vec<String>, JournalError> {
    let mut statement = conn.prepare_cached(
        "SELECT DISTINCT work_order FROM attempts
         WHERE unit_serial = ?1 AND result = 'PASS' AND work_order <> ?2 ORDER BY work_order",
    )?;
    let rows = statement.query_map(params![serial, work_order], |row| row.get(0))?;
    Ok(rows.collect::<Result<Vec<String>, _>>()?)
}

#[cfg(test)]
mod tests;
