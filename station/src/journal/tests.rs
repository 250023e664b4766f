use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::config::{RegionCode, VerifyMethod};
use crate::digest::Sha256Digest;
use crate::mode::Mode;
use crate::verdict::Verdict;
use crate::verdict::{Failure, FailureCode, UnitRef};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_860_000 + secs)
}

fn start(slot: u16, work_order: &str) -> AttemptStart {
    AttemptStart {
        slot,
        port_path: format!("1-4.{slot}"),
        station_id: "line3-st01".into(),
        line: None,
        work_order: work_order.into(),
        work_order_quantity: 10,
        product: "fgdemo".into(),
        region: "00EEA".into(),
        build_id: "FGDEMO.00EEA.1".into(),
        manifest_sha256: Sha256Digest::of_bytes(b"manifest"),
        tool_version: "flashgate 0.1.0".into(),
        log_path: Some(format!("logs/unit-{slot}.log").into()),
        started_at: at(0),
        operator: None,
        manifest_signed_by: None,
        engineering_mode: false,
    }
}

fn pass() -> AttemptOutcome {
    AttemptOutcome {
        verdict: Verdict::Pass,
        images_sent: vec![ImageSent {
            partition: "system_a".into(),
            file: "system".into(),
            sha256: Sha256Digest::of_bytes(b"system"),
            bytes: 1_048_576,
        }],
        activation_sha256_found: Some(Sha256Digest::of_bytes(b"client-00EEA")),
        build_id_found: None,
        verify_method: Some(VerifyMethod::HostReadback),
        verify_bytes_read: Some(65_536),
        finished_at: at(60),
    }
}

fn fail(slot: u16, serial: &str) -> AttemptOutcome {
    AttemptOutcome {
        verdict: Verdict::Fail(Failure::ActivationClientWrongRegion {
            unit: UnitRef {
                slot,
                serial: Some(serial.into()),
            },
            partition: "system_a".into(),
            location: "/priv-app/ActivationClient/ActivationClient.apk".into(),
            found_region: RegionCode::parse("00CN").unwrap(),
            work_order: "WO-1".into(),
            needed_region: RegionCode::parse("00EEA").unwrap(),
        }),
        images_sent: Vec::new(),
        activation_sha256_found: Some(Sha256Digest::of_bytes(b"client-00CN")),
        build_id_found: None,
        verify_method: Some(VerifyMethod::HostReadback),
        verify_bytes_read: Some(40_960),
        finished_at: at(50),
    }
}

fn run(
    journal: &mut Journal,
    slot: u16,
    work_order: &str,
    serial: &str,
    outcome: AttemptOutcome,
) -> FinishedAttempt {
    let id = journal.begin(&start(slot, work_order)).unwrap();
    journal
        .identified(id, serial, Mode::Fastboot, at(2))
        .unwrap();
    journal
        .milestone(id, Milestone::FlashStarted, at(3))
        .unwrap();
    journal.milestone(id, Milestone::FlashDone, at(40)).unwrap();
    journal
        .milestone(id, Milestone::VerifyStarted, at(41))
        .unwrap();
    journal
        .milestone(id, Milestone::VerifyDone, at(45))
        .unwrap();
    journal.finish(id, &outcome).unwrap()
}

#[test]
fn opens_in_wal_with_full_sync_and_versioned_schema() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("state/journal.sqlite")).unwrap();
    let conn = journal.connection();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous must be FULL (2)");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    drop(Journal::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let error = Journal::open(&path).unwrap_err();
    assert!(
        matches!(error, JournalError::NewerSchema { found: 99, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("upgrade flashgate"));
}

#[test]
fn a_verdict_is_on_disk_when_finish_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut journal = Journal::open(&path).unwrap();
    let finished = run(&mut journal, 3, "WO-1", "7PL0042", pass());
    // A second, independent connection sees the committed row while the writer is still open.
    let reader = Journal::open_existing(&path).unwrap();
    let row = reader.attempt(finished.id).unwrap().unwrap();
    assert_eq!(row.result, "PASS");
    assert_eq!(row.unit_serial.as_deref(), Some("7PL0042"));
    assert_eq!(row.mode, Some(Mode::Fastboot));
    assert_eq!(row.port_path, "1-4.3");
    assert_eq!(row.images_sent, pass().images_sent);
    assert_eq!(row.verify_bytes_read, Some(65_536));
    assert_eq!(row.verify_method.as_deref(), Some("host_readback"));
    assert_eq!(
        row.activation_sha256_found,
        Some(Sha256Digest::of_bytes(b"client-00EEA").to_hex())
    );
    assert_eq!(row.started_at.to_string(), "2026-11-28T10:00:00.000Z");
    assert_eq!(
        row.flash_done_at.map(|t| t.to_string()).as_deref(),
        Some("2026-11-28T10:00:40.000Z")
    );
    assert_eq!(
        row.finished_at.map(|t| t.to_string()).as_deref(),
        Some("2026-11-28T10:01:00.000Z")
    );
    assert_eq!(row.log_path.as_deref(), Some("logs/unit-3.log"));
}

