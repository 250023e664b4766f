//! Shipping journal rows into the fleet database: one transaction per batch, each row inserted
//! under its attempt id (journal uid, row) so a row sent twice is stored once, and each newly
//! stored row settling the place its unit held in the work order's quantity.

use std::collections::BTreeMap;

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
    lock_work_orders(&mut tx, rows)?;
    let insert = tx.prepare(&insert_statement())?;
    // Passes that held no place, by work order: reconciled last.
    let mut unplaced: BTreeMap<&str, Vec<&ShippedRow>> = BTreeMap::new();
    // Passes that kept the place they held, by work order: checked against the quantity too,
    // since a place can lapse to another station while its holder still passes its unit.
    let mut placed: BTreeMap<&str, Vec<&ShippedRow>> = BTreeMap::new();
    for row in rows {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&journal_uid, &row.row];
        for cell in &row.cells {
            params.push(match cell {
                Cell::Text(value) => value,
                Cell::Int(value) => value,
            });
        }
        if tx.query_opt(&insert, &params)?.is_none() {
            continue;
        }
        let held = settle_held(&mut tx, journal_uid, row)?;
        let passed = row.text("result") == Some("PASS");
        if let (true, Some(work_order), Some(_)) =
            (passed, row.text("work_order"), row.text("unit_serial"))
        {
            let by_order = if held { &mut placed } else { &mut unplaced };
            by_order.entry(work_order).or_default().push(row);
        }
    }
    for (work_order, passes) in placed {
        flag_beyond_quantity(&mut tx, journal_uid, work_order, &passes)?;
    }
    for (work_order, passes) in unplaced {
        reconcile(&mut tx, journal_uid, work_order, &passes)?;
    }
    tx.commit()?;
    Ok(())
}

/// Takes the row locks of the work orders `rows` belong to, in one order (the one every station
/// and the reservation gate take them in), before any place is touched: a place and its order
/// are then never locked the other way round, and the passed count each check reads is final.
fn lock_work_orders(tx: &mut Transaction<'_>, rows: &[ShippedRow]) -> Result<(), FleetError> {
    let mut orders: Vec<&str> = rows.iter().filter_map(|r| r.text("work_order")).collect();
    orders.sort_unstable();
    orders.dedup();
    if !orders.is_empty() {
        tx.query(
            "SELECT 1 FROM work_orders WHERE work_order = ANY($1) ORDER BY work_order FOR UPDATE",
            &[&orders],
        )?;
    }
    Ok(())
}

/// Passes that kept their places: when the order's passed units now exceed its quantity (a
/// place that lapsed to another station while its holder was silent, both units then passing),
/// the passes beyond it are flagged `over_quantity`, the latest first.
fn flag_beyond_quantity(
    tx: &mut Transaction<'_>,
    journal_uid: &str,
    work_order: &str,
    passes: &[&ShippedRow],
) -> Result<(), FleetError> {
    let Some(counts) = tx.query_opt(
        "SELECT quantity, (SELECT count(*) FROM places
                           WHERE work_order = $1 AND state = 'passed')
         FROM work_orders WHERE work_order = $1",
        &[&work_order],
    )?
    else {
        return Ok(());
    };
    let (quantity, passed_units): (i64, i64) = (counts.get(0), counts.get(1));
    let beyond = usize::try_from(passed_units - quantity).unwrap_or(0);
    for row in passes.iter().rev().take(beyond) {
        flag_over_quantity(tx, journal_uid, row)?;
        tracing::warn!(
            work_order,
            serial = row.text("unit_serial").unwrap_or_default(),
            passed_units,
            quantity,
            "a unit passed on a place another station's unit had also held (its lease lapsed) \
             put the work order beyond its quantity: flagged over_quantity in the fleet record"
        );
    }
    Ok(())
}

/// Marks the stored attempt `row` as a pass beyond its work order's quantity.
fn flag_over_quantity(
    tx: &mut Transaction<'_>,
    journal_uid: &str,
    row: &ShippedRow,
) -> Result<(), FleetError> {
    tx.execute(
        "UPDATE attempts SET over_quantity = true WHERE journal_uid = $1 AND journal_row = $2",
        &[&journal_uid, &row.row],
    )?;
    Ok(())
}

/// A finished attempt gives back or keeps the place it held in its work order's quantity: a
/// PASS keeps it (now `passed`), a FAIL or ABORTED frees it. Returns whether it held one.
fn settle_held(
    tx: &mut Transaction<'_>,
    journal_uid: &str,
    row: &ShippedRow,
) -> Result<bool, FleetError> {
    let statement = if row.text("result") == Some("PASS") {
        "UPDATE places SET state = 'passed', since = now()
         WHERE holder_uid = $1 AND holder_row = $2 RETURNING 1"
    } else {
        "DELETE FROM places WHERE holder_uid = $1 AND holder_row = $2 RETURNING 1"
    };
    Ok(tx
        .query_opt(statement, &[&journal_uid, &row.row])?
        .is_some())
}

/// Passes that held no place (let through on a station's offline allowance, or made before
/// the station had a fleet database) take one now; one that puts the work order's passed units
/// beyond its quantity is flagged `over_quantity`.
fn reconcile(
    tx: &mut Transaction<'_>,
    journal_uid: &str,
    work_order: &str,
    passes: &[&ShippedRow],
) -> Result<(), FleetError> {
    let quantity = passes
        .iter()
        .filter_map(|row| row.int("work_order_quantity"))
        .max()
        .unwrap_or(1)
        .max(1);
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
    let mut passed_units: i64 = tx
        .query_one(
            "SELECT count(*) FROM places WHERE work_order = $1 AND state = 'passed'",
            &[&work_order],
        )?
        .get(0);
    for row in passes {
        let serial = row.text("unit_serial").unwrap_or_default();
        let station = row.text("station_id").unwrap_or_default();
        let took = tx.execute(
            "INSERT INTO places (work_order, unit_serial, holder_uid, holder_row, station_id,
                 state)
             VALUES ($1, $2, $3, $4, $5, 'passed') ON CONFLICT DO NOTHING",
            &[&work_order, &serial, &journal_uid, &row.row, &station],
        )?;
        // Zero: the unit had passed this order already (a re-flash): one unit, not two.
        if took == 0 {
            continue;
        }
        passed_units += 1;
        if passed_units > quantity {
            flag_over_quantity(tx, journal_uid, row)?;
            tracing::warn!(
                work_order,
                serial,
                station,
                passed_units,
                quantity,
                "a unit passed without a place (a station's offline allowance) put the work \
                 order beyond its quantity: flagged over_quantity in the fleet record"
            );
        }
    }
    Ok(())
}
