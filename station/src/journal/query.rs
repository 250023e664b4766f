//! Read side of the journal: `flashgate report --work-order` and `flashgate history SERIAL`.

use std::collections::BTreeMap;

use rusqlite::{params, Row};
use serde::Serialize;

use super::record::ImageSent;
use super::{Journal, JournalError};
use crate::mode::Mode;
use crate::timestamp::Timestamp;

/// Counts and yield for one work order, from the journal alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkOrderReport {
    pub work_order: String,
    /// As recorded with the attempts (normally one of each).
    pub products: Vec<String>,
    pub regions: Vec<String>,
    pub build_ids: Vec<String>,
    pub stations: Vec<String>,
    pub quantity: Option<u32>,
    #[serde(flatten)]
    pub counts: Counts,
    /// The same counts for each production line, in order of line name, the attempts that
    /// recorded no line last. A unit worked on two lines counts in each.
    pub by_line: Vec<LineCounts>,
    /// Units that also passed under another work order.
    pub flagged_units: Vec<FlaggedUnit>,
    /// Distinct units passed under this work order in the whole journal (whatever the filter).
    pub units_passed_in_order: u64,
    /// Units that passed after the order already had its quantity, in order of their first
    /// pass: more units than ordered carry this work order.
    pub over_quantity: Vec<String>,
    pub first_started_at: Option<Timestamp>,
    pub last_finished_at: Option<Timestamp>,
}

/// Attempts and units of a set of attempts (a work order's, or one line's of it), by outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub attempts: u64,
    pub attempts_passed: u64,
    pub attempts_failed: u64,
    pub attempts_in_progress: u64,
    /// Attempts the station cut before a verdict (a stop or a crash): not failures.
    pub attempts_aborted: u64,
    /// Attempts that ended before the unit's serial was read.
    pub attempts_unidentified: u64,
    /// Distinct serials seen.
    pub units: u64,
    /// Serials with at least one PASS under this work order.
    pub units_passed: u64,
    /// Serials without a PASS, with a FAIL, and no attempt open.
    pub units_failed: u64,
    /// Serials whose attempts were all cut before a verdict (not verified, not failed).
    pub units_aborted: u64,
    /// Serials whose first attempt with a verdict (ABORTED ones do not count) passed.
    pub units_passed_first_time: u64,
    /// units_passed / (units_passed + units_failed), in percent.
    pub yield_percent: Option<f64>,
    pub first_pass_yield_percent: Option<f64>,
    /// Failed attempts grouped by code, most frequent first.
    pub failures_by_code: Vec<CodeCount>,
}

/// What a report groups attempts without a line under (rows older than the journal's line
/// column, or from a station that names no line).
pub const NO_LINE_RECORDED: &str = "no line recorded";

/// One production line's share of a work order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineCounts {
    /// The line's name; null for the attempts that recorded none.
    pub line: Option<String>,
    /// The line's name, or [`NO_LINE_RECORDED`].
    pub label: String,
    /// The stations whose attempts are in this group.
    pub stations: Vec<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    pub code: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlaggedUnit {
    pub serial: String,
    pub passed_under_other_work_orders: Vec<String>,
}

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub unit_serial: Option<String>,
    pub slot: u16,
    pub port_path: String,
    pub station_id: String,
    pub work_order: String,
    pub work_order_quantity: u32,
    pub product: String,
    pub region: String,
    pub build_id: String,
    pub manifest_sha256: String,
    pub mode: Option<Mode>,
    pub images_sent: Vec<ImageSent>,
    pub activation_sha256_found: Option<String>,
    pub verify_method: Option<String>,
    pub verify_bytes_read: Option<u64>,
    /// `PASS`, `FAIL`, `ABORTED` or `IN_PROGRESS`.
    pub result: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub passed_under_other_work_orders: Vec<String>,
    pub started_at: Timestamp,
    pub identified_at: Option<Timestamp>,
    pub flash_started_at: Option<Timestamp>,
    pub flash_done_at: Option<Timestamp>,
    pub verify_started_at: Option<Timestamp>,
    pub verify_done_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub tool_version: String,
    pub log_path: Option<String>,
    /// The Qualcomm chip serial of a unit identified in EDL (the same unit as `unit_serial`).
    pub chip_serial: Option<String>,
    pub operator_id: Option<String>,
    /// IMEI or label code, and where it came from (`getvar:imei`).
    pub unit_code: Option<String>,
    pub unit_code_source: Option<String>,
    /// The build id read back from the phone (`ro.build.display.id`), when it was read.
    pub build_id_found: Option<String>,
    /// The pinned key that verified the manifest (`name (key id ID)`).
    pub manifest_signed_by: Option<String>,
    /// The station ran in engineering mode (manifest signatures not enforced).
    pub engineering_mode: bool,
    /// The production line the attempt was made on (None: no line recorded).
    pub line: Option<String>,
    /// The journal the row belongs to (its uid), for rows read from the fleet database, where
    /// `id` is the row's id in that journal: together they are the fleet's attempt id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_uid: Option<String>,
}

