//! The README's main command, end to end through the `flashgate` binary: pre-flight, a batch
//! of simulated phones (fastboot and EDL), the JSON event stream, the journal and `report`.

use std::path::Path;
use std::process::Command;

pub(crate) use flashgate_scenarios::batch::demo_copy;
use flashgate_scenarios::flashgate_bin;

pub(crate) fn run(demo: &Path, work_order: &str, extra: &[&str]) -> std::process::Output {
    Command::new(flashgate_bin())
        .arg("run")
        .arg("--station")
        .arg(demo.join("station.yaml"))
        .arg("--work-order")
        .arg(demo.join(format!("work-orders/{work_order}.yaml")))
        .arg("--json")
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("running flashgate")
}

pub(crate) fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line: {e}: {line}"))
        })
        .collect()
}

#[test]
fn the_main_job_passes_every_demo_phone_and_journals_it() {
    let (_keep, demo) = demo_copy();
    let out = run(&demo, "WO-DEMO-EEA", &["--operator", "op-1042"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "flashgate run failed: {stderr}");
    let events = events(&out.stdout);
    let verdicts: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "verdict").collect();
    assert_eq!(verdicts.len(), 8, "{stderr}");
    assert!(verdicts.iter().all(|v| v["verdict"]["result"] == "PASS"));
    // Four phones started in EDL and came back as fastboot on their own slot.
    let mode_changes = events
        .iter()
        .filter(|e| e["event"] == "mode_changed" && e["mode"] == "fastboot")
        .count();
    assert_eq!(mode_changes, 4);
    // An EDL phone's chip serial reads the same from its USB product string (at detection)
    // and from Sahara (at identification).
    for detected in events
        .iter()
        .filter(|e| e["event"] == "unit_detected" && e["mode"] == "edl")
    {
        let identified = events
            .iter()
            .find(|e| e["event"] == "unit_identified" && e["slot"] == detected["slot"])
            .unwrap();
        assert_eq!(identified["serial"], detected["serial"], "{detected}");
        assert!(
            detected["serial"].as_str().unwrap().starts_with("5EC001"),
            "{detected}"
        );
    }
    let finished = events.last().unwrap();
    assert_eq!(finished["event"], "batch_finished");
    assert_eq!(finished["passed"], 8);
    assert!(
        stderr.contains("passed 8 of 100 ordered (this run 8), failed 0, aborted 0"),
        "{stderr}"
    );

    let report = Command::new(flashgate_bin())
        .args([
            "report",
            "--work-order",
            "WO-DEMO-EEA",
            "--json",
            "--station",
        ])
        .arg(demo.join("station.yaml"))
        .output()
        .unwrap();
    assert!(report.status.success());
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["units_passed"], 8, "{report}");
    assert_eq!(report["attempts_failed"], 0, "{report}");
    assert_eq!(report["regions"][0], "00EEA", "{report}");

    // One unit, two serials: an EDL phone is found by the chip serial it showed in EDL and by
    // the fastboot serial it answered with after its reset; the row carries the operator and
    // the IMEI the product reads with `getvar imei`.
    let history = |name: &str| -> Vec<serde_json::Value> {
        let out = Command::new(flashgate_bin())
            .args(["history", "--json", name, "--station"])
            .arg(demo.join("station.yaml"))
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let by_chip = history("5EC00105");
    assert_eq!(by_chip.len(), 1, "{by_chip:?}");
    let row = &by_chip[0];
    assert_eq!(row["unit_serial"], "FG000105", "{row}");
    assert_eq!(row["chip_serial"], "5EC00105", "{row}");
    assert_eq!(row["operator_id"], "op-1042", "{row}");
    assert_eq!(row["unit_code_source"], "getvar:imei", "{row}");
    // The README's main command runs with signature checking on, and reads the build id back.
    assert_eq!(
        row["manifest_signed_by"], "flashgate-demo (key id AD7274E4FD7DC8D6)",
        "{row}"
    );
    assert_eq!(row["engineering_mode"], false, "{row}");
    assert_eq!(row["build_id_found"], "FGDEMO.00EEA.20251128", "{row}");
    let imei = row["unit_code"].as_str().unwrap();
    assert!(
        imei.len() == 15 && imei.starts_with("35693803000105"),
        "{imei}"
    );
    assert_eq!(history("FG000105"), by_chip);
    assert_eq!(history(imei), by_chip);
    let fastboot_unit = &history("FG000101")[0];
    assert_eq!(fastboot_unit["chip_serial"], serde_json::Value::Null);
    assert!(
        fastboot_unit["unit_code"].as_str().is_some(),
        "{fastboot_unit}"
    );

    // `history … | head` on a reader that has already gone: the listing ends quietly, it
    // does not panic on the closed pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let history = Command::new(flashgate_bin())
        .args(["history", "--json", "FG000101", "--station"])
        .arg(demo.join("station.yaml"))
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&history.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_mis_packaged_build_is_refused_before_any_phone_is_touched() {
    let (_keep, demo) = demo_copy();
    // Ship the China system image under the EEA name, with a manifest whose size and hash match
    // the file: only the activation client inside gives it away.
    let images = demo.join("images");
    std::fs::copy(
        images.join("00CN/system.img"),
        images.join("00EEA/system.img"),
    )
    .unwrap();
    let manifest = demo.join("products/fgdemo.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let cn_line = text
        .lines()
        .find(|l| l.contains("path: 00CN/system.img"))
        .unwrap()
        .replace("00CN/", "00EEA/");
    let patched: Vec<String> = text
        .lines()
        .map(|l| {
            if l.contains("path: 00EEA/system.img") {
                cn_line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&manifest, patched.join("\n")).unwrap();
    flashgate_scenarios::sign_manifest(&manifest);

    let out = run(&demo, "WO-DEMO-EEA", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ACTIVATION_CLIENT_WRONG_REGION") && stderr.contains("00CN client"),
        "{stderr}"
    );
    assert!(stderr.contains("no phone was touched"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "a batch started: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!demo.join("state/journal.sqlite").exists());
}

/// `flashgate run` with a deadline: a pre-flight that blocks fails the test instead of hanging.
fn run_within(demo: &Path, work_order: &str) -> std::process::Output {
    let mut child = Command::new(flashgate_bin())
        .arg("run")
        .arg("--station")
        .arg(demo.join("station.yaml"))
        .arg("--work-order")
        .arg(demo.join(format!("work-orders/{work_order}.yaml")))
        .arg("--json")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running flashgate");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("flashgate run did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn a_fifo_or_a_missing_file_is_refused_once_with_what_it_is() {
    let (_keep, demo) = demo_copy();
    let boot = demo.join("images/00EEA/boot.img");
    std::fs::remove_file(&boot).unwrap();
    let status = Command::new("mkfifo").arg(&boot).status().unwrap();
    assert!(status.success());
    let out = run_within(&demo, "WO-DEMO-EEA");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "a batch started");
    assert_eq!(
        stderr.matches("is a FIFO, not a regular file").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("image `boot`"), "{stderr}");

    std::fs::remove_file(&boot).unwrap();
    let out = run_within(&demo, "WO-DEMO-EEA");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("no such file").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("image `boot`").count(), 1, "{stderr}");
    assert!(!stderr.contains("IMAGE_HASH_MISMATCH"), "{stderr}");
    assert!(stderr.contains("IMAGE_MISSING: image `boot`"), "{stderr}");

    // Other bytes under the right name: said once, under IMAGE_HASH_MISMATCH.
    let mut bytes = std::fs::read(demo.join("images/00EEA/vbmeta.img")).unwrap();
    bytes[10] ^= 1;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo/images/00EEA/boot.img"),
        &boot,
    )
    .unwrap();
    std::fs::write(demo.join("images/00EEA/vbmeta.img"), bytes).unwrap();
    let out = run_within(&demo, "WO-DEMO-EEA");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("IMAGE_HASH_MISMATCH").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("SHA-256").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("image `vbmeta`").count(), 1, "{stderr}");
}

fn report_json(demo: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(flashgate_bin())
        .args([
            "report",
            "--work-order",
            "WO-DEMO-WW",
            "--json",
            "--station",
        ])
        .arg(demo.join("station.yaml"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn simulated_phones_write_their_own_journal_never_the_stations() {
    let (_keep, demo) = demo_copy();
    let out = run(&demo, "WO-DEMO-WW", &["--sim", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        events(&out.stdout)
            .iter()
            .filter(|e| e["event"] == "verdict")
            .count(),
        2,
        "{stderr}"
    );
    assert!(
        stderr.contains("simulated phones: journal ")
            && stderr.contains("journal.sim.sqlite")
            && stderr.contains("not the station's journal"),
        "{stderr}"
    );
    assert!(demo.join("state/journal.sim.sqlite").exists());
    assert!(
        !demo.join("state/journal.sqlite").exists(),
        "simulated phones reached the station's journal"
    );
    assert!(demo.join("state/logs/sim").is_dir());
    // The daily JSON log's detection and verdict records name the unit; each unit log, in its
    // day's folder, ends with the verdict.
    let logs = demo.join("state/logs/sim");
    let daily: Vec<serde_json::Value> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<serde_json::Value>>()
        })
        .collect();
    for message in ["unit detected", "verdict"] {
        let records: Vec<_> = daily.iter().filter(|o| o["message"] == message).collect();
        assert_eq!(records.len(), 2, "{message}: {daily:?}");
        for record in records {
            for key in ["slot", "port_path", "work_order"] {
                assert!(!record[key].is_null(), "{message} lacks {key}: {record}");
            }
            assert_eq!(record["work_order"], "WO-DEMO-WW", "{record}");
        }
    }
    for verdict in daily.iter().filter(|o| o["message"] == "verdict") {
        assert!(
            verdict["serial"].as_str().is_some_and(|s| !s.is_empty()),
            "{verdict}"
        );
        assert_eq!(verdict["result"], "PASS", "{verdict}");
    }
    let day = station::logging::utc_day(std::time::SystemTime::now());
    let unit_logs: Vec<_> = std::fs::read_dir(logs.join("units").join(&day))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(unit_logs.len(), 2, "{unit_logs:?}");
    for path in unit_logs {
        let text = std::fs::read_to_string(&path).unwrap();
        let last = text.lines().last().unwrap();
        assert!(last.contains(" verdict PASS (journal attempt "), "{last}");
    }

    // `report` on the station's journal has nothing; with `--sim` it reads the rig's.
    let production = report_json(&demo, &[]);
    assert!(!production.status.success());
    let simulated = report_json(&demo, &["--sim"]);
    assert!(simulated.status.success());
    let report: serde_json::Value = serde_json::from_slice(&simulated.stdout).unwrap();
    assert_eq!(report["units_passed"], 2, "{report}");
    // The demo station names its line: every attempt was made on it.
    assert_eq!(report["by_line"][0]["line"], "demo-line1", "{report}");
    assert_eq!(report["by_line"][0]["units_passed"], 2, "{report}");
    assert_eq!(report["by_line"].as_array().map(Vec::len), Some(1));
    let other_line = report_json(&demo, &["--sim", "--line", "line9"]);
    let other_line: serde_json::Value = serde_json::from_slice(&other_line.stdout).unwrap();
    assert_eq!(other_line["attempts"], 0, "{other_line}");

    // The same records as CSV, narrowed to this station and to today.
    let csv = Command::new(flashgate_bin())
        .args(["report", "--work-order", "WO-DEMO-WW", "--csv", "--sim"])
        .args([
            "--station-id",
            "demo-st01",
            "--since",
            "2000-01-01",
            "--station",
        ])
        .arg(demo.join("station.yaml"))
        .output()
        .unwrap();
    assert!(
        csv.status.success(),
        "{}",
        String::from_utf8_lossy(&csv.stderr)
    );
    let text = String::from_utf8(csv.stdout).unwrap();
    let records: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(records.len(), 3, "{text}");
    assert!(
        records[0].starts_with("attempt_id,work_order,station_id,"),
        "{text}"
    );
    assert!(records[1..]
        .iter()
        .all(|r| r.contains(",WO-DEMO-WW,demo-st01,")));
    // The last two columns: the line, and the journal whose row `attempt_id` is.
    let uid = rusqlite::Connection::open(demo.join("state/journal.sim.sqlite"))
        .unwrap()
        .query_row("SELECT uid FROM journal_identity", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap();
    assert!(
        records[1..]
            .iter()
            .all(|r| r.ends_with(&format!(",demo-line1,{uid}"))),
        "{text}"
    );
    let elsewhere = Command::new(flashgate_bin())
        .args(["report", "--work-order", "WO-DEMO-WW", "--csv", "--sim"])
        .args(["--station-id", "other", "--station"])
        .arg(demo.join("station.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(elsewhere.stdout).unwrap().lines().count(),
        1
    );
    let bad = Command::new(flashgate_bin())
        .args([
            "report",
            "--work-order",
            "WO-DEMO-WW",
            "--since",
            "yesterday",
            "--station",
        ])
        .arg(demo.join("station.yaml"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since: `yesterday` is not a date"));
}
