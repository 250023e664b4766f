//! The trust chain through the `flashgate` binary: the README's main command leaves a journal
//! whose hash chain `journal verify` finds intact, and an edit made afterwards with plain SQL is
//! named (and `report` says the chain is broken).

use std::process::Command;

use flashgate_scenarios::flashgate_bin;

use crate::cli_run::{demo_copy, run};

fn flashgate(args: &[&str], station: &std::path::Path) -> std::process::Output {
    Command::new(flashgate_bin())
        .args(args)
        .arg("--station")
        .arg(station)
        .env("NO_COLOR", "1")
        .output()
        .expect("running flashgate")
}

#[test]
fn an_edited_journal_row_is_named_by_journal_verify_and_report() {
    let (_keep, demo) = demo_copy();
    let out = run(&demo, "WO-DEMO-EEA", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let station = demo.join("station.yaml");
    let verify = flashgate(&["journal", "verify"], &station);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    assert!(
        text.contains("chain intact: 8 attempts chained, 0 from before the chain"),
        "{text}"
    );
    assert!(text.contains("head of station demo-st01: seq 8"), "{text}");
    let report = flashgate(&["report", "--work-order", "WO-DEMO-EEA"], &station);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("chain        intact (8 attempts chained"), "{text}");

    // The region of one passed unit is changed after the fact, with plain SQL.
    let journal = rusqlite::Connection::open(demo.join("state/journal.sqlite")).unwrap();
    let (id, serial): (i64, String) = journal
        .query_row(
            "SELECT id, unit_serial FROM attempts WHERE chain_seq = 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    journal
        .execute("UPDATE attempts SET region = '00WW' WHERE id = ?1", [id])
        .unwrap();
    drop(journal);

    let verify = flashgate(&["journal", "verify"], &station);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{text}");
    assert!(text.contains("CHAIN BROKEN: 1 problem(s)"), "{text}");
    assert!(
        text.contains(&format!(
            "attempt {id} (serial {serial}) [station demo-st01 chain seq 3]: its content no \
             longer matches"
        )),
        "{text}"
    );
    let report = flashgate(&["report", "--work-order", "WO-DEMO-EEA"], &station);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("chain        BROKEN: 1 problem(s)"), "{text}");
    let csv = flashgate(&["report", "--work-order", "WO-DEMO-EEA", "--csv"], &station);
    let text = String::from_utf8_lossy(&csv.stdout);
    let broken: Vec<&str> = text.lines().filter(|l| l.ends_with(",broken")).collect();
    assert_eq!(broken.len(), 1, "{text}");
    assert!(broken[0].starts_with(&format!("{id},")), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.ends_with(",ok")).count(),
        7,
        "{text}"
    );
}