pub(super) const ROW_COLUMNS: &str = "id, unit_serial, slot, port_path, station_id, work_order,
    work_order_quantity, product, region, build_id, manifest_sha256, mode, images_sent,
    activation_sha256_found, verify_method, verify_bytes_read, result, failure_code,
    failure_message, passed_under_other_work_orders, started_at_ms, identified_at_ms,
    flash_started_at_ms, flash_done_at_ms, verify_started_at_ms, verify_done_at_ms,
    finished_at_ms, tool_version, log_path, chip_serial, operator_id, unit_code,
    unit_code_source, build_id_found, manifest_signed_by, engineering_mode, line";

/// The columns as SQLite returned them, before parsing the JSON and enum columns.
struct RawRow {
    row: AttemptRow,
    mode: Option<String>,
    images_sent: String,
}

fn raw_row(row: &Row) -> rusqlite::Result<RawRow> {
    let at = |index: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(row
            .get::<_, Option<i64>>(index)?
            .map(Timestamp::from_unix_ms))
    };
    let flagged: Option<String> = row.get(19)?;
    Ok(RawRow {
        mode: row.get(11)?,
        images_sent: row.get(12)?,
        row: AttemptRow {
            id: row.get(0)?,
            unit_serial: row.get(1)?,
            slot: row.get(2)?,
            port_path: row.get(3)?,
            station_id: row.get(4)?,
            work_order: row.get(5)?,
            work_order_quantity: row.get(6)?,
            product: row.get(7)?,
            region: row.get(8)?,
            build_id: row.get(9)?,
            manifest_sha256: row.get(10)?,
            mode: None,
            images_sent: Vec::new(),
            activation_sha256_found: row.get(13)?,
            verify_method: row.get(14)?,
            verify_bytes_read: row
                .get::<_, Option<i64>>(15)?
                .map(|n| u64::try_from(n).unwrap_or(0)),
            result: row.get(16)?,
            failure_code: row.get(17)?,
            failure_message: row.get(18)?,
            passed_under_other_work_orders: flagged
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
            started_at: Timestamp::from_unix_ms(row.get(20)?),
            identified_at: at(21)?,
            flash_started_at: at(22)?,
            flash_done_at: at(23)?,
            verify_started_at: at(24)?,
            verify_done_at: at(25)?,
            finished_at: at(26)?,
            tool_version: row.get(27)?,
            log_path: row.get(28)?,
            chip_serial: row.get(29)?,
            operator_id: row.get(30)?,
            unit_code: row.get(31)?,
            unit_code_source: row.get(32)?,
            build_id_found: row.get(33)?,
            manifest_signed_by: row.get(34)?,
            engineering_mode: row.get::<_, Option<i64>>(35)?.is_some_and(|v| v != 0),
            line: row.get(36)?,
            journal_uid: None,
        },
    })
}

fn finish_row(raw: RawRow) -> Result<AttemptRow, JournalError> {
    let mut row = raw.row;
    row.mode = match raw.mode {
        None => None,
        Some(text) => Some(Mode::parse(&text).ok_or_else(|| JournalError::Corrupt {
            id: row.id,
            column: "mode",
            detail: text.clone(),
        })?),
    };
    row.images_sent =
        serde_json::from_str(&raw.images_sent).map_err(|e| JournalError::Corrupt {
            id: row.id,
            column: "images_sent",
            detail: e.to_string(),
        })?;
    Ok(row)
}

