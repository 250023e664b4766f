//! The fleet database's schema: plain versioned SQL, applied in order by `flashgate fleet
//! migrate` (each step in one transaction, under an advisory lock so two stations migrating at
//! once do not race). Stations check the version when they connect and refuse a database that
//! is older (run the migration) or newer (upgrade flashgate) than they know.

use super::FleetError;

/// Step N brings the schema from version N to N + 1.
const STEPS: &[&str] = &[V1, V2_ADD_LINE, V3_STATION_HEARTBEATS];

pub const FLEET_SCHEMA_VERSION: i32 = 3;

/// v1. `attempts` holds the journal's columns (journal/outbox.rs: SHIPPED_COLUMNS, all integers
/// as BIGINT) under the attempt id (journal uid, journal row); `over_quantity` flags a pass
/// reconciled after an outage beyond its work order's quantity. `work_orders` and `places` are
/// the quantity every station working an order shares: a unit holds a place (by serial) from
/// before its flashing until its row is shipped (FAIL and ABORTED give it back).
const V1: &str = "
CREATE TABLE attempts (
    journal_uid                    TEXT NOT NULL,
    journal_row                    BIGINT NOT NULL,
    station_id                     TEXT NOT NULL,
    slot                           BIGINT NOT NULL,
    port_path                      TEXT NOT NULL,
    unit_serial                    TEXT,
    chip_serial                    TEXT,
    unit_code                      TEXT,
    unit_code_source               TEXT,
    operator_id                    TEXT,
    work_order                     TEXT NOT NULL,
    work_order_quantity            BIGINT NOT NULL,
    product                        TEXT NOT NULL,
    region                         TEXT NOT NULL,
    build_id                       TEXT NOT NULL,
    manifest_sha256                TEXT NOT NULL,
    mode                           TEXT,
    images_sent                    TEXT NOT NULL,
    activation_sha256_found        TEXT,
    verify_method                  TEXT,
    verify_bytes_read              BIGINT,
    result                         TEXT NOT NULL CHECK (result IN ('PASS', 'FAIL', 'ABORTED')),
    failure_code                   TEXT,
    failure_message                TEXT,
    passed_under_other_work_orders TEXT,
    started_at_ms                  BIGINT NOT NULL,
    identified_at_ms               BIGINT,
    flash_started_at_ms            BIGINT,
    flash_done_at_ms               BIGINT,
    verify_started_at_ms           BIGINT,
    verify_done_at_ms              BIGINT,
    finished_at_ms                 BIGINT,
    tool_version                   TEXT NOT NULL,
    log_path                       TEXT,
    fleet_place                    TEXT,
    seen_elsewhere                 TEXT,
    build_id_found                 TEXT,
    manifest_signed_by             TEXT,
    engineering_mode               BIGINT,
    chain_seq                      BIGINT,
    chain_version                  BIGINT,
    content_sha256                 TEXT,
    chain_prev                     TEXT,
    chain_link                     TEXT,
    over_quantity                  BOOLEAN NOT NULL DEFAULT false,
    shipped_at                     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (journal_uid, journal_row)
);
CREATE INDEX attempts_by_serial ON attempts (unit_serial);
CREATE INDEX attempts_by_chip_serial ON attempts (chip_serial);
CREATE INDEX attempts_by_work_order ON attempts (work_order, result);
CREATE INDEX attempts_by_station ON attempts (station_id, journal_row);
CREATE TABLE work_orders (
    work_order TEXT PRIMARY KEY,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE places (
    work_order  TEXT NOT NULL REFERENCES work_orders,
    unit_serial TEXT NOT NULL,
    holder_uid  TEXT NOT NULL,
    holder_row  BIGINT NOT NULL,
    station_id  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('reserved', 'passed')),
    since       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (work_order, unit_serial)
);
CREATE INDEX places_by_holder ON places (holder_uid, holder_row);
";

/// v2: the production line each attempt was made on (the journal's `line`, NULL for rows
/// shipped before it or by a station that names no line), and an index for the report by
/// line within a work order.
const V2_ADD_LINE: &str = "
ALTER TABLE attempts ADD COLUMN line TEXT;
CREATE INDEX attempts_by_line ON attempts (work_order, line, result);
";

/// v3. Each station's heartbeat (under its journal uid, the `places.holder_uid` of its units),
/// written by the database's clock whenever the station asks about its work order: a reserved
/// place whose holder has not been heard from for the lease (station.yaml
/// `fleet.place_lease_secs`) is given to another station that needs it.
const V3_STATION_HEARTBEATS: &str = "
CREATE TABLE station_heartbeats (
    journal_uid TEXT PRIMARY KEY,
    station_id  TEXT NOT NULL,
    heard_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
";

/// Where the schema's version lives; created by the first migration.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS fleet_schema (version INTEGER NOT NULL)";

/// Any number the migration lock is known by (fixed, so every station takes the same lock).
const MIGRATION_LOCK: i64 = 0x666c_6565_7431;

/// The schema's version in the database (0: none yet).
pub fn version(client: &mut postgres::Client) -> Result<i32, FleetError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('fleet_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client.query_opt("SELECT max(version) FROM fleet_schema", &[])?;
    Ok(row.and_then(|r| r.get::<_, Option<i32>>(0)).unwrap_or(0))
}

/// Brings the schema to [`FLEET_SCHEMA_VERSION`]; returns (version before, version after).
pub fn migrate(client: &mut postgres::Client) -> Result<(i32, i32), FleetError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(VERSION_TABLE)?;
    let before: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM fleet_schema", &[])?
        .get(0);
    if before > FLEET_SCHEMA_VERSION {
        return Err(FleetError::NewerSchema {
            found: before,
            supported: FLEET_SCHEMA_VERSION,
        });
    }
    for step in STEPS.iter().skip(usize::try_from(before).unwrap_or(0)) {
        tx.batch_execute(step)?;
    }
    tx.execute("DELETE FROM fleet_schema", &[])?;
    tx.execute(
        "INSERT INTO fleet_schema (version) VALUES ($1)",
        &[&FLEET_SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok((before, FLEET_SCHEMA_VERSION))
}

/// Refuses a database whose schema this flashgate does not know as current.
pub fn check(client: &mut postgres::Client) -> Result<(), FleetError> {
    match version(client)? {
        FLEET_SCHEMA_VERSION => Ok(()),
        found if found > FLEET_SCHEMA_VERSION => Err(FleetError::NewerSchema {
            found,
            supported: FLEET_SCHEMA_VERSION,
        }),
        found => Err(FleetError::OlderSchema {
            found,
            supported: FLEET_SCHEMA_VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_per_version() {
        assert_eq!(STEPS.len(), usize::try_from(FLEET_SCHEMA_VERSION).unwrap());
        // Every journal column shipped has its column in the fleet's attempts table.
        let schema = STEPS.concat();
        for (name, _) in crate::journal::SHIPPED_COLUMNS {
            assert!(
                schema.contains(&format!("\n    {name} "))
                    || schema.contains(&format!("ADD COLUMN {name} ")),
                "shipped column `{name}` is in no fleet schema step"
            );
        }
    }
}
