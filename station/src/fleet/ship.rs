//! Shipping journal rows into the fleet database: one transaction per batch, each row inserted
//! under its attempt id (journal uid, row) so a row sent twice is stored once, and each newly
//! stored row settling the place its unit held in the work order's quantity.

use postgres::types::ToSql;
use postgres::Transaction;

use super::FleetError;
use crate::journal::{Cell, ShippedRow, SHIPPED_COLUMNS};

fn insert_statement() -> String {
    let names: Vec<&str> = SHIPPED_COLUMNS.iter().map(|(name, _)| *name).collect();
    let placeholders: Vec<String> = (3..names.len() + 3).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO attempts (journal_uid, journal_row, {}) VALUES ($1, $2, {})
         ON CONFLICT (journal_uid, journal_row) DO NOTHING RETURNING journal_row",
        names.join(", "),
        placeholders.join(", ")
    )
}

/// Ships `rows` (of the journal `journal_uid`) in one transaction; returns once the fleet
/// database has committed them. Rows it already holds are left as they are.
pub fn ship(
    client: &mut postgres::Client,
    journal_uid: &str,
    rows: &[ShippedRow],
) -> Result<(), FleetError> {
    let mut tx = client.transaction()?;
    let insert = tx.prepare(&insert_statement())?;
    for row in rows {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&journal_uid, &row.row];
        for cell in &row.cells {
            params.push(match cell {
                Cell::Text(value) => value,
                Cell::Int(value) => value,
            });
        }
        if tx.query_opt(&insert, &params)?.is_some() {
            settle(&mut tx, journal_uid, row)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A finished attempt's place in its work order's quantity: a PASS keeps the place it held
/// (now `passed`), a FAIL or ABORTED gives it back. A PASS that held no place (let through on
/// the station's offline allowance) takes one now, and is flagged `over_quantity` when that
/// puts the work order's passed units beyond its quantity.
fn settle(tx: &mut Transaction<'_>, journal_uid: &str, row: &ShippedRow) -> Result<(), FleetError> {
    let passed = row.text("result") == Some("PASS");
    let held = tx
        .query_opt(
            "SELECT unit_serial FROM places WHERE holder_uid = $1 AND holder_row = $2 FOR UPDATE",
            &[&journal_uid, &row.row],
        )?
        .is_some();
    if held {
        if passed {
            tx.execute(
                "UPDATE places SET state = 'passed', since = now()
                 WHERE holder_uid = $1 AND holder_row = $2",
                &[&journal_uid, &row.row],
            )?;
        } else {
            tx.execute(
                "DELETE FROM places WHERE holder_uid = $1 AND holder_row = $2",
                &[&journal_uid, &row.row],
            )?;
        }
        return Ok(());
    }
    let (Some(work_order), Some(serial), true) =
        (row.text("work_order"), row.text("unit_serial"), passed)
    else {
        return Ok(());
    };
    let quantity = row.int("work_order_quantity").unwrap_or(0).max(1);
    let station = row.text("station_id").unwrap_or_default();
    tx.execute(
        "INSERT INTO work_orders (work_order, quantity) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&work_order, &quantity],
    )?;
    let quantity: i64 = tx
        .query_one(
            "SELECT quantity FROM work_orders WHERE work_order = $1 FOR UPDATE",
            &[&work_order],
        )?
        .get(0);
    let took = tx.execute(
        "INSERT INTO places (work_order, unit_serial, holder_uid, holder_row, station_id, state)
         VALUES ($1, $2, $3, $4, $5, 'passed') ON CONFLICT DO NOTHING",
        &[&work_order, &serial, &journal_uid, &row.row, &station],
    )?;
    if took == 0 {
        // The unit had passed this order already (a re-flash): it is one unit, not two.
        return Ok(());
    }
    let passed_units: i64 = tx
        .query_one(
            "SELECT count(*) FROM places WHERE work_order = $1 AND state = 'passed'",
            &[&work_order],
        )?
        .get(0);
    if passed_units > quantity {
        tx.execute(
            "UPDATE attempts SET over_quantity = true WHERE journal_uid = $1 AND journal_row = $2",
            &[&journal_uid, &row.row],
        )?;
        tracing::warn!(
            work_order,
            serial,
            station,
            passed_units,
            quantity,
            "a unit passed on a station's offline allowance put the work order beyond its \
             quantity: flagged over_quantity in the fleet record"
        );
    }
    Ok(())
}