pub(super) fn rows_in(
    conn: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<AttemptRow>, JournalError> {
    let mut statement = conn.prepare(sql)?;
    let raws = statement
        .query_map(args, raw_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(finish_row).collect()
}

impl AttemptRow {
    /// The last step the journal saw the attempt reach, for a sentence about where it stopped.
    pub fn last_step(&self) -> &'static str {
        if self.verify_done_at.is_some() {
            "the verdict"
        } else if self.verify_started_at.is_some() {
            "verification"
        } else if self.flash_done_at.is_some() {
            "the step after flashing"
        } else if self.flash_started_at.is_some() {
            "flashing"
        } else if self.identified_at.is_some() {
            "the step after identification"
        } else {
            "identification"
        }
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64) * 100.0 / (whole as f64))
}

impl Journal {
    /// Every attempt of the unit known as `name`, oldest first. `name` may be its serial, the
    /// chip serial it had in EDL, or its scanned code: the attempts found by it bring in every
    /// serial linked to them (an EDL attempt that failed before its reset is found by the
    /// fastboot serial of a later attempt of the same chip, and the other way round).
    pub fn history(&self, name: &str) -> Result<Vec<AttemptRow>, JournalError> {
        self.rows(
            &format!(
                "WITH found AS (
                     SELECT unit_serial, chip_serial FROM attempts
                     WHERE unit_serial = ?1 OR chip_serial = ?1 OR unit_code = ?1
                 ),
                 linked(serial) AS (
                     SELECT unit_serial FROM found WHERE unit_serial IS NOT NULL
                     UNION SELECT chip_serial FROM found WHERE chip_serial IS NOT NULL
                 )
                 SELECT {ROW_COLUMNS} FROM attempts
                 WHERE unit_serial IN linked OR chip_serial IN linked OR unit_code = ?1
                 ORDER BY id"
            ),
            name,
        )
    }

    pub fn attempt(&self, id: super::AttemptId) -> Result<Option<AttemptRow>, JournalError> {
        let mut rows = self.rows(
            &format!("SELECT {ROW_COLUMNS} FROM attempts WHERE id = ?1"),
            id.0,
        )?;
        Ok(rows.pop())
    }

    fn rows(&self, sql: &str, arg: impl rusqlite::ToSql) -> Result<Vec<AttemptRow>, JournalError> {
        rows_in(self.connection(), sql, params![arg])
    }

    pub fn report(&self, work_order: &str) -> Result<WorkOrderReport, JournalError> {
        self.report_filtered(work_order, &super::ReportFilter::default())
    }

    /// [`Journal::report`] of the attempts `filter` keeps; the over-quantity check always
    /// counts the whole order.
    pub fn report_filtered(
        &self,
        work_order: &str,
        filter: &super::ReportFilter,
    ) -> Result<WorkOrderReport, JournalError> {
        let rows = self.attempts_of(work_order, filter)?;
        let quantity_check = self.quantity_check(work_order)?;
        let mut report = WorkOrderReport {
            units_passed_in_order: quantity_check.units_passed,
            over_quantity: quantity_check.over,
            work_order: work_order.to_string(),
            products: distinct(rows.iter().map(|r| &r.product)),
            regions: distinct(rows.iter().map(|r| &r.region)),
            build_ids: distinct(rows.iter().map(|r| &r.build_id)),
            stations: distinct(rows.iter().map(|r| &r.station_id)),
            quantity: rows.iter().map(|r| r.work_order_quantity).max(),
            counts: Counts::of(&rows),
            by_line: Vec::new(),
            flagged_units: flagged_units(&rows),
            first_started_at: rows.first().map(|r| r.started_at),
            last_finished_at: rows.iter().filter_map(|r| r.finished_at).max(),
        };
        // `None` sorts first in a BTreeMap: the attempts without a line are moved last.
        let mut lines: BTreeMap<Option<&str>, Vec<AttemptRow>> = BTreeMap::new();
        for row in &rows {
            lines
                .entry(row.line.as_deref())
                .or_default()
                .push(row.clone());
        }
        let unrecorded = lines.remove(&None);
        report.by_line = lines
            .into_iter()
            .map(|(line, rows)| (line.map(str::to_string), rows))
            .chain(unrecorded.map(|rows| (None, rows)))
            .map(|(line, rows)| LineCounts {
                label: line.clone().unwrap_or_else(|| NO_LINE_RECORDED.to_string()),
                line,
                stations: distinct(rows.iter().map(|r| &r.station_id)),
                counts: Counts::of(&rows),
            })
            .collect();
        Ok(report)
    }
}

