//! Fleet reports: the attempts of a work order (or of one unit) from every station, read out of
//! the fleet database into a scratch journal, so `report` and `history` say across stations
//! exactly what they say of one journal (the same counting, the same over-quantity check, the
//! same CSV). Rows read back from the scratch journal are given their fleet attempt id again
//! ([`FleetCopy::with_fleet_ids`]): the scratch journal numbers them its own way.

use std::collections::BTreeMap;

use postgres::Row;

use super::FleetError;
use crate::journal::{AttemptRow, Cell, ColumnKind, Journal, SHIPPED_COLUMNS};

/// Which attempts to copy.
#[derive(Debug, Clone, Copy)]
pub enum FleetSelection<'a> {
    /// Every attempt of the work order.
    WorkOrder(&'a str),
    /// Every attempt of the unit known by this serial, chip serial or code, and of the serials
    /// linked to it.
    Unit(&'a str),
}

/// A scratch journal holding the selected fleet rows; removed when dropped.
pub struct FleetCopy {
    pub journal: Journal,
    /// Each scratch row's fleet attempt id: (journal uid, row in that journal).
    fleet_ids: BTreeMap<i64, (String, i64)>,
    _dir: tempfile::TempDir,
}

impl FleetCopy {
    /// `rows` read from the scratch journal, each with its fleet attempt id: `id` the row in
    /// its station's journal, `journal_uid` that journal.
    pub fn with_fleet_ids(&self, rows: Vec<AttemptRow>) -> Vec<AttemptRow> {
        rows.into_iter()
            .map(|mut row| {
                if let Some((uid, journal_row)) = self.fleet_ids.get(&row.id) {
                    row.id = *journal_row;
                    row.journal_uid = Some(uid.clone());
                }
                row
            })
            .collect()
    }
}

/// The shipped columns, after the two of the attempt id.
fn columns() -> String {
    let names: Vec<&str> = SHIPPED_COLUMNS.iter().map(|(name, _)| *name).collect();
    format!("journal_uid, journal_row, {}", names.join(", "))
}

/// Copies the selected attempts, in the order they finished (then by station and row), into a
/// new scratch journal.
pub fn copy(
    client: &mut postgres::Client,
    selection: FleetSelection<'_>,
) -> Result<FleetCopy, FleetError> {
    let order = "ORDER BY finished_at_ms NULLS LAST, station_id, journal_uid, journal_row";
    let rows = match selection {
        FleetSelection::WorkOrder(work_order) => client.query(
            &format!(
                "SELECT {} FROM attempts WHERE work_order = $1 {order}",
                columns()
            ),
            &[&work_order],
        )?,
        FleetSelection::Unit(name) => client.query(
            &format!(
                "WITH found AS (
                     SELECT unit_serial, chip_serial FROM attempts
                     WHERE unit_serial = $1 OR chip_serial = $1 OR unit_code = $1
                 ),
                 linked AS (
                     SELECT unit_serial AS serial FROM found WHERE unit_serial IS NOT NULL
                     UNION SELECT chip_serial FROM found WHERE chip_serial IS NOT NULL
                 )
                 SELECT {} FROM attempts
                 WHERE unit_serial IN (SELECT serial FROM linked)
                    OR chip_serial IN (SELECT serial FROM linked) OR unit_code = $1
                 {order}",
                columns()
            ),
            &[&name],
        )?,
    };
    let dir = tempfile::tempdir()
        .map_err(|e| FleetError::Sql(format!("cannot make a scratch journal: {e}")))?;
    let mut journal = Journal::open(&dir.path().join("fleet.sqlite"))?;
    let cells: Vec<Vec<Cell>> = rows.iter().map(cells_of).collect();
    let scratch_ids = journal.import_rows(&cells)?;
    let fleet_ids = scratch_ids
        .into_iter()
        .zip(rows.iter().map(|row| (row.get(0), row.get(1))))
        .collect();
    Ok(FleetCopy {
        journal,
        fleet_ids,
        _dir: dir,
    })
}

fn cells_of(row: &Row) -> Vec<Cell> {
    SHIPPED_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            ColumnKind::Text => Cell::Text(row.get(i + 2)),
            ColumnKind::Int => Cell::Int(row.get(i + 2)),
        })
        .collect()
}
