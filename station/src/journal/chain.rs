//! The journal's hash chain in SQLite: a row joins its station's chain in the transaction that
//! gives it its verdict ([`append`]), and [`Journal::verify_chain`] walks every chain and names
//! each row that was edited, deleted, reordered or slipped in by hand. The bytes hashed are
//! `trust::chain`'s.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{AttemptId, Journal, JournalError};
use crate::digest::Sha256Digest;
use crate::trust::chain::{
    columns_of_version, content_hash, encode_content, genesis, link, ColumnValue,
    ATTEMPT_COLUMNS_V2, CHAIN_VERSION,
};

/// The columns new rows are hashed over: those of [`CHAIN_VERSION`].
const CHAINED_COLUMNS: &[&str] = &ATTEMPT_COLUMNS_V2;

/// The journal schema that added the chain.
const FIRST_CHAINED_SCHEMA: i64 = 4;

/// A row's place in its station's chain, once it has a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainEntry {
    pub seq: i64,
    pub link: Sha256Digest,
}

/// Puts the finished attempt `id` at the end of its station's chain. Called inside the
/// transaction that wrote the verdict, after it: the hash covers the verdict.
pub(super) fn append(conn: &Connection, id: AttemptId) -> Result<ChainEntry, JournalError> {
    let values =
        row_values(conn, id.0, CHAINED_COLUMNS)?.ok_or(JournalError::NoSuchAttempt(id.0))?;
    let station_id = match &values[station_column()] {
        ColumnValue::Text(station) => station.clone(),
        _ => {
            return Err(JournalError::Corrupt {
                id: id.0,
                column: "station_id",
                detail: "not text".into(),
            })
        }
    };
    let content = content_hash(&encode_content(
        CHAIN_VERSION,
        CHAINED_COLUMNS.iter().copied().zip(values.iter()),
    ));
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT chain_seq, chain_link FROM attempts
             WHERE station_id = ?1 AND chain_seq IS NOT NULL
             ORDER BY chain_seq DESC LIMIT 1",
            [&station_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (seq, prev) = match head {
        Some((seq, head_link)) => {
            let prev = Sha256Digest::parse(&head_link).map_err(|e| JournalError::Corrupt {
                id: id.0,
                column: "chain_link (of the chain's last row)",
                detail: e.to_string(),
            })?;
            (seq + 1, prev)
        }
        None => (1, genesis(&station_id, chain_origin(conn)?)),
    };
    let entry = ChainEntry {
        seq,
        link: link(seq, &prev, &content),
    };
    let updated = conn.execute(
        "UPDATE attempts SET chain_seq = ?1, chain_version = ?2, content_sha256 = ?3,
             chain_prev = ?4, chain_link = ?5
         WHERE id = ?6 AND chain_seq IS NULL",
        params![
            entry.seq,
            CHAIN_VERSION,
            content.to_hex(),
            prev.to_hex(),
            entry.link.to_hex(),
            id.0
        ],
    )?;
    if updated != 1 {
        return Err(JournalError::Setup(format!(
            "attempt {} is already in the chain; a finished row is never chained twice",
            id.0
        )));
    }
    Ok(entry)
}

fn station_column() -> usize {
    CHAINED_COLUMNS
        .iter()
        .position(|c| *c == "station_id")
        .unwrap_or(0)
}

/// The highest attempt id the journal held when it started chaining.
fn chain_origin(conn: &Connection) -> Result<i64, JournalError> {
    let origins: Vec<i64> = conn
        .prepare("SELECT before_id FROM chain_origin")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    match origins.as_slice() {
        [origin] => Ok(*origin),
        _ => Err(JournalError::Corrupt {
            id: 0,
            column: "chain_origin",
            detail: format!("holds {} rows instead of one", origins.len()),
        }),
    }
}

/// The row's values of `columns`, as SQLite stores them.
pub(super) fn row_values(
    conn: &Connection,
    id: i64,
    columns: &[&str],
) -> Result<Option<Vec<ColumnValue>>, JournalError> {
    let sql = format!("SELECT {} FROM attempts WHERE id = ?1", columns.join(", "));
    // Cached: `journal verify` and `report` run it once per row.
    let mut statement = conn.prepare_cached(&sql)?;
    Ok(statement
        .query_row([id], |row| {
            (0..columns.len())
                .map(|i| row.get_ref(i).map(column_value))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .optional()?)
}

fn column_value(value: ValueRef<'_>) -> ColumnValue {
    match value {
        ValueRef::Null => ColumnValue::Null,
        ValueRef::Integer(v) => ColumnValue::Integer(v),
        ValueRef::Real(v) => ColumnValue::Real(v),
        ValueRef::Text(bytes) => ColumnValue::Text(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => ColumnValue::Blob(bytes.to_vec()),
    }
}

/// What a walk of the journal's chains found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Rows in a chain.
    pub chained: u64,
    /// Finished rows from before the journal started chaining (not checkable, not tampered).
    pub before_chain: u64,
    /// Rows still without a verdict (they join the chain when they get one).
    pub open: u64,
    /// The last row of each station's chain: deleting the newest rows leaves a shorter chain
    /// that is whole, so compare the head with a copy kept elsewhere (the newest unit proof
    /// holds its row's link).
    pub heads: Vec<ChainHead>,
    pub problems: Vec<ChainProblem>,
    /// Signed unit proofs held against their rows.
    pub proofs: u64,
    /// Chained passes without a proof (recorded by a station without a key, or a proof was
    /// removed: the journal cannot tell which).
    pub passes_without_proof: u64,
    /// The attempts in a chain (sound or not).
    #[serde(skip)]
    pub chained_ids: BTreeSet<i64>,
}

impl ChainReport {
    /// Adds `problem`, or its sentence to the problem already named for the same attempt.
    fn add(&mut self, problem: ChainProblem) {
        let same = self
            .problems
            .iter_mut()
            .find(|p| p.attempt_id.is_some() && p.attempt_id == problem.attempt_id);
        match same {
            Some(known) => {
                known.what.push_str("; ");
                known.what.push_str(&problem.what);
            }
            None => self.problems.push(problem),
        }
    }

    pub fn is_chained(&self, attempt: i64) -> bool {
        self.chained_ids.contains(&attempt)
    }

    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether `attempt` is named by a problem.
    pub fn names(&self, attempt: i64) -> bool {
        self.problems.iter().any(|p| p.attempt_id == Some(attempt))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub station_id: String,
    pub seq: i64,
    pub attempt_id: i64,
    pub link: String,
}

/// One thing wrong with the journal, and the row it concerns where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    pub attempt_id: Option<i64>,
    pub unit_serial: Option<String>,
    pub station_id: Option<String>,
    pub chain_seq: Option<i64>,
    /// What is wrong, in a sentence.
    pub what: String,
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.attempt_id {
            Some(id) => write!(f, "attempt {id}")?,
            None => f.write_str("journal")?,
        }
        if let Some(serial) = &self.unit_serial {
            write!(f, " (serial {serial})")?;
        }
        if let (Some(station), Some(seq)) = (&self.station_id, self.chain_seq) {
            write!(f, " [station {station} chain seq {seq}]")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// One row as the walk reads it.
struct WalkedRow {
    id: i64,
    station_id: String,
    unit_serial: Option<String>,
    result: String,
    seq: Option<i64>,
    version: Option<i64>,
    content: Option<String>,
    prev: Option<String>,
    link: Option<String>,
}

impl WalkedRow {
    fn problem(&self, what: impl Into<String>) -> ChainProblem {
        ChainProblem {
            attempt_id: Some(self.id),
            unit_serial: self.unit_serial.clone(),
            station_id: Some(self.station_id.clone()),
            chain_seq: self.seq,
            what: what.into(),
        }
    }
}

impl Journal {
    /// Walks every station's chain in this journal, and holds each unit proof against its row.
    /// Problems are findings, not errors: an error means the journal could not be read at all.
    pub fn verify_chain(&self) -> Result<ChainReport, JournalError> {
        self.verify_chain_with_key(None)
    }

    /// [`Journal::verify_chain`], also checking each proof's signature with the station's key.
    pub fn verify_chain_with_key(
        &self,
        key: Option<&minisign::PublicKey>,
    ) -> Result<ChainReport, JournalError> {
        let mut report = verify_in(self.connection())?;
        if self.schema_version()? >= FIRST_CHAINED_SCHEMA {
            check_proofs(self, key, &mut report)?;
            report
                .problems
                .sort_by_key(|p| (p.attempt_id.unwrap_or(i64::MIN), p.chain_seq));
        }
        Ok(report)
    }
}

/// Each stored proof against the row it states: the same unit, order, region, client and
/// chain link (a PASS row edited after its proof is named with the column that differs), and
/// its signature when the station's key is known.
fn check_proofs(
    journal: &Journal,
    key: Option<&minisign::PublicKey>,
    report: &mut ChainReport,
) -> Result<(), JournalError> {
    let ids: Vec<i64> = journal
        .connection()
        .prepare("SELECT attempt_id FROM unit_proofs ORDER BY attempt_id")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    report.proofs = ids.len() as u64;
    let without: i64 = journal.connection().query_row(
        "SELECT COUNT(*) FROM attempts a WHERE result = 'PASS' AND chain_seq IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM unit_proofs p WHERE p.attempt_id = a.id)",
        [],
        |row| row.get(0),
    )?;
    report.passes_without_proof = u64::try_from(without).unwrap_or(0);
    for id in ids {
        let Some(stored) = journal.unit_proof(id)? else {
            continue;
        };
        let row = journal.attempt(AttemptId(id))?;
        let problem = |what: String| ChainProblem {
            attempt_id: Some(id),
            unit_serial: row.as_ref().and_then(|r| r.unit_serial.clone()),
            station_id: row.as_ref().map(|r| r.station_id.clone()),
            chain_seq: None,
            what,
        };
        let proof = match key {
            Some(key) => match crate::trust::unit_proof::verify(
                stored.statement.as_bytes(),
                &stored.signature,
                key,
            ) {
                Ok(verified) => verified.proof,
                Err(e) => {
                    report.add(problem(format!("its unit proof: {e}")));
                    continue;
                }
            },
            None => {
                match serde_json::from_str::<crate::trust::unit_proof::UnitProof>(&stored.statement)
                {
                    Ok(proof) => proof,
                    Err(e) => {
                        report.add(problem(format!("its unit proof is unreadable: {e}")));
                        continue;
                    }
                }
            }
        };
        let Some(row) = row.as_ref() else {
            report.add(problem(format!(
                "has a signed unit proof ({} {}) but no row: the row was deleted",
                proof.result, proof.unit_serial
            )));
            continue;
        };
        let link: Option<String> = journal.connection().query_row(
            "SELECT chain_link FROM attempts WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let differences: Vec<String> = [
            (
                "result",
                Some(proof.result.as_str()),
                Some(row.result.as_str()),
            ),
            (
                "unit_serial",
                Some(proof.unit_serial.as_str()),
                row.unit_serial.as_deref(),
            ),
            (
                "work_order",
                Some(proof.work_order.as_str()),
                Some(row.work_order.as_str()),
            ),
            (
                "region",
                Some(proof.region.as_str()),
                Some(row.region.as_str()),
            ),
            (
                "build_id",
                Some(proof.build_id.as_str()),
                Some(row.build_id.as_str()),
            ),
            (
                "build_id_found",
                proof.build_id_found.as_deref(),
                row.build_id_found.as_deref(),
            ),
            (
                "activation_sha256_found",
                Some(proof.activation_client_sha256.as_str()),
                row.activation_sha256_found.as_deref(),
            ),
            (
                "station_id",
                Some(proof.station_id.as_str()),
                Some(row.station_id.as_str()),
            ),
            ("line", proof.line.as_deref(), row.line.as_deref()),
            (
                "chain_link",
                Some(proof.chain_link.as_str()),
                link.as_deref(),
            ),
        ]
        .into_iter()
        .filter(|(_, proved, held)| proved != held)
        .map(|(column, proved, held)| {
            format!(
                "{column} is {} but its signed unit proof says {}",
                held.unwrap_or("NULL"),
                proved.unwrap_or("NULL")
            )
        })
        .collect();
        if !differences.is_empty() {
            report.add(problem(differences.join("; ")));
        }
    }
    Ok(())
}

pub(super) fn verify_in(conn: &Connection) -> Result<ChainReport, JournalError> {
    let mut report = ChainReport {
        chained: 0,
        before_chain: 0,
        open: 0,
        heads: Vec::new(),
        problems: Vec::new(),
        proofs: 0,
        passes_without_proof: 0,
        chained_ids: BTreeSet::new(),
    };
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version < FIRST_CHAINED_SCHEMA {
        // Opened read-only as it is: a journal no station has opened since chaining began.
        let (open, finished): (i64, i64) = if version == 0 {
            (0, 0)
        } else {
            conn.query_row(
                "SELECT COUNT(*) FILTER (WHERE result = 'IN_PROGRESS'),
                        COUNT(*) FILTER (WHERE result <> 'IN_PROGRESS')
                 FROM attempts",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?
        };
        report.open = u64::try_from(open).unwrap_or(0);
        report.before_chain = u64::try_from(finished).unwrap_or(0);
        return Ok(report);
    }
    let origin = match chain_origin(conn) {
        Ok(origin) => Some(origin),
        Err(JournalError::Corrupt { detail, .. }) => {
            report.add(ChainProblem {
                attempt_id: None,
                unit_serial: None,
                station_id: None,
                chain_seq: None,
                what: format!(
                    "the chain's origin (table chain_origin) {detail}: it was edited by hand"
                ),
            });
            None
        }
        Err(e) => return Err(e),
    };
    let rows = walked_rows(conn)?;
    let mut chains: BTreeMap<&str, Vec<&WalkedRow>> = BTreeMap::new();
    for row in &rows {
        match row.seq {
            Some(_) => chains.entry(&row.station_id).or_default().push(row),
            None if row.result == "IN_PROGRESS" => report.open += 1,
            None if origin.is_some_and(|o| row.id <= o) => report.before_chain += 1,
            None => report.add(row.problem(format!(
                "{} row without a place in the chain: it was inserted or given its verdict by \
                 hand (the station chains every row it finishes)",
                row.result
            ))),
        }
    }
    for (station, mut chain) in chains {
        chain.sort_by_key(|row| (row.seq, row.id));
        report.chained += chain.len() as u64;
        let mut expected_seq = 1;
        let mut prev_link = origin.map(|o| genesis(station, o).to_hex());
        let mut prev_row: Option<&WalkedRow> = None;
        for row in &chain {
            report.chained_ids.insert(row.id);
            let seq = row.seq.unwrap_or_default();
            let mut wrong = Vec::new();
            match check_row(conn, row)? {
                RowCheck::Sound => {}
                RowCheck::Wrong(what) => wrong.push(what),
            }
            if seq > expected_seq {
                let missing = if seq - 1 == expected_seq {
                    format!("seq {expected_seq} is missing")
                } else {
                    format!("seq {expected_seq}–{} are missing", seq - 1)
                };
                wrong.push(format!(
                    "{missing} before it{}: a row was deleted",
                    prev_row.map_or(String::new(), |p| format!(" (after attempt {})", p.id))
                ));
            } else if seq < expected_seq {
                wrong.push(format!(
                    "a second row at seq {seq} (the first is attempt {}): it was inserted by hand",
                    prev_row.map_or(0, |p| p.id)
                ));
            } else if let Some(expected) = &prev_link {
                if row.prev.as_deref() != Some(expected.as_str()) {
                    wrong.push(match prev_row {
                        Some(p) => format!(
                            "does not follow attempt {} (seq {}), the row before it in the \
                             chain: rows were reordered or one was replaced",
                            p.id,
                            p.seq.unwrap_or_default()
                        ),
                        None => "does not start the chain from its origin: rows before it \
                                 were deleted, or the origin was edited"
                            .to_string(),
                    });
                }
            }
            if !wrong.is_empty() {
                report.add(row.problem(wrong.join("; ")));
            }
            expected_seq = expected_seq.max(seq + 1);
            prev_link = row.link.clone();
            prev_row = Some(row);
        }
        if let Some(last) = prev_row {
            report.heads.push(ChainHead {
                station_id: station.to_string(),
                seq: last.seq.unwrap_or_default(),
                attempt_id: last.id,
                link: last.link.clone().unwrap_or_default(),
            });
        }
    }
    report
        .problems
        .sort_by_key(|p| (p.attempt_id.unwrap_or(i64::MIN), p.chain_seq));
    Ok(report)
}

enum RowCheck {
    Sound,
    Wrong(String),
}

/// Whether a chained row's content and link still follow from what it holds.
fn check_row(conn: &Connection, row: &WalkedRow) -> Result<RowCheck, JournalError> {
    let Some((version, columns)) = row.version.and_then(|v| Some((v, columns_of_version(v)?)))
    else {
        return Ok(RowCheck::Wrong(format!(
            "hashed with chain version {}, which this flashgate does not know (edited, or \
             written by a newer flashgate)",
            row.version
                .map_or_else(|| "NULL".to_string(), |v| v.to_string())
        )));
    };
    let Some(values) = row_values(conn, row.id, columns)? else {
        return Ok(RowCheck::Wrong("vanished during the check".into()));
    };
    let content = content_hash(&encode_content(
        version,
        columns.iter().copied().zip(values.iter()),
    ));
    if let Some(added) = set_after_its_version(conn, row.id, columns)? {
        return Ok(RowCheck::Wrong(format!(
            "`{added}` is set, but the row was hashed under chain version {version}, before \
             journals recorded it: it was written by hand after the verdict"
        )));
    }
    if row.content.as_deref() != Some(content.to_hex().as_str()) {
        return Ok(RowCheck::Wrong(format!(
            "its content no longer matches the hash taken at its verdict: a column of this {} \
             row was edited",
            row.result
        )));
    }
    let parsed = |text: &Option<String>| text.as_deref().and_then(|t| Sha256Digest::parse(t).ok());
    let recomputed =
        parsed(&row.prev).map(|prev| link(row.seq.unwrap_or_default(), &prev, &content));
    if recomputed.is_none() || recomputed.map(|l| l.to_hex()) != row.link {
        return Ok(RowCheck::Wrong(
            "its chain link does not follow from its content and the link before it: the \
             chain columns were edited"
                .into(),
        ));
    }
    Ok(RowCheck::Sound)
}

/// A column the current version hashes that the row's own version did not, holding a value:
/// the station never writes one (the column did not exist when the row was hashed).
fn set_after_its_version(
    conn: &Connection,
    id: i64,
    hashed: &[&str],
) -> Result<Option<&'static str>, JournalError> {
    let added: Vec<&'static str> = CHAINED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !hashed.contains(c))
        .collect();
    if added.is_empty() {
        return Ok(None);
    }
    let values = row_values(conn, id, &added)?.unwrap_or_default();
    Ok(added
        .into_iter()
        .zip(values)
        .find(|(_, value)| *value != ColumnValue::Null)
        .map(|(column, _)| column))
}

fn walked_rows(conn: &Connection) -> Result<Vec<WalkedRow>, JournalError> {
    let mut statement = conn.prepare(
        "SELECT id, station_id, unit_serial, result, chain_seq, chain_version, content_sha256,
                chain_prev, chain_link
         FROM attempts ORDER BY id",
    )?;
    let rows = statement
        .query_map([], |row| {
            Ok(WalkedRow {
                id: row.get(0)?,
                station_id: row.get(1)?,
                unit_serial: row.get(2)?,
                result: row.get(3)?,
                seq: row.get(4)?,
                version: row.get(5)?,
                content: row.get(6)?,
                prev: row.get(7)?,
                link: row.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
