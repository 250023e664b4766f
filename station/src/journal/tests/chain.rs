//! The hash chain as the station writes it, and what `verify_chain` names after plain SQL edits.

use super::*;
use crate::trust::chain::{content_hash, encode_content, link, ATTEMPT_COLUMNS_V2};

/// A journal with four finished rows (PASS, FAIL, PASS, and one closed as ABORTED) and one open.
fn journal_with_rows(dir: &tempfile::TempDir) -> Journal {
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    run(&mut journal, 1, "WO-1", "SER1", pass());
    run(&mut journal, 2, "WO-1", "SER2", fail(2, "SER2"));
    run(&mut journal, 3, "WO-1", "SER3", pass());
    let cut = journal.begin(&start(4, "WO-1")).unwrap();
    journal.identified(cut, "SER4", Mode::Edl, at(1)).unwrap();
    journal.close_interrupted(at(90)).unwrap();
    journal.begin(&start(5, "WO-1")).unwrap();
    journal
}

fn exec(journal: &Journal, sql: &str) {
    journal.connection().execute_batch(sql).unwrap();
}

fn problems(journal: &Journal) -> Vec<String> {
    let report = journal.verify_chain().unwrap();
    report.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn every_verdict_joins_the_chain_in_its_station_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_rows(&dir);
    let chained: Vec<(i64, Option<i64>, String)> = journal
        .connection()
        .prepare("SELECT id, chain_seq, result FROM attempts ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        chained,
        vec![
            (1, Some(1), "PASS".into()),
            (2, Some(2), "FAIL".into()),
            (3, Some(3), "PASS".into()),
            (4, Some(4), "ABORTED".into()),
            (5, None, "IN_PROGRESS".into()),
        ]
    );
    let report = journal.verify_chain().unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(
        (report.chained, report.before_chain, report.open),
        (4, 0, 1)
    );
    assert_eq!(report.heads.len(), 1);
    assert_eq!((report.heads[0].seq, report.heads[0].attempt_id), (4, 4));
}

#[test]
fn a_whole_attempt_written_at_once_is_chained_and_each_station_has_its_own_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    run(&mut journal, 1, "WO-1", "SER1", pass());
    let other_station = CompletedAttempt {
        start: AttemptStart {
            station_id: "line3-st02".into(),
            ..start(1, "WO-1")
        },
        serial: Some("SER9".into()),
        mode: Some(Mode::Fastboot),
        phases: MilestoneTimes::default(),
        outcome: pass(),
    };
    let finished = journal.record(&other_station).unwrap();
    let seq: i64 = journal
        .connection()
        .query_row(
            "SELECT chain_seq FROM attempts WHERE id = ?1",
            [finished.id.0],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        seq, 1,
        "the second station's first row starts its own chain"
    );
    let report = journal.verify_chain().unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.heads.len(), 2);
}

#[test]
fn an_edited_column_of_a_finished_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_rows(&dir);
    // Someone turns the failure into a pass with plain SQL (the CHECK wants no code on a PASS).
    exec(
        &journal,
        "UPDATE attempts SET result = 'PASS', failure_code = NULL WHERE id = 2",
    );
    assert_eq!(
        problems(&journal),
        vec![
            "attempt 2 (serial SER2) [station line3-st01 chain seq 2]: its content no longer \
             matches the hash taken at its verdict: a column of this PASS row was edited"
        ]
    );
    // One column that looks harmless is covered too.
    exec(
        &journal,
        "UPDATE attempts SET result = 'FAIL', failure_code = 'ACTIVATION_CLIENT_WRONG_REGION'
         WHERE id = 2; UPDATE attempts SET log_path = 'elsewhere.log' WHERE id = 3",
    );
    let found = problems(&journal);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("attempt 3 (serial SER3)"), "{found:?}");
    // Re-hashing the content by hand does not help: the link no longer follows.
    exec(
        &journal,
        "UPDATE attempts SET content_sha256 = '00' || substr(content_sha256, 3) WHERE id = 3",
    );
    let found = problems(&journal);
    assert!(found[0].contains("attempt 3"), "{found:?}");
}

#[test]
fn a_deleted_row_is_named_by_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_rows(&dir);
    exec(&journal, "DELETE FROM attempts WHERE id = 2");
    assert_eq!(
        problems(&journal),
        vec![
            "attempt 3 (serial SER3) [station line3-st01 chain seq 3]: seq 2 is missing before \
             it (after attempt 1): a row was deleted"
        ]
    );
}

