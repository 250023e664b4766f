//! The journal as the fleet's outbox: which finished rows the fleet database has not committed
//! yet, the columns shipped for each, and the mark set once it has.
//!
//! The shipped row is one list of columns ([`SHIPPED_COLUMNS`]), read from the journal and
//! written to the fleet database under the same names: a column the journal gains (a chain
//! hash) is shipped by adding it here and to the fleet schema (`fleet/schema.rs`).

use std::time::SystemTime;

use rusqlite::params;

use super::record::millis;
use super::{AttemptId, Journal, JournalError};

/// How a shipped column is typed on both sides (SQLite INTEGER ↔ BIGINT, TEXT ↔ TEXT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    Int,
}

/// Every column of an attempt the fleet database receives, besides its attempt id.
pub const SHIPPED_COLUMNS: &[(&str, ColumnKind)] = &[
    ("station_id", ColumnKind::Text),
    ("slot", ColumnKind::Int),
    ("port_path", ColumnKind::Text),
    ("unit_serial", ColumnKind::Text),
    ("chip_serial", ColumnKind::Text),
    ("unit_code", ColumnKind::Text),
    ("unit_code_source", ColumnKind::Text),
    ("operator_id", ColumnKind::Text),
    ("work_order", ColumnKind::Text),
    ("work_order_quantity", ColumnKind::Int),
    ("product", ColumnKind::Text),
    ("region", ColumnKind::Text),
    ("build_id", ColumnKind::Text),
    ("manifest_sha256", ColumnKind::Text),
    ("mode", ColumnKind::Text),
    ("images_sent", ColumnKind::Text),
    ("activation_sha256_found", ColumnKind::Text),
    ("verify_method", ColumnKind::Text),
    ("verify_bytes_read", ColumnKind::Int),
    ("result", ColumnKind::Text),
    ("failure_code", ColumnKind::Text),
    ("failure_message", ColumnKind::Text),
    ("passed_under_other_work_orders", ColumnKind::Text),
    ("started_at_ms", ColumnKind::Int),
    ("identified_at_ms", ColumnKind::Int),
    ("flash_started_at_ms", ColumnKind::Int),
    ("flash_done_at_ms", ColumnKind::Int),
    ("verify_started_at_ms", ColumnKind::Int),
    ("verify_done_at_ms", ColumnKind::Int),
    ("finished_at_ms", ColumnKind::Int),
    ("tool_version", ColumnKind::Text),
    ("log_path", ColumnKind::Text),
    ("fleet_place", ColumnKind::Text),
    ("seen_elsewhere", ColumnKind::Text),
    ("build_id_found", ColumnKind::Text),
    ("manifest_signed_by", ColumnKind::Text),
    ("engineering_mode", ColumnKind::Int),
    // The row's place in its station's hash chain (trust::chain), so that the fleet's copy can
    // be held against the station's journal and its signed unit proofs.
    ("chain_seq", ColumnKind::Int),
    ("chain_version", ColumnKind::Int),
    ("content_sha256", ColumnKind::Text),
    ("chain_prev", ColumnKind::Text),
    ("chain_link", ColumnKind::Text),
    // Added by the fleet schema's v2: a database still at v1 is refused (run `fleet migrate`).
    ("line", ColumnKind::Text),
];

/// One value of a shipped column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A finished attempt as shipped: its journal row id and [`SHIPPED_COLUMNS`]' values in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedRow {
    pub row: i64,
    pub cells: Vec<Cell>,
}

impl ShippedRow {
    fn cell(&self, name: &str) -> Option<&Cell> {
        let index = SHIPPED_COLUMNS.iter().position(|(n, _)| *n == name)?;
        self.cells.get(index)
    }

    /// A text column by name (None: NULL, or no such column).
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.cell(name)? {
            Cell::Text(value) => value.as_deref(),
            Cell::Int(_) => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.cell(name)? {
            Cell::Int(value) => *value,
            Cell::Text(_) => None,
        }
    }
}

/// What is waiting to be shipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Finished attempts the fleet database has not committed.
    pub rows: u64,
    /// When the oldest of them finished (ms since the epoch).
    pub oldest_finished_ms: Option<i64>,
    /// Attempts the fleet database has committed, from this journal.
    pub shipped: u64,
    /// The highest row id among them.
    pub last_shipped_row: Option<i64>,
}

impl Journal {
    /// This journal file's own random id (made when the journal was created or migrated).
    pub fn uid(&self) -> Result<String, JournalError> {
        Ok(self
            .conn
            .query_row("SELECT uid FROM journal_identity LIMIT 1", [], |row| {
                row.get(0)
            })?)
    }