#[test]
fn an_attempt_gets_one_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let finished = run(&mut journal, 1, "WO-1", "A", pass());
    let again = journal.finish(finished.id, &fail(1, "A")).unwrap_err();
    assert!(matches!(again, JournalError::AlreadyFinished(_)), "{again}");
    let missing = journal
        .milestone(AttemptId(999), Milestone::FlashDone, at(1))
        .unwrap_err();
    assert!(matches!(missing, JournalError::NoSuchAttempt(999)));
    assert_eq!(
        journal.attempt(finished.id).unwrap().unwrap().result,
        "PASS"
    );
}

#[test]
fn flags_a_serial_passed_under_another_work_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    assert!(run(&mut journal, 1, "WO-1", "SER1", pass())
        .passed_under_other_work_orders
        .is_empty());
    // A retry under the same work order is not a flag.
    assert!(run(&mut journal, 1, "WO-1", "SER1", pass())
        .passed_under_other_work_orders
        .is_empty());
    let id = journal.begin(&start(2, "WO-2")).unwrap();
    let early = journal.identified(id, "SER1", Mode::Edl, at(1)).unwrap();
    assert_eq!(early, vec!["WO-1".to_string()]);
    let finished = journal.finish(id, &pass()).unwrap();
    assert_eq!(
        finished.passed_under_other_work_orders,
        vec!["WO-1".to_string()]
    );
    let row = journal.attempt(id).unwrap().unwrap();
    assert_eq!(row.passed_under_other_work_orders, vec!["WO-1".to_string()]);
    assert_eq!(
        journal
            .passed_under_other_work_orders("SER1", "WO-3")
            .unwrap(),
        vec!["WO-1".to_string(), "WO-2".to_string()]
    );
}

#[test]
fn report_counts_yield_and_failures_by_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    run(&mut journal, 1, "WO-1", "A", pass());
    run(&mut journal, 2, "WO-1", "B", fail(2, "B"));
    run(&mut journal, 2, "WO-1", "B", pass()); // reworked, passes second time
    run(&mut journal, 3, "WO-1", "C", fail(3, "C"));
    let disconnected = AttemptOutcome {
        verdict: Verdict::Fail(Failure::Disconnected {
            unit: UnitRef {
                slot: 4,
                serial: None,
            },
            step: "identify".into(),
        }),
        ..pass()
    };
    let id = journal.begin(&start(4, "WO-1")).unwrap();
    journal.finish(id, &disconnected).unwrap();
    journal.begin(&start(5, "WO-1")).unwrap(); // still running
    run(&mut journal, 1, "WO-9", "Z", pass()); // other work order: not counted

    let report = journal.report("WO-1").unwrap();
    assert_eq!(report.counts.attempts, 6);
    assert_eq!(report.counts.attempts_passed, 2);
    assert_eq!(report.counts.attempts_failed, 3);
    assert_eq!(report.counts.attempts_in_progress, 1);
    assert_eq!(report.counts.attempts_unidentified, 1);
    assert_eq!(report.counts.units, 3);
    assert_eq!(report.counts.units_passed, 2);
    assert_eq!(report.counts.units_failed, 1);
    assert_eq!(report.counts.units_passed_first_time, 1);
    let yield_percent = report.counts.yield_percent.unwrap();
    assert!(
        (yield_percent - 200.0 / 3.0).abs() < 1e-9,
        "{yield_percent}"
    );
    assert_eq!(
        report.counts.failures_by_code,
        vec![
            CodeCount {
                code: FailureCode::ActivationClientWrongRegion.as_str().into(),
                count: 2
            },
            CodeCount {
                code: FailureCode::Disconnected.as_str().into(),
                count: 1
            },
        ]
    );
    assert_eq!(report.products, vec!["fgdemo".to_string()]);
    assert_eq!(report.quantity, Some(10));

    let empty = journal.report("WO-404").unwrap();
    assert_eq!(empty.counts.attempts, 0);
    assert_eq!(empty.counts.yield_percent, None);
}