#[test]
fn swapped_ids_and_reordered_rows_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_rows(&dir);
    exec(
        &journal,
        "UPDATE attempts SET id = 100 WHERE id = 1;
         UPDATE attempts SET id = 1 WHERE id = 3;
         UPDATE attempts SET id = 3 WHERE id = 100;",
    );
    let found = problems(&journal);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("attempt 1 (serial SER3)"), "{found:?}");
    assert!(found[1].starts_with("attempt 3 (serial SER1)"), "{found:?}");
    assert!(found.iter().all(|p| p.contains("was edited")), "{found:?}");

    // Two rows' places in the chain swapped.
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_rows(&dir);
    exec(
        &journal,
        "UPDATE attempts SET chain_seq = 100 WHERE id = 2;
         UPDATE attempts SET chain_seq = 2 WHERE id = 3;
         UPDATE attempts SET chain_seq = 3 WHERE id = 2;",
    );
    let found = problems(&journal);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].starts_with("attempt 2 (serial SER2)"), "{found:?}");
    assert!(found[1].starts_with("attempt 3 (serial SER3)"), "{found:?}");
    assert!(
        found[1].contains("chain columns were edited")
            && found[1].contains("does not follow attempt 1"),
        "{found:?}"
    );
    // The row after them no longer follows its predecessor either.
    assert!(found[2].starts_with("attempt 4 (serial SER4)"), "{found:?}");
}

#[test]
fn a_row_inserted_by_hand_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_with_rows(&dir);
    exec(
        &journal,
        "INSERT INTO attempts (slot, port_path, station_id, work_order, work_order_quantity,
             product, region, build_id, manifest_sha256, result, started_at_ms, tool_version,
             unit_serial)
         VALUES (7, '1-4.7', 'line3-st01', 'WO-1', 10, 'fgdemo', '00EEA', 'B', 'ab', 'PASS', 1,
                 'v', 'FAKE1')",
    );
    assert_eq!(
        problems(&journal),
        vec![
            "attempt 6 (serial FAKE1): PASS row without a place in the chain: it was inserted \
             or given its verdict by hand (the station chains every row it finishes)"
        ]
    );
    // A copy of a chained row's chain columns under a new row is a second row at that place.
    exec(
        &journal,
        "UPDATE attempts SET (chain_seq, chain_version, content_sha256, chain_prev, chain_link) =
             (SELECT 5, chain_version, content_sha256, chain_prev, chain_link
              FROM attempts WHERE id = 4)
         WHERE id = 6",
    );
    let found = problems(&journal);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("attempt 6 (serial FAKE1)"),
        "{found:?}"
    );
}

#[test]
fn rows_from_before_the_chain_are_not_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    {
        // A v4 journal: one finished row, one left open by a crash.
        let mut journal = Journal::open(&path).unwrap();
        run(&mut journal, 1, "WO-1", "OLD1", pass());
        journal.begin(&start(2, "WO-1")).unwrap();
        exec(
            &journal,
            "DROP INDEX attempts_by_chain;
             ALTER TABLE attempts DROP COLUMN chain_seq; ALTER TABLE attempts DROP COLUMN chain_version;
             ALTER TABLE attempts DROP COLUMN content_sha256; ALTER TABLE attempts DROP COLUMN chain_prev;
             ALTER TABLE attempts DROP COLUMN chain_link;
             DROP TABLE chain_origin; DROP TABLE unit_proofs;
             DROP INDEX attempts_not_shipped; ALTER TABLE attempts DROP COLUMN fleet_synced_at_ms;
             ALTER TABLE attempts DROP COLUMN fleet_place;
             ALTER TABLE attempts DROP COLUMN seen_elsewhere;
             DROP TABLE journal_identity; ALTER TABLE attempts DROP COLUMN line;
             PRAGMA user_version = 4;",
        );
    }
    let mut journal = Journal::open(&path).unwrap();
    let report = journal.verify_chain().unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!((report.before_chain, report.open), (1, 1));
    // The open one is closed by the next station start and joins the chain then.
    journal.close_interrupted(at(100)).unwrap();
    run(&mut journal, 3, "WO-1", "NEW1", pass());
    let report = journal.verify_chain().unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!((report.chained, report.before_chain), (2, 1));
    // Moving the origin to pass a new row off as old breaks the first link.
    exec(&journal, "UPDATE chain_origin SET before_id = 50");
    let found = problems(&journal);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("from its origin"), "{found:?}");
}

#[test]
fn every_column_of_an_attempt_is_hashed_or_is_the_chain_itself() {
    // A new column must be decided on: hashed (a new chain version) or not, and why.
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    // Columns the content hash leaves out, each with why. A column written after the verdict
    // (bookkeeping such as a shipping mark) must be here, or every row it touches reads as
    // edited; a column that says what happened to the unit belongs in the hash instead.
    let not_hashed = [
        ("chain_seq", "the chain's own"),
        ("chain_version", "the chain's own"),
        ("content_sha256", "the chain's own"),
        ("chain_prev", "the chain's own"),
        ("chain_link", "the chain's own"),
        (
            "fleet_synced_at_ms",
            "when the fleet database committed the row: written after the verdict",
        ),
    ];
    let chain_own: Vec<&str> = not_hashed.iter().map(|(name, _)| *name).collect();
    let columns: Vec<String> = journal
        .connection()
        .prepare("SELECT name FROM pragma_table_info('attempts')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for column in &columns {
        assert!(
            ATTEMPT_COLUMNS_V2.contains(&column.as_str()) || chain_own.contains(&column.as_str()),
            "column `{column}` of attempts is neither hashed (trust::chain, a new chain \
             version) nor listed here as left out, with why"
        );
    }
    assert_eq!(columns.len(), ATTEMPT_COLUMNS_V2.len() + not_hashed.len());
}

