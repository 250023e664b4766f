//! The journal's SQLite schema and its version. The version lives in `PRAGMA user_version`;
//! a journal written by a newer flashgate is refused rather than misread.

use rusqlite::Connection;

use super::JournalError;

pub const SCHEMA_VERSION: i64 = 7;

/// v2: `ABORTED`, an attempt the station cut before a verdict (a stop, a crash found at the next
/// start). SQLite cannot change a CHECK constraint in place, so v1 journals are rebuilt (same
/// rows, same ids) in one transaction.
const SCHEMA_V2: &str = "
CREATE TABLE attempts (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_serial             TEXT,
    slot                    INTEGER NOT NULL,
    port_path               TEXT NOT NULL,
    station_id              TEXT NOT NULL,
    work_order              TEXT NOT NULL,
    work_order_quantity     INTEGER NOT NULL,
    product                 TEXT NOT NULL,
    region                  TEXT NOT NULL,
    build_id                TEXT NOT NULL,
    manifest_sha256         TEXT NOT NULL,
    mode                    TEXT CHECK (mode IN ('fastboot', 'edl')),
    images_sent             TEXT NOT NULL DEFAULT '[]',
    activation_sha256_found TEXT,
    verify_method           TEXT,
    verify_bytes_read       INTEGER,
    result                  TEXT NOT NULL
                            CHECK (result IN ('IN_PROGRESS', 'PASS', 'FAIL', 'ABORTED')),
    failure_code            TEXT,
    failure_message         TEXT,
    passed_under_other_work_orders TEXT,
    started_at_ms           INTEGER NOT NULL,
    identified_at_ms        INTEGER,
    flash_started_at_ms     INTEGER,
    flash_done_at_ms        INTEGER,
    verify_started_at_ms    INTEGER,
    verify_done_at_ms       INTEGER,
    finished_at_ms          INTEGER,
    tool_version            TEXT NOT NULL,
    log_path                TEXT,
    CHECK ((result = 'FAIL') = (failure_code IS NOT NULL))
);
CREATE INDEX attempts_by_serial ON attempts (unit_serial);
CREATE INDEX attempts_by_work_order ON attempts (work_order);
";

#[cfg(test)]
pub(super) const SCHEMA_V2_FOR_TESTS: &str = SCHEMA_V2;

const MIGRATE_V1_TO_V2: &str = "
ALTER TABLE attempts RENAME TO attempts_v1;
DROP INDEX attempts_by_serial;
DROP INDEX attempts_by_work_order;
";

const COPY_V1_ROWS: &str = "
INSERT INTO attempts SELECT * FROM attempts_v1;
DROP TABLE attempts_v1;
";

/// v3: one identity per unit and what links a unit to the line's MES.
/// - `chip_serial`: the Qualcomm chip serial (Sahara) of a unit identified in EDL. A unit
///   verified through fastboot after its EDL reset has its fastboot serial in `unit_serial`;
///   `history` finds it by either.
/// - `operator_id`: who ran the station (`--operator`, station.yaml `operator`).
/// - `unit_code`, `unit_code_source`: the unit's IMEI or label code and where it came from
///   (`getvar:<name>`, as the product's `identity.unit_code` names it).
///
/// New nullable columns: added in place, old rows keep NULL.
const MIGRATE_V2_TO_V3: &str = "
ALTER TABLE attempts ADD COLUMN chip_serial TEXT;
ALTER TABLE attempts ADD COLUMN operator_id TEXT;
ALTER TABLE attempts ADD COLUMN unit_code TEXT;
ALTER TABLE attempts ADD COLUMN unit_code_source TEXT;
CREATE INDEX attempts_by_chip_serial ON attempts (chip_serial);
CREATE INDEX attempts_by_unit_code ON attempts (unit_code);
";

/// v4: the build identity the phone was found to hold.
/// - `build_id_found`: `ro.build.display.id` from the `build.prop` read back from the phone
///   with its activation client (NULL when it was not read: a raw-range or device-digest client,
///   a unit that failed before verification, or a phone without one).
///
/// New nullable columns: added in place, old rows keep NULL.
const MIGRATE_ADD_BUILD_IDENTITY: &str = "
ALTER TABLE attempts ADD COLUMN build_id_found TEXT;
";

/// v4 as well: how the station trusted the manifest it flashed from.
/// - `manifest_signed_by`: the pinned key whose minisign signature verified the manifest,
///   `name (key id ID)` (NULL when none did: a station in engineering mode, or an older row).
/// - `engineering_mode`: 1 when the station ran in engineering mode (manifest signatures not
///   enforced); NULL otherwise. A unit of such a run is not to be shipped.
const MIGRATE_ADD_MANIFEST_TRUST: &str = "
ALTER TABLE attempts ADD COLUMN manifest_signed_by TEXT;
ALTER TABLE attempts ADD COLUMN engineering_mode INTEGER;
";