#[test]
fn history_lists_every_attempt_of_a_serial() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    run(&mut journal, 2, "WO-1", "B", fail(2, "B"));
    run(&mut journal, 7, "WO-1", "B", pass());
    run(&mut journal, 1, "WO-1", "A", pass());
    let history = journal.history("B").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].result, "FAIL");
    assert_eq!(
        history[0].failure_code.as_deref(),
        Some("ACTIVATION_CLIENT_WRONG_REGION")
    );
    assert!(history[0]
        .failure_message
        .as_deref()
        .unwrap()
        .starts_with("ACTIVATION_CLIENT_WRONG_REGION: slot 2 (serial B)"));
    assert_eq!(history[1].slot, 7);
    assert!(journal.history("nobody").unwrap().is_empty());
}

#[test]
fn a_whole_attempt_can_be_recorded_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    run(&mut journal, 1, "WO-1", "SER9", pass());
    let attempt = CompletedAttempt {
        start: start(6, "WO-2"),
        serial: Some("SER9".into()),
        mode: Some(Mode::Edl),
        phases: MilestoneTimes {
            identified: Some(at(1)),
            flash_started: Some(at(2)),
            flash_done: Some(at(30)),
            verify_started: None,
            verify_done: None,
        },
        outcome: fail(6, "SER9"),
    };
    let finished = journal.record(&attempt).unwrap();
    assert_eq!(
        finished.passed_under_other_work_orders,
        vec!["WO-1".to_string()]
    );
    let row = journal.attempt(finished.id).unwrap().unwrap();
    assert_eq!(row.result, "FAIL");
    assert_eq!(row.mode, Some(Mode::Edl));
    assert_eq!(
        row.identified_at.map(|t| t.to_string()).as_deref(),
        Some("2026-11-28T10:00:01.000Z")
    );
    assert_eq!(
        row.flash_done_at.map(|t| t.to_string()).as_deref(),
        Some("2026-11-28T10:00:30.000Z")
    );
    assert_eq!(row.verify_started_at, None);

    // A serial without a mode is refused and leaves no half-written row.
    let before = journal.report("WO-2").unwrap().counts.attempts;
    let broken = CompletedAttempt {
        mode: None,
        ..attempt
    };
    assert!(journal.record(&broken).is_err());
    assert_eq!(journal.report("WO-2").unwrap().counts.attempts, before);
}

#[test]
fn a_v1_journal_is_migrated_keeping_every_row_and_learns_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    {
        // A journal as flashgate with schema v1 wrote it: the same table without ABORTED.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let v1 = super::schema::SCHEMA_V2_FOR_TESTS.replace(
            "CHECK (result IN ('IN_PROGRESS', 'PASS', 'FAIL', 'ABORTED'))",
            "CHECK (result IN ('IN_PROGRESS', 'PASS', 'FAIL'))",
        );
        assert_ne!(v1, super::schema::SCHEMA_V2_FOR_TESTS);
        conn.execute_batch(&v1).unwrap();
        conn.execute_batch("PRAGMA user_version = 1").unwrap();
        conn.execute(
            "INSERT INTO attempts (slot, port_path, station_id, work_order, work_order_quantity,
                 product, region, build_id, manifest_sha256, result, started_at_ms, tool_version,
                 unit_serial)
             VALUES (2, '1-4.2', 'st', 'WO-1', 5, 'p', '00EEA', 'b', 'ab', 'PASS', 1, 'v', 'SN1'),
                    (3, '1-4.3', 'st', 'WO-1', 5, 'p', '00EEA', 'b', 'ab', 'IN_PROGRESS', 2, 'v',
                     NULL)",
            [],
        )
        .unwrap();
        assert!(conn
            .execute("UPDATE attempts SET result = 'ABORTED' WHERE id = 2", [])
            .is_err());
    }
    let mut journal = Journal::open(&path).unwrap();
    let version: i64 = journal
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(journal.history("SN1").unwrap().len(), 1);
    assert_eq!(journal.units_passed("WO-1").unwrap(), 1);
    let closed = journal.close_interrupted(at(100)).unwrap();
    assert_eq!(closed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![2]);
    let row = journal.attempt(AttemptId(2)).unwrap().unwrap();
    assert_eq!(row.result, "ABORTED");
    assert_eq!(row.failure_code, None);
    assert!(
        row.failure_message
            .as_deref()
            .unwrap()
            .starts_with("ABORTED: slot 3 (serial not yet read): the station stopped"),
        "{row:?}"
    );
}