#[test]
fn a_rows_content_hash_is_pinned() {
    // One finished row with every value fixed: its content hash, computed from the encoding as
    // documented in trust::chain by an outside implementation (Python's hashlib and struct),
    // pinned here so a reader elsewhere (the fleet database) can check itself against it.
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    run(&mut journal, 1, "WO-1", "SER1", pass());
    assert_eq!(
        stored_chain(&journal, 1),
        (2, PINNED_CONTENT_V2.into(), PINNED_LINK_V2.into())
    );
    // The same row as version 1 hashed it (before journals recorded lines): unchanged.
    let v1 = content_of(&journal, 1, 1);
    assert_eq!(v1.to_hex(), PINNED_CONTENT_V1, "content v1");
    let genesis = crate::trust::chain::genesis("line3-st01", 0);
    assert_eq!(link(1, &genesis, &v1).to_hex(), PINNED_LINK_V1, "link v1");
    // With a line, version 2 covers it.
    let mut journal = Journal::open(&dir.path().join("lined.sqlite")).unwrap();
    run_on_line(&mut journal, 1, "SER1", Some("line3"));
    assert_eq!(stored_chain(&journal, 1).1, PINNED_CONTENT_V2_LINE3);
}

/// Version 1 (a row hashed before v7 journals): the first row.
const PINNED_CONTENT_V1: &str = "43b6e8b34d032cdb39379bb815fefdb91ae945bc705f3b4ee12b24c6ab3d8446";
const PINNED_LINK_V1: &str = "c1b2d82a9e41e8765e65aea545e0e23d7641cda2f2a67fdf83530ac5b23db8c5";
/// Version 2: the same row (no line recorded), and with `line3`.
const PINNED_CONTENT_V2: &str = "cf1ad81ebc00d81ea994d5c42e947ef90e89f15501c266689dabdba21c3f0c5d";
const PINNED_LINK_V2: &str = "f386f3907dee13f59c319927823cf874b14d0c82ecc82d0b5c6726fa377e61ac";
const PINNED_CONTENT_V2_LINE3: &str =
    "b2de4273e1c79dbe6131fa86a90f385e43db70e48c50e5f637d8d686a7758e5e";

/// A passed attempt made on `line` (slot 1 of WO-1).
fn run_on_line(journal: &mut Journal, slot: u16, serial: &str, line: Option<&str>) {
    let id = journal
        .begin(&AttemptStart {
            line: line.map(str::to_string),
            ..start(slot, "WO-1")
        })
        .unwrap();
    journal
        .identified(id, serial, Mode::Fastboot, at(2))
        .unwrap();
    journal.finish(id, &pass()).unwrap();
}

/// The row's (chain_version, content_sha256, chain_link).
fn stored_chain(journal: &Journal, id: i64) -> (i64, String, String) {
    journal
        .connection()
        .query_row(
            "SELECT chain_version, content_sha256, chain_link FROM attempts WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

/// The content hash of row `id` under chain `version`, from its values as stored.
fn content_of(journal: &Journal, id: i64, version: i64) -> crate::digest::Sha256Digest {
    let columns = crate::trust::chain::columns_of_version(version).unwrap();
    let values = super::super::chain::row_values(journal.connection(), id, columns)
        .unwrap()
        .unwrap();
    content_hash(&encode_content(
        version,
        columns.iter().copied().zip(values.iter()),
    ))
}

#[test]
fn rows_chained_under_version_1_keep_verifying_beside_version_2_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    // Row 1 as a flashgate before lines wrote it: hashed under version 1, no line.
    run(&mut journal, 1, "WO-1", "OLD1", pass());
    let v1 = content_of(&journal, 1, 1);
    let genesis = crate::trust::chain::genesis("line3-st01", 0);
    journal
        .connection()
        .execute(
            "UPDATE attempts SET chain_version = 1, content_sha256 = ?1, chain_link = ?2
             WHERE id = 1",
            [v1.to_hex(), link(1, &genesis, &v1).to_hex()],
        )
        .unwrap();
    run_on_line(&mut journal, 2, "NEW1", Some("line3"));
    assert_eq!(stored_chain(&journal, 2).0, 2);
    let report = journal.verify_chain().unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.chained, 2);
    // A row moved to another line by hand is named, whichever version hashed it: version 2
    // covers the line; a version-1 row was hashed before lines were recorded, so any line in it
    // was written afterwards.
    exec(&journal, "UPDATE attempts SET line = 'line4' WHERE id = 2");
    let found = problems(&journal);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("attempt 2 (serial NEW1)") && found[0].contains("was edited"));
    exec(
        &journal,
        "UPDATE attempts SET line = 'line3' WHERE id = 2;
         UPDATE attempts SET line = 'line3' WHERE id = 1",
    );
    let found = problems(&journal);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("attempt 1 (serial OLD1)")
            && found[0].contains("`line` is set, but the row was hashed under chain version 1"),
        "{found:?}"
    );
}