/// Units flagged as passed under another work order, each with those orders.
fn flagged_units(rows: &[AttemptRow]) -> Vec<FlaggedUnit> {
    let fastboot_serial_of = fastboot_serials(rows);
    let mut flagged: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for row in rows {
        let Some(serial) = row.unit_serial.as_deref() else {
            continue;
        };
        if row.passed_under_other_work_orders.is_empty() {
            continue;
        }
        let serial = fastboot_serial_of.get(serial).copied().unwrap_or(serial);
        let list = flagged.entry(serial).or_default();
        for other in &row.passed_under_other_work_orders {
            if !list.contains(other) {
                list.push(other.clone());
            }
        }
    }
    flagged
        .into_iter()
        .map(|(serial, others)| FlaggedUnit {
            serial: serial.to_string(),
            passed_under_other_work_orders: others,
        })
        .collect()
}

/// An EDL unit's attempts under its chip serial count with those under its fastboot serial:
/// one unit.
fn fastboot_serials(rows: &[AttemptRow]) -> BTreeMap<&str, &str> {
    rows.iter()
        .filter_map(
            |r| match (r.chip_serial.as_deref(), r.unit_serial.as_deref()) {
                (Some(chip), Some(serial)) if chip != serial => Some((chip, serial)),
                _ => None,
            },
        )
        .collect()
}

impl Counts {
    /// The counts of `rows` (oldest first).
    pub fn of(rows: &[AttemptRow]) -> Self {
        let mut counts = Counts {
            attempts: rows.len() as u64,
            ..Counts::default()
        };
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        let mut units: BTreeMap<&str, UnitTally> = BTreeMap::new();
        let fastboot_serial_of = fastboot_serials(rows);
        for row in rows {
            match row.result.as_str() {
                "PASS" => counts.attempts_passed += 1,
                "FAIL" => counts.attempts_failed += 1,
                "ABORTED" => counts.attempts_aborted += 1,
                _ => counts.attempts_in_progress += 1,
            }
            if let Some(code) = &row.failure_code {
                *codes.entry(code.clone()).or_default() += 1;
            }
            let Some(serial) = row.unit_serial.as_deref() else {
                if row.result == "PASS" || row.result == "FAIL" {
                    counts.attempts_unidentified += 1;
                }
                continue;
            };
            let serial = fastboot_serial_of.get(serial).copied().unwrap_or(serial);
            let unit = units.entry(serial).or_default();
            if unit.first_verdict_passed.is_none() && matches!(row.result.as_str(), "PASS" | "FAIL")
            {
                unit.first_verdict_passed = Some(row.result == "PASS");
            }
            unit.passed |= row.result == "PASS";
            unit.failed |= row.result == "FAIL";
            unit.open |= row.result == "IN_PROGRESS";
        }
        counts.units = units.len() as u64;
        for unit in units.values() {
            if unit.passed {
                counts.units_passed += 1;
            } else if unit.open {
            } else if unit.failed {
                counts.units_failed += 1;
            } else {
                counts.units_aborted += 1;
            }
            if unit.first_verdict_passed == Some(true) {
                counts.units_passed_first_time += 1;
            }
        }
        let decided = counts.units_passed + counts.units_failed;
        counts.yield_percent = percent(counts.units_passed, decided);
        counts.first_pass_yield_percent = percent(counts.units_passed_first_time, decided);
        let mut codes: Vec<CodeCount> = codes
            .into_iter()
            .map(|(code, count)| CodeCount { code, count })
            .collect();
        codes.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
        counts.failures_by_code = codes;
        counts
    }
}

#[derive(Default)]
struct UnitTally {
    first_verdict_passed: Option<bool>,
    passed: bool,
    failed: bool,
    open: bool,
}

fn distinct<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    out
}