#[test]
fn interrupted_attempts_are_closed_as_aborted_and_stay_out_of_the_yield() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut journal = Journal::open(&path).unwrap();
    run(&mut journal, 1, "WO-1", "SN1", pass());
    run(&mut journal, 2, "WO-1", "SN2", fail(2, "SN2"));
    // Slot 3 was flashing when the station died; slot 4 had not been identified yet.
    let flashing = journal.begin(&start(3, "WO-1")).unwrap();
    journal
        .identified(flashing, "SN3", Mode::Fastboot, at(2))
        .unwrap();
    journal
        .milestone(flashing, Milestone::FlashStarted, at(3))
        .unwrap();
    let detected = journal.begin(&start(4, "WO-1")).unwrap();
    drop(journal);

    let (mut journal, _lock, closed) = Journal::open_for_station(&path, at(200)).unwrap();
    assert_eq!(
        closed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![flashing.0, detected.0]
    );
    let row = journal.attempt(flashing).unwrap().unwrap();
    assert_eq!(row.result, "ABORTED");
    assert_eq!(
        row.failure_message.as_deref(),
        Some(
            "ABORTED: slot 3 (serial SN3): the station stopped (crash, kill or power loss) during \
             flashing, before a verdict; the unit is not verified: flash it again"
        )
    );
    assert!(row.finished_at.is_some());
    // Nothing is left open, and the next start finds nothing to close.
    assert!(journal.close_interrupted(at(300)).unwrap().is_empty());
    let report = journal.report("WO-1").unwrap();
    assert_eq!(report.counts.attempts_in_progress, 0);
    assert_eq!(report.counts.attempts_aborted, 2);
    assert_eq!(report.counts.units_aborted, 1, "SN3 was only ever aborted");
    assert_eq!(
        (report.counts.units_passed, report.counts.units_failed),
        (1, 1)
    );
    assert_eq!(report.counts.yield_percent, Some(50.0));
    assert_eq!(journal.units_passed("WO-1").unwrap(), 1);
}

#[test]
fn units_passed_counts_each_unit_once_per_work_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    run(&mut journal, 1, "WO-1", "SN1", pass());
    run(&mut journal, 1, "WO-1", "SN1", pass());
    run(&mut journal, 2, "WO-1", "SN2", fail(2, "SN2"));
    run(&mut journal, 3, "WO-2", "SN3", pass());
    assert_eq!(journal.units_passed("WO-1").unwrap(), 1);
    assert_eq!(journal.units_passed("WO-2").unwrap(), 1);
    assert_eq!(journal.units_passed("WO-3").unwrap(), 0);
}

#[test]
fn a_second_station_on_the_journal_is_refused_before_it_touches_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let (mut journal, _lock, _) = Journal::open_for_station(&path, at(0)).unwrap();
    let open = journal.begin(&start(1, "WO-1")).unwrap();
    let error = Journal::open_for_station(&path, at(10)).unwrap_err();
    assert!(matches!(error, JournalError::InUse { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("one station process per journal"),
        "{error}"
    );
    // The first station's open attempt was not closed by the refused one.
    assert_eq!(
        journal.attempt(open).unwrap().unwrap().result,
        "IN_PROGRESS"
    );
}

/// A unit that fails before it answers for itself is found under the serial the bus showed;
/// identification replaces that serial, and a row that has one keeps it.
#[test]
fn seen_as_names_an_unidentified_attempt_until_identification() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let timed_out = journal.begin(&start(2, "WO-1")).unwrap();
    journal.seen_as(timed_out, "USB-SERIAL-2").unwrap();
    let failure = Failure::Timeout {
        unit: UnitRef {
            slot: 2,
            serial: Some("USB-SERIAL-2".into()),
        },
        step: "identify (getvar)".into(),
        secs: 30,
    };
    journal
        .finish(
            timed_out,
            &AttemptOutcome {
                verdict: Verdict::Fail(failure),
                images_sent: Vec::new(),
                activation_sha256_found: None,
                build_id_found: None,
                verify_method: None,
                verify_bytes_read: None,
                finished_at: at(31),
            },
        )
        .unwrap();
    let rows = journal.history("USB-SERIAL-2").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].failure_code.as_deref(), Some("TIMEOUT"));
    assert_eq!(rows[0].identified_at, None, "seen, never identified");

    let identified = journal.begin(&start(3, "WO-1")).unwrap();
    journal.seen_as(identified, "USB-SERIAL-3").unwrap();
    journal
        .identified(identified, "FG000103", Mode::Fastboot, at(2))
        .unwrap();
    journal.seen_as(identified, "USB-SERIAL-3").unwrap();
    assert!(journal.history("USB-SERIAL-3").unwrap().is_empty());
    assert_eq!(journal.history("FG000103").unwrap().len(), 1);
}