/// v5: the hash chain and the signed unit proofs (see `trust::chain` for the encoding).
/// - `chain_seq`: the row's place in its station's chain (1, 2, …), set when the row gets its
///   verdict (a row joins the chain when it is final, not when it opens);
/// - `chain_version`: the content encoding it was hashed with;
/// - `content_sha256`, `chain_prev`, `chain_link`: the hash of its content, the link of the row
///   before it (the genesis value for seq 1) and its own link, 64 hex digits each.
/// - `chain_origin`: one row, the highest attempt id when the journal started chaining: finished
///   rows up to it without a chain position are "before the chain", not tampered.
/// - `unit_proofs`: the signed statement (JSON) and its minisign signature for a PASS, written
///   in the verdict's transaction.
///
/// New nullable columns and new tables: added in place, old rows keep NULL.
const MIGRATE_ADD_CHAIN: &str = "
ALTER TABLE attempts ADD COLUMN chain_seq INTEGER;
ALTER TABLE attempts ADD COLUMN chain_version INTEGER;
ALTER TABLE attempts ADD COLUMN content_sha256 TEXT;
ALTER TABLE attempts ADD COLUMN chain_prev TEXT;
ALTER TABLE attempts ADD COLUMN chain_link TEXT;
CREATE UNIQUE INDEX attempts_by_chain ON attempts (station_id, chain_seq);
CREATE TABLE chain_origin (before_id INTEGER NOT NULL);
INSERT INTO chain_origin SELECT COALESCE(MAX(id), 0) FROM attempts;
CREATE TABLE unit_proofs (
    attempt_id  INTEGER PRIMARY KEY REFERENCES attempts (id),
    statement   TEXT NOT NULL,
    signature   TEXT NOT NULL
);
";

/// v6: the outbox to the fleet database (`station/src/fleet`).
/// - `journal_identity`: one random id for this journal file, so the fleet tells the rows of
///   two journals apart even when a station id is reused (the fleet's attempt id is this uid
///   plus the row id: re-sending a row is harmless).
/// - `fleet_synced_at_ms`: when the fleet database committed the row (NULL: not yet; the
///   backlog is the finished rows without it).
/// - `fleet_place`: how the unit was let through the work order's shared quantity:
///   `reserved` (a place held in the fleet database) or `offline` (on the station's own
///   allowance while the database did not answer); NULL without a fleet.
/// - `seen_elsewhere`: what the fleet database said about the serial before flashing (passed at
///   another station or under another work order).
///
/// New nullable columns and a new table: added in place, old rows keep NULL (and are shipped).
const MIGRATE_ADD_FLEET_OUTBOX: &str = "
ALTER TABLE attempts ADD COLUMN fleet_synced_at_ms INTEGER;
ALTER TABLE attempts ADD COLUMN fleet_place TEXT;
ALTER TABLE attempts ADD COLUMN seen_elsewhere TEXT;
CREATE INDEX attempts_not_shipped ON attempts (id) WHERE fleet_synced_at_ms IS NULL;
CREATE TABLE journal_identity (uid TEXT NOT NULL);
INSERT INTO journal_identity (uid) SELECT lower(hex(randomblob(16)));
";

/// v7: the production line each attempt was made on.
/// - `line`: station.yaml's `line` when the attempt began (NULL: the station names no line, or
///   the row is older than v7; reports show those as "no line recorded"). Hashed from chain
///   version 2 on (`trust::chain`).
///
/// A new nullable column: added in place, old rows keep NULL.
const MIGRATE_ADD_LINE: &str = "
ALTER TABLE attempts ADD COLUMN line TEXT;
";

/// How long one journal statement waits for a lock held by another connection.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Sets durability pragmas and creates or checks the schema.
pub fn prepare(conn: &mut Connection) -> Result<(), JournalError> {
    // WAL lets report/history read while the station writes; synchronous=FULL makes each commit
    // durable when it returns, so a verdict the dashboard shows survives a power cut.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(JournalError::Setup(format!(
            "SQLite refused WAL mode (got `{mode}`); put the journal on a local disk"
        )));
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    // Bounded: a journal that stays locked (another program holding it) must surface as an
    // error the station acts on, not as slots that each hang for long.
    conn.busy_timeout(BUSY_TIMEOUT)?;

    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version > SCHEMA_VERSION {
        return Err(JournalError::NewerSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    // Every step to the current version in one transaction: a journal is never left
    // half-migrated.
    let tx = conn.transaction()?;
    match version {
        0 => tx.execute_batch(SCHEMA_V2)?,
        1 => {
            tx.execute_batch(MIGRATE_V1_TO_V2)?;
            tx.execute_batch(SCHEMA_V2)?;
            tx.execute_batch(COPY_V1_ROWS)?;
        }
        _ => {}
    }
    for (to_version, steps) in MIGRATIONS {
        if *to_version > version.max(2) {
            for step in *steps {
                tx.execute_batch(step)?;
            }
        }
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    tx.commit()?;
    Ok(())
}

/// The steps from v2 on, each with the version it leads to; the last one is `SCHEMA_VERSION`.
const MIGRATIONS: &[(i64, &[&str])] = &[
    (3, &[MIGRATE_V2_TO_V3]),
    (4, &[MIGRATE_ADD_BUILD_IDENTITY, MIGRATE_ADD_MANIFEST_TRUST]),
    (5, &[MIGRATE_ADD_CHAIN]),
    (6, &[MIGRATE_ADD_FLEET_OUTBOX]),
    (7, &[MIGRATE_ADD_LINE]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_run_in_order_up_to_the_current_version() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(to, _)| *to).collect();
        assert!(
            versions.windows(2).all(|w| w[1] == w[0] + 1),
            "{versions:?}"
        );
        assert_eq!(versions.last(), Some(&SCHEMA_VERSION));
    }
}