    /// Up to `limit` finished rows not yet committed by the fleet database, oldest row first.
    pub fn unshipped(&self, limit: usize) -> Result<Vec<ShippedRow>, JournalError> {
        let columns: Vec<&str> = SHIPPED_COLUMNS.iter().map(|(name, _)| *name).collect();
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT id, {} FROM attempts
             WHERE fleet_synced_at_ms IS NULL AND result <> 'IN_PROGRESS'
             ORDER BY id LIMIT ?1",
            columns.join(", ")
        ))?;
        let rows = statement.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            let mut cells = Vec::with_capacity(SHIPPED_COLUMNS.len());
            for (index, (_, kind)) in SHIPPED_COLUMNS.iter().enumerate() {
                cells.push(match kind {
                    ColumnKind::Text => Cell::Text(row.get(index + 1)?),
                    ColumnKind::Int => Cell::Int(row.get(index + 1)?),
                });
            }
            Ok(ShippedRow {
                row: row.get(0)?,
                cells,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The fleet database committed these rows: they leave the backlog (one durable
    /// transaction; a crash before it only ships them again, which the fleet ignores).
    pub fn mark_shipped(&mut self, rows: &[i64], at: SystemTime) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        {
            let mut statement = tx.prepare_cached(
                "UPDATE attempts SET fleet_synced_at_ms = ?1
                 WHERE id = ?2 AND fleet_synced_at_ms IS NULL",
            )?;
            for row in rows {
                statement.execute(params![millis(at), row])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn backlog(&self) -> Result<Backlog, JournalError> {
        let (rows, oldest, shipped, last): (i64, Option<i64>, i64, Option<i64>) =
            self.conn.query_row(
                "SELECT
                     COUNT(*) FILTER (WHERE fleet_synced_at_ms IS NULL),
                     MIN(finished_at_ms) FILTER (WHERE fleet_synced_at_ms IS NULL),
                     COUNT(*) FILTER (WHERE fleet_synced_at_ms IS NOT NULL),
                     MAX(id) FILTER (WHERE fleet_synced_at_ms IS NOT NULL)
                 FROM attempts WHERE result <> 'IN_PROGRESS'",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )?;
        Ok(Backlog {
            rows: u64::try_from(rows).unwrap_or(0),
            oldest_finished_ms: oldest,
            shipped: u64::try_from(shipped).unwrap_or(0),
            last_shipped_row: last,
        })
    }

    /// Records how the fleet let the unit through (`reserved`, `offline`) and what it knew of
    /// the serial (None: nothing).
    pub fn set_fleet_place(
        &mut self,
        id: AttemptId,
        place: &str,
        seen_elsewhere: Option<&str>,
    ) -> Result<(), JournalError> {
        self.conn.execute(
            "UPDATE attempts SET fleet_place = ?1, seen_elsewhere = ?2
             WHERE id = ?3 AND result = 'IN_PROGRESS'",
            params![place, seen_elsewhere, id.0],
        )?;
        Ok(())
    }

    /// Writes attempts given as [`SHIPPED_COLUMNS`] values into this journal, as new rows (a
    /// scratch journal of fleet rows for a report), in one transaction; returns their ids.
    pub fn import_rows(&mut self, rows: &[Vec<Cell>]) -> Result<Vec<i64>, JournalError> {
        let names: Vec<&str> = SHIPPED_COLUMNS.iter().map(|(name, _)| *name).collect();
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(rows.len());
        {
            let mut insert = tx.prepare(&format!(
                "INSERT INTO attempts ({}) VALUES ({})",
                names.join(", "),
                placeholders.join(", ")
            ))?;
            for row in rows {
                let values: Vec<&dyn rusqlite::ToSql> = row
                    .iter()
                    .map(|cell| match cell {
                        Cell::Text(value) => value as &dyn rusqlite::ToSql,
                        Cell::Int(value) => value as &dyn rusqlite::ToSql,
                    })
                    .collect();
                insert.execute(values.as_slice())?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Units let through on the station's own allowance that the fleet has not reconciled yet
    /// (their rows are not shipped), failed ones excepted: they took no place.
    pub fn offline_places_open(&self) -> Result<u32, JournalError> {
        let count: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM attempts
             WHERE fleet_place = 'offline' AND fleet_synced_at_ms IS NULL
               AND result IN ('IN_PROGRESS', 'PASS')",
            [],
            |row| row.get(0),
        )?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_column_exists_in_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        assert!(journal.unshipped(10).unwrap().is_empty());
        assert_eq!(journal.uid().unwrap().len(), 32);
        assert_eq!(journal.backlog().unwrap(), Backlog::default());
    }
}
