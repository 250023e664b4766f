//! Fleet reports: the attempts of a work order (or of one unit) from every station, read out of
//! the fleet database into a scratch journal, so `report` and `history` say across stations
//! exactly what they say of one journal (the same counting, the same over-quantity check, the
//! same CSV).

use postgres::Row;

use super::FleetError;
use crate::journal::{Cell, ColumnKind, Journal, SHIPPED_COLUMNS};

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
    _dir: tempfile::TempDir,
}

fn columns() -> String {
    SHIPPED_COLUMNS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
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
    journal.import_rows(&cells)?;
    Ok(FleetCopy { journal, _dir: dir })
}

fn cells_of(row: &Row) -> Vec<Cell> {
    SHIPPED_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            ColumnKind::Text => Cell::Text(row.get(i)),
            ColumnKind::Int => Cell::Int(row.get(i)),
        })
        .collect()
}