#[test]
fn a_v2_journal_is_migrated_in_place_keeping_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(super::schema::SCHEMA_V2_FOR_TESTS)
            .unwrap();
        conn.execute_batch("PRAGMA user_version = 2").unwrap();
        conn.execute(
            "INSERT INTO attempts (slot, port_path, station_id, work_order, work_order_quantity,
                 product, region, build_id, manifest_sha256, mode, result, started_at_ms,
                 tool_version, unit_serial)
             VALUES (2, '1-4.2', 'st', 'WO-1', 5, 'p', '00EEA', 'b', 'ab', 'edl', 'PASS', 1, 'v',
                     'FG000102'),
                    (3, '1-4.3', 'st', 'WO-1', 5, 'p', '00EEA', 'b', 'ab', NULL, 'ABORTED', 2,
                     'v', NULL)",
            [],
        )
        .unwrap();
    }
    let mut journal = Journal::open(&path).unwrap();
    let version: i64 = journal
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, SCHEMA_VERSION), (7, 7));
    let rows = journal.history("FG000102").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            &rows[0].chip_serial,
            &rows[0].operator_id,
            &rows[0].unit_code,
            &rows[0].build_id_found,
            &rows[0].line
        ),
        (&None, &None, &None, &None, &None),
        "old rows keep NULL in the new columns"
    );
    assert_eq!(journal.report("WO-1").unwrap().counts.attempts, 2);
    // The new columns take writes at once.
    let id = journal
        .begin(&AttemptStart {
            operator: Some("op-7".into()),
            manifest_signed_by: None,
            engineering_mode: false,
            line: Some("line3".into()),
            ..start(4, "WO-1")
        })
        .unwrap();
    journal
        .unit_code(id, "356938035643809", "getvar:imei")
        .unwrap();
    let row = journal.attempt(id).unwrap().unwrap();
    assert_eq!(row.operator_id.as_deref(), Some("op-7"));
    assert_eq!(row.unit_code.as_deref(), Some("356938035643809"));
    assert_eq!(row.unit_code_source.as_deref(), Some("getvar:imei"));
    assert_eq!(row.line.as_deref(), Some("line3"));
    // Opening again is a no-op.
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.report("WO-1").unwrap().counts.attempts, 3);
}

#[test]
fn an_edl_unit_is_one_unit_under_its_chip_serial_and_its_fastboot_serial() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    // First attempt: identified in EDL by its chip serial, fails before its reset.
    let first = journal.begin(&start(2, "WO-1")).unwrap();
    journal
        .identified(first, "5EC00002", Mode::Edl, at(1))
        .unwrap();
    journal.finish(first, &fail(2, "5EC00002")).unwrap();
    // Second attempt: EDL again, then after the reset the same phone answers in fastboot.
    let second = journal.begin(&start(2, "WO-1")).unwrap();
    journal
        .identified(second, "5EC00002", Mode::Edl, at(2))
        .unwrap();
    journal
        .identified(second, "FG000102", Mode::Edl, at(3))
        .unwrap();
    journal
        .unit_code(second, "356938035643809", "getvar:imei")
        .unwrap();
    journal.finish(second, &pass()).unwrap();
    // Another unit, not linked.
    let other = journal.begin(&start(3, "WO-1")).unwrap();
    journal
        .identified(other, "FG000103", Mode::Fastboot, at(4))
        .unwrap();
    journal.finish(other, &pass()).unwrap();

    let row = journal.attempt(second).unwrap().unwrap();
    assert_eq!(row.unit_serial.as_deref(), Some("FG000102"));
    assert_eq!(row.chip_serial.as_deref(), Some("5EC00002"));
    assert_eq!(
        journal.attempt(other).unwrap().unwrap().chip_serial,
        None,
        "a fastboot unit has no chip serial"
    );
    let ids = |name: &str| -> Vec<i64> {
        journal
            .history(name)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids("5EC00002"), vec![first.0, second.0]);
    assert_eq!(
        ids("FG000102"),
        vec![first.0, second.0],
        "the fastboot serial finds the chip's earlier attempt too"
    );
    assert_eq!(ids("356938035643809"), vec![first.0, second.0]);
    assert_eq!(ids("FG000103"), vec![other.0]);
    assert!(ids("5EC00009").is_empty());
    let report = journal.report("WO-1").unwrap();
    assert_eq!(
        (
            report.counts.units,
            report.counts.units_passed,
            report.counts.units_failed
        ),
        (2, 2, 0),
        "the chip's failed attempt and its passed one are one unit"
    );
    assert_eq!(report.counts.units_passed_first_time, 1);
}

mod chain;
mod proofs;
