//! The trust chain through the `flashgate` binary: the README's main command leaves a journal
//! whose hash chain `journal verify` finds intact, and an edit made afterwards with plain SQL is
//! named (and `report` says the chain is broken); each PASS has a signed unit proof that
//! Debian's `minisign` and `flashgate unit verify` both check, and neither accepts once one byte
//! changed.

use std::process::Command;

use flashgate_scenarios::flashgate_bin;
use protocols::external_tool;

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
    assert!(
        text.contains("chain        intact (8 attempts chained"),
        "{text}"
    );

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
    // The unit's signed proof names the column that changed.
    assert!(
        text.contains("region is 00WW but its signed unit proof says 00EEA"),
        "{text}"
    );
    let report = flashgate(&["report", "--work-order", "WO-DEMO-EEA"], &station);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("chain        BROKEN: 1 problem(s)"), "{text}");

    let csv = flashgate(
        &["report", "--work-order", "WO-DEMO-EEA", "--csv"],
        &station,
    );
    let text = String::from_utf8_lossy(&csv.stdout);
    // The `chain` column, before the line and the journal uid.
    let chain = |l: &&str| l.rsplit(',').nth(2).unwrap_or_default().to_string();
    let broken: Vec<&str> = text.lines().filter(|l| chain(l) == "broken").collect();
    assert_eq!(broken.len(), 1, "{text}");
    assert!(broken[0].starts_with(&format!("{id},")), "{text}");
    assert_eq!(
        text.lines().filter(|l| chain(l) == "ok").count(),
        7,
        "{text}"
    );
}

fn output(command: &mut Command) -> (bool, String) {
    let out = command.output().expect("running a command");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_pass_has_a_proof_that_minisign_and_unit_verify_check() {
    external_tool::require("minisign");
    let (keep, demo) = demo_copy();
    let out = run(&demo, "WO-DEMO-EEA", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let station = demo.join("station.yaml");
    let proof = keep.path().join("FG000105.json");
    let (ok, text) = output(
        Command::new(flashgate_bin())
            .args(["unit", "proof", "5EC00105", "--out"])
            .arg(&proof)
            .arg("--station")
            .arg(&station),
    );
    assert!(ok, "{text}");
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    assert_eq!(statement["unit_serial"], "FG000105", "{statement}");
    assert_eq!(statement["chip_serial"], "5EC00105", "{statement}");
    assert_eq!(statement["region"], "00EEA", "{statement}");
    assert_eq!(statement["work_order"], "WO-DEMO-EEA", "{statement}");
    assert_eq!(statement["demo_key"], true, "{statement}");

    let public_key = std::fs::read_to_string(demo.join("keys/demo-station.pub"))
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let minisign_verify = |file: &std::path::Path| {
        output(
            external_tool::command("minisign")
                .arg("-V")
                .arg("-m")
                .arg(file)
                .arg("-P")
                .arg(&public_key),
        )
    };
    let flashgate_verify = |file: &std::path::Path| {
        output(
            Command::new(flashgate_bin())
                .args(["unit", "verify"])
                .arg(file)
                .arg("--station")
                .arg(&station),
        )
    };
    let (ok, text) = minisign_verify(&proof);
    assert!(ok, "{text}");
    assert!(
        text.contains("Trusted comment: flashgate unit proof: PASS FG000105"),
        "{text}"
    );
    let (ok, text) = flashgate_verify(&proof);
    assert!(ok, "{text}");
    assert!(
        text.contains("GOOD signature by station key 691DB5468010B811"),
        "{text}"
    );
    assert!(text.contains("DEMO key"), "{text}");

    // One byte changed: both refuse.
    let mut bytes = std::fs::read(&proof).unwrap();
    let at = bytes.windows(5).position(|w| w == b"00EEA").unwrap();
    bytes[at + 2] = b'C';
    std::fs::write(&proof, &bytes).unwrap();
    let (ok, text) = minisign_verify(&proof);
    assert!(!ok, "{text}");
    let (ok, text) = flashgate_verify(&proof);
    assert!(!ok, "{text}");
    assert!(text.contains("BAD SIGNATURE"), "{text}");

    // The journal holds each proof against its row, signatures checked with the pinned key.
    let (ok, text) = output(
        Command::new(flashgate_bin())
            .args(["journal", "verify", "--station"])
            .arg(&station),
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("unit proofs: 8 held against their rows, signatures checked with key 691DB5468010B811; 0 chained"),
        "{text}"
    );
}

#[test]
fn a_key_from_station_keygen_signs_with_minisign_and_verifies_with_flashgate() {
    external_tool::require("minisign");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("station.key");
    let (ok, text) = output(
        Command::new(flashgate_bin())
            .args(["station", "keygen", "--out"])
            .arg(&key),
    );
    assert!(ok, "{text}");
    assert!(text.contains("station_key:\n  public_key: RW"), "{text}");
    // Debian's minisign signs a file with that key (no password) ...
    let file = dir.path().join("statement.json");
    std::fs::write(&file, b"{\"format\": \"not a proof\"}\n").unwrap();
    let (ok, text) = output(
        external_tool::command("minisign")
            .arg("-S")
            .arg("-s")
            .arg(&key)
            .arg("-m")
            .arg(&file)
            .arg("-t")
            .arg("signed by minisign"),
    );
    assert!(ok, "{text}");
    // ... and flashgate checks that signature with the .pub file: good, but not a proof.
    let mut pubkey = key.as_os_str().to_owned();
    pubkey.push(".pub");
    let (ok, text) = output(
        Command::new(flashgate_bin())
            .args(["unit", "verify"])
            .arg(&file)
            .arg("--pubkey")
            .arg(&pubkey),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("the signature is good but the statement is not a flashgate unit proof"),
        "{text}"
    );
    // The key's file is the station user's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_station_key_others_can_read_stops_check_and_run_before_any_phone() {
    let (keep, demo) = demo_copy();
    let key = keep.path().join("line.key");
    let (ok, text) = output(
        Command::new(flashgate_bin())
            .args(["station", "keygen", "--out"])
            .arg(&key),
    );
    assert!(ok, "{text}");
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("  public_key: "))
        .unwrap()
        .to_string();
    let station = demo.join("station.yaml");
    let yaml = std::fs::read_to_string(&station).unwrap();
    let yaml = yaml
        .replace(
            "RWQRuBCARrUdaacSrjpFCtzIEm6ZeZZmSUOKiMl85xsO/RcWeC6WIVDK",
            &public,
        )
        .replace("keys/demo-station.key", key.to_str().unwrap());
    std::fs::write(&station, yaml).unwrap();
    let check = || {
        output(
            Command::new(flashgate_bin())
                .args(["check", "--station"])
                .arg(&station)
                .arg("--work-order")
                .arg(demo.join("work-orders/WO-DEMO-EEA.yaml")),
        )
    };
    let (ok, text) = check();
    assert!(ok, "{text}");
    assert!(text.contains("ok   station key: "), "{text}");

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, text) = check();
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL station key: station key") && text.contains("chmod 600"),
        "{text}"
    );
    let out = run(&demo, "WO-DEMO-EEA", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("readable by group or others"), "{stderr}");
    assert!(out.stdout.is_empty(), "no batch started: {stderr}");
}
