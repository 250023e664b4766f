//! The fleet with a real PostgreSQL (a throwaway server started here, as `postgres` when root):
//! stations as `flashgate run --phones … --fleet` processes sharing one work order, the outbox
//! through a database that stops, a station killed mid-sync, a sync that cannot reach its
//! database, and a serial passed at one station flagged at another.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flashgate_scenarios::flashgate_bin;
use station::fleet::LocalPostgres;

use crate::cli_run::demo_copy;

fn server() -> LocalPostgres {
    let server = LocalPostgres::start_in(Path::new(env!("CARGO_TARGET_TMPDIR")))
        .expect("a local PostgreSQL (install Debian's postgresql)");
    let out = Command::new(flashgate_bin())
        .args(["fleet", "migrate", "--url", &server.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server
}

fn sql(server: &LocalPostgres, query: &str) -> i64 {
    let mut client = postgres::Client::connect(&server.url(), postgres::NoTls).unwrap();
    client.query_one(query, &[]).unwrap().get(0)
}

/// A station `id` in `demo` (a copy of the demo configs): its own station file and journal,
/// the fleet at `url`, a work order WO-FLEET of `quantity`, and a phones file of `phones`
/// fastboot phones with serials `<prefix>NN`.
fn station(demo: &Path, id: &str, url: &str, offline: &str, prefix: &str, phones: u16) -> PathBuf {
    let text = std::fs::read_to_string(demo.join("station.yaml")).unwrap();
    let text = text
        .replace("station_id: demo-st01", &format!("station_id: {id}"))
        .replace(
            "journal: state/journal.sqlite",
            &format!("journal: state/{id}.sqlite"),
        )
        .replace("log_dir: state/logs", &format!("log_dir: state/{id}-logs"));
    let file = demo.join(format!("{id}.yaml"));
    std::fs::write(&file, format!("{text}\nfleet:\n  url: {url}\n{offline}")).unwrap();
    let mut list = String::from("phones:\n");
    for slot in 1..=phones {
        list.push_str(&format!(
            "  - slot: {slot}\n    serial: {prefix}{slot:02}\n"
        ));
    }
    std::fs::write(demo.join(format!("{id}-phones.yaml")), list).unwrap();
    file
}

fn work_order(demo: &Path, quantity: u32) -> PathBuf {
    let file = demo.join("work-orders/WO-FLEET.yaml");
    std::fs::write(
        &file,
        format!("id: WO-FLEET\nproduct: fgdemo\nregion: 00WW\nquantity: {quantity}\n"),
    )
    .unwrap();
    file
}

fn spawn(demo: &Path, id: &str, extra: &[&str]) -> Child {
    Command::new(flashgate_bin())
        .arg("run")
        .arg("--station")
        .arg(demo.join(format!("{id}.yaml")))
        .arg("--work-order")
        .arg(demo.join("work-orders/WO-FLEET.yaml"))
        .arg("--phones")
        .arg(demo.join(format!("{id}-phones.yaml")))
        .args(["--fleet", "--json"])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The run's output, once it ended on its own terms (exit 0, or 1 for a batch with units not
/// passed): never a crash.
fn finish(child: Child) -> (String, String) {
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
        "{}: {stderr}",
        out.status
    );
    (stdout, stderr)
}

/// As [`finish`], for a run that must end exactly as a completed batch does (exit 0).
fn finish_cleanly(child: Child) -> (String, String) {
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{}: {stderr}\n{stdout}", out.status);
    (stdout, stderr)
}

/// The run's `batch_finished` event.
fn batch_finished(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter(|l| l.contains("\"event\":\"batch_finished\""))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no batch_finished event: {stdout}"))
}

fn backlog(demo: &Path, id: &str) -> u64 {
    let out = Command::new(flashgate_bin())
        .args(["sync", "status", "--json", "--sim", "--station"])
        .arg(demo.join(format!("{id}.yaml")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["backlog"].as_u64().unwrap()
}

fn journal_rows(demo: &Path, id: &str) -> i64 {
    let conn = rusqlite::Connection::open(demo.join(format!("state/{id}.sim.sqlite"))).unwrap();
    conn.query_row(
        "SELECT count(*) FROM attempts WHERE result <> 'IN_PROGRESS'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn three_stations_share_one_work_order_and_pass_exactly_its_quantity() {
    let server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 40);
    for (id, prefix) in [("st-a", "FA"), ("st-b", "FB"), ("st-c", "FC")] {
        station(&demo, id, &server.url(), "", prefix, 16);
    }
    let children: Vec<Child> = ["st-a", "st-b", "st-c"]
        .iter()
        .map(|id| spawn(&demo, id, &[]))
        .collect();
    let outputs: Vec<(String, String)> = children.into_iter().map(finish_cleanly).collect();
    // Every attempt is in the fleet database once, and exactly 40 units passed together.
    let attempts = sql(&server, "SELECT count(*) FROM attempts");
    let journals: i64 = ["st-a", "st-b", "st-c"]
        .iter()
        .map(|id| journal_rows(&demo, id))
        .sum();
    assert_eq!(attempts, journals);
    assert_eq!(
        sql(
            &server,
            "SELECT count(DISTINCT unit_serial) FROM attempts WHERE result = 'PASS'"
        ),
        40,
        "{outputs:?}"
    );
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM places WHERE state = 'passed'"
        ),
        40
    );
    // The phones beyond the order were never flashed: held on their slots, or (the few that
    // asked as the last places went) ABORTED before anything was written to them.
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE result <> 'PASS' AND flash_started_at_ms IS NULL"
        ),
        attempts - 40
    );
    // A station that did not pass its every phone ended on the fleet's word, naming its share.
    for (id, (stdout, stderr)) in ["st-a", "st-b", "st-c"].iter().zip(&outputs) {
        let here = sql(
            &server,
            &format!("SELECT count(*) FROM places WHERE state = 'passed' AND station_id = '{id}'"),
        );
        let finished = batch_finished(stdout);
        if here < 16 {
            let said = format!(
                "work order WO-FLEET complete across the fleet (40 of 40 passed, this station {here})"
            );
            assert_eq!(
                finished["fleet_complete"],
                said.as_str(),
                "{id}: {finished}"
            );
            assert!(stderr.contains(&said), "{id}: {stderr}");
        }
    }
    for id in ["st-a", "st-b", "st-c"] {
        assert_eq!(backlog(&demo, id), 0, "{id}");
    }
    // The fleet report: the journal's report, across the three stations.
    let report = |extra: &[&str]| {
        let out = Command::new(flashgate_bin())
            .args([
                "report",
                "--work-order",
                "WO-FLEET",
                "--fleet",
                &server.url(),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&report(&["--json"])).unwrap();
    assert_eq!(json["units_passed"], 40, "{json}");
    assert_eq!(json["attempts"], attempts, "{json}");
    let mut stations: Vec<&str> = json["stations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    stations.sort();
    assert_eq!(stations, ["st-a", "st-b", "st-c"]);
    assert_eq!(json["over_quantity"], serde_json::json!([]));
    let csv = report(&["--csv"]);
    assert_eq!(csv.lines().count() as i64, attempts + 1, "{csv}");
    let one_station: serde_json::Value =
        serde_json::from_str(&report(&["--json", "--station-id", "st-b"])).unwrap();
    assert_eq!(one_station["stations"], serde_json::json!(["st-b"]));
    // `history --fleet` with the station's own fleet section.
    let out = Command::new(flashgate_bin())
        .args(["history", "FC01", "--fleet", "--station"])
        .arg(demo.join("st-c.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("station st-c"),
        "{text}"
    );
}

#[test]
fn a_database_stopped_mid_batch_loses_and_duplicates_nothing() {
    let mut server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 100);
    let offline = "  when_offline: continue\n  offline_allowance: 50\n";
    station(&demo, "st-a", &server.url(), offline, "FA", 16);
    let child = spawn(&demo, "st-a", &[]);
    std::thread::sleep(Duration::from_millis(700));
    server.stop().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    server.start().unwrap();
    let (stdout, stderr) = finish(child);
    assert!(
        stdout.contains("\"reachable\":false"),
        "the station never saw the database gone: {stdout}"
    );
    // What the last shipment could not send goes at the next start: a second run of the same
    // phones (which passed already: they count once) drains it.
    if backlog(&demo, "st-a") > 0 {
        finish(spawn(&demo, "st-a", &[]));
    }
    assert_eq!(backlog(&demo, "st-a"), 0, "{stdout}\n{stderr}");
    let rows = journal_rows(&demo, "st-a");
    assert!(rows >= 16);
    assert_eq!(sql(&server, "SELECT count(*) FROM attempts"), rows);
    assert_eq!(
        sql(
            &server,
            "SELECT count(DISTINCT (journal_uid, journal_row)) FROM attempts"
        ),
        rows
    );
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM places WHERE state = 'passed'"
        ),
        16,
        "{stdout}"
    );
}

#[test]
fn a_station_killed_mid_sync_drains_its_backlog_when_restarted() {
    let server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 100);
    let offline = "  when_offline: continue\n  offline_allowance: 50\n";
    station(&demo, "st-k", &server.url(), offline, "FK", 16);
    let mut child = spawn(&demo, "st-k", &[]);
    // Killed once a few verdicts are in (SIGKILL: no last shipment, no clean stop).
    let stdout = child.stdout.take().unwrap();
    let mut verdicts = 0;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("\"event\":\"verdict\"") {
            verdicts += 1;
            if verdicts == 5 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let rows_at_kill = journal_rows(&demo, "st-k");
    assert!(rows_at_kill >= 5);
    // The restart closes the killed run's open attempts as ABORTED and ships everything.
    finish(spawn(&demo, "st-k", &[]));
    assert_eq!(backlog(&demo, "st-k"), 0);
    let rows = journal_rows(&demo, "st-k");
    assert_eq!(sql(&server, "SELECT count(*) FROM attempts"), rows);
    assert_eq!(
        sql(
            &server,
            "SELECT count(DISTINCT unit_serial) FROM attempts WHERE result = 'PASS'"
        ),
        16
    );
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM places WHERE state = 'passed'"
        ),
        16
    );
}

/// `/metrics` of the station's status endpoint.
fn metrics(addr: &str) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn a_sync_that_cannot_reach_its_database_shows_the_backlog_growing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (_dir, demo) = demo_copy();
    work_order(&demo, 100);
    let url = format!("postgres://flashgate@127.0.0.1:{port}/flashgate");
    let offline = "  when_offline: continue\n  offline_allowance: 50\n";
    station(&demo, "st-w", &url, offline, "FW", 8);
    let status = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = status.local_addr().unwrap().to_string();
    drop(status);
    let child = spawn(&demo, "st-w", &["--status-listen", &addr]);
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let text = metrics(&addr);
        if let Some(rows) = metric(&text, "flashgate_fleet_backlog_rows") {
            assert_eq!(metric(&text, "flashgate_fleet_reachable"), Some(0.0));
            if seen.last() != Some(&rows) {
                seen.push(rows);
            }
            if rows >= 4.0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (stdout, _) = finish(child);
    assert!(
        seen.len() >= 2 && seen.windows(2).all(|w| w[0] < w[1]),
        "backlog seen on /metrics: {seen:?}"
    );
    assert!(stdout.contains("FLEET DATABASE NOT REACHED") || stdout.contains("fleet_sync"));
    assert_eq!(backlog(&demo, "st-w"), journal_rows(&demo, "st-w") as u64);
}

#[test]
fn a_serial_passed_at_one_station_is_flagged_at_another() {
    let server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 100);
    station(&demo, "st-1", &server.url(), "", "FS", 1);
    station(&demo, "st-2", &server.url(), "", "FS", 1);
    let (first, _) = finish(spawn(&demo, "st-1", &[]));
    assert!(
        first.contains("\"result\":\"PASS\"") || first.contains("PASS"),
        "{first}"
    );
    let (second, _) = finish(spawn(&demo, "st-2", &[]));
    assert!(
        second.contains("serial FS01 passed at station st-1 under WO-FLEET"),
        "{second}"
    );
    let conn = rusqlite::Connection::open(demo.join("state/st-2.sim.sqlite")).unwrap();
    let flag: Option<String> = conn
        .query_row("SELECT seen_elsewhere FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        flag.as_deref(),
        Some("passed at station st-1 under WO-FLEET")
    );
    // One unit, one place, whatever the number of stations it passed at.
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM places WHERE state = 'passed'"
        ),
        1
    );
}

#[test]
fn passes_on_an_offline_allowance_are_reconciled_and_over_quantity_flagged() {
    let mut server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 3);
    let allowance = "  when_offline: continue\n  offline_allowance: 5\n";
    station(&demo, "st-on", &server.url(), "", "FO", 2);
    station(&demo, "st-off", &server.url(), allowance, "FX", 3);
    finish(spawn(&demo, "st-on", &[]));
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM places WHERE state = 'passed'"
        ),
        2
    );
    server.stop().unwrap();
    // Policy `continue`: three units on the station's own word (its file says 3 are ordered).
    let (offline, _) = finish(spawn(&demo, "st-off", &[]));
    assert_eq!(
        offline.matches("offline allowance (").count(),
        3,
        "{offline}"
    );
    assert_eq!(backlog(&demo, "st-off"), 3);
    // Back: the offline station's next start ships its backlog; two of its three passes are
    // beyond the order's quantity and flagged.
    server.start().unwrap();
    finish(spawn(&demo, "st-off", &[]));
    assert_eq!(backlog(&demo, "st-off"), 0);
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM places WHERE state = 'passed'"
        ),
        5
    );
    assert_eq!(
        sql(&server, "SELECT count(*) FROM attempts WHERE over_quantity"),
        2
    );
    let out = Command::new(flashgate_bin())
        .args([
            "report",
            "--work-order",
            "WO-FLEET",
            "--json",
            "--fleet",
            &server.url(),
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["over_quantity"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
}

/// `openssl` makes a CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
fn make_certificates(dir: &Path, name: &str) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ca = format!("{name}-ca");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={ca}"),
        "-keyout",
        &format!("{ca}.key"),
        "-out",
        &format!("{ca}.pem"),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.csr"),
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &format!("{name}.csr"),
        "-CA",
        &format!("{ca}.pem"),
        "-CAkey",
        &format!("{ca}.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        &format!("{name}.crt"),
    ]);
}

#[test]
fn the_fleet_database_is_reached_over_verified_tls() {
    let mut server = LocalPostgres::start_in(Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap();
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path(), "db");
    make_certificates(certs.path(), "other");
    server
        .enable_tls(&certs.path().join("db.crt"), &certs.path().join("db.key"))
        .unwrap();
    let migrate = |ca: &str| {
        Command::new(flashgate_bin())
            .args(["fleet", "migrate", "--url", &server.url()])
            .env("PGSSLROOTCERT", certs.path().join(ca))
            .output()
            .unwrap()
    };
    // A server whose certificate another CA signed is refused.
    let refused = migrate("other-ca.pem");
    assert!(!refused.status.success());
    let migrated = migrate("db-ca.pem");
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let (_dir, demo) = demo_copy();
    work_order(&demo, 10);
    let tls = format!(
        "  tls: verify\n  ca_file: {}\n",
        certs.path().join("db-ca.pem").display()
    );
    station(&demo, "st-t", &server.url(), &tls, "FT", 2);
    finish(spawn(&demo, "st-t", &[]));
    assert_eq!(backlog(&demo, "st-t"), 0);
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE result = 'PASS'"
        ),
        2
    );
}

/// Puts station `id` (made by [`station`]) on `line`, or on none.
fn put_on_line(demo: &Path, id: &str, line: Option<&str>) {
    let file = demo.join(format!("{id}.yaml"));
    let text = std::fs::read_to_string(&file).unwrap();
    let named = line.map_or_else(String::new, |line| format!("\nline: {line}\n"));
    let text = text.replacen("\nline: demo-line1\n", &named, 1);
    std::fs::write(&file, text).unwrap();
}

fn flashgate(args: &[&str]) -> String {
    let out = Command::new(flashgate_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn stations_on_two_lines_are_reported_by_line_once_the_database_knows_lines() {
    let server = server();
    let url = server.url();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 100);
    for (id, prefix, phones, line) in [
        ("st-l1a", "LA", 2, Some("L1")),
        ("st-l1b", "LB", 1, Some("L1")),
        ("st-l2", "LC", 3, Some("L2")),
        ("st-old", "LN", 1, None),
    ] {
        station(&demo, id, &url, "", prefix, phones);
        put_on_line(&demo, id, line);
    }
    // The database as a flashgate from before lines left it (schema v1): a station holds on it,
    // flashing nothing, and says what to do.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(
            "DROP TABLE station_heartbeats; DROP INDEX attempts_by_line;
             ALTER TABLE attempts DROP COLUMN line; UPDATE fleet_schema SET version = 1",
        )
        .unwrap();
    let mut held = Station(Some(spawn(&demo, "st-l2", &[])));
    let (lines, mut seen) = until_holding(held.0.as_mut().unwrap());
    assert!(
        seen.contains(&format!("FLEET DATABASE NOT USABLE ({url})"))
            && seen.contains("schema is v1, this flashgate knows v3: run `flashgate fleet migrate"),
        "{seen}"
    );
    assert_eq!(journal_rows(&demo, "st-l2"), 0, "{seen}");
    let status = |id: &str| -> serde_json::Value {
        let file = demo.join(format!("{id}.yaml"));
        let text = flashgate(&[
            "sync",
            "status",
            "--json",
            "--sim",
            "--station",
            file.to_str().unwrap(),
        ]);
        serde_json::from_str(&text).unwrap()
    };
    let before = status("st-l2");
    assert_eq!(before["backlog"], 0, "{before}");
    assert_eq!(before["fleet"]["reachable"], true, "{before}");
    assert_eq!(before["fleet"]["rows"], 0, "{before}");
    // Migrated, the held station resumes on its own; the others run beside it.
    flashgate(&["fleet", "migrate", "--url", &url]);
    let children: Vec<Child> = ["st-l1a", "st-l1b", "st-old"]
        .iter()
        .map(|id| spawn(&demo, id, &[]))
        .collect();
    for child in children {
        finish(child);
    }
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status_l2 = held.0.take().unwrap().wait().unwrap();
    assert!(status_l2.success(), "{status_l2}: {seen}");
    // What the fleet holds of the station's journal, beside what the journal shipped.
    let after = status("st-l2");
    assert_eq!(
        (&after["backlog"], &after["shipped"]),
        (&0.into(), &3.into()),
        "{after}"
    );
    assert_eq!(after["fleet"]["rows"], 3, "{after}");
    assert_eq!(
        after["fleet"]["last_row"], after["last_shipped_row"],
        "{after}"
    );

    let report = |extra: &[&str]| {
        let mut args = vec!["report", "--work-order", "WO-FLEET", "--fleet", &url];
        args.extend_from_slice(extra);
        flashgate(&args)
    };
    // CSV: one row per attempt, the line second to last (empty: no line recorded).
    let csv = report(&["--csv"]);
    let per_line = |csv: &str| {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for record in csv.split_terminator("\r\n").skip(1) {
            let fields: Vec<&str> = record.split(',').collect();
            *counts
                .entry(fields[fields.len() - 2].to_string())
                .or_default() += 1;
        }
        counts.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(
        per_line(&csv),
        [("".into(), 1), ("L1".into(), 3), ("L2".into(), 3)],
        "{csv}"
    );
    let only_l2 = report(&["--csv", "--line", "L2"]);
    assert_eq!(per_line(&only_l2), [("L2".into(), 3)], "{only_l2}");
    // JSON: the counts of each line, the attempts without a line last under their own name.
    let json: serde_json::Value = serde_json::from_str(&report(&["--json"])).unwrap();
    let by_line = json["by_line"].as_array().unwrap();
    let summary: Vec<(String, u64, u64, u64)> = by_line
        .iter()
        .map(|g| {
            (
                g["label"].as_str().unwrap().to_string(),
                g["attempts"].as_u64().unwrap(),
                g["units_passed"].as_u64().unwrap(),
                g["attempts_aborted"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("L1".into(), 3, 3, 0),
            ("L2".into(), 3, 3, 0),
            ("no line recorded".into(), 1, 1, 0)
        ],
        "{json}"
    );
    let mut l1_stations: Vec<&str> = by_line[0]["stations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    l1_stations.sort_unstable();
    assert_eq!(l1_stations, ["st-l1a", "st-l1b"], "{json}");
    let l1: serde_json::Value = serde_json::from_str(&report(&["--json", "--line", "L1"])).unwrap();
    assert_eq!(
        (&l1["attempts"], &l1["units_passed"]),
        (&3.into(), &3.into()),
        "{l1}"
    );
    // `history --fleet`: each attempt under its fleet attempt id, with its line and station.
    let text = flashgate(&["history", "LC01", "--fleet", &url]);
    let uid = before["journal_uid"].as_str().unwrap();
    let rows = client
        .query(
            "SELECT journal_row FROM attempts WHERE unit_serial = 'LC01' ORDER BY journal_row",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 1, "{text}");
    for row in rows {
        let id: i64 = row.get(0);
        assert!(
            text.contains(&format!("\n#{id} (journal {uid}) ")),
            "{text}"
        );
    }
    assert_eq!(
        text.matches("  line L2  station st-l2 slot 1").count(),
        1,
        "{text}"
    );
    let text = flashgate(&["history", "LN01", "--fleet", &url]);
    assert!(
        text.contains("  no line recorded  station st-old"),
        "{text}"
    );
}

/// The station's stdout read up to its first `holding` event: the lines after it, and what was
/// read (the event included).
fn until_holding(
    child: &mut Child,
) -> (std::io::Lines<BufReader<std::process::ChildStdout>>, String) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("\"event\":\"holding\"") {
            break;
        }
    }
    (lines, seen)
}

/// Polls `query` until it answers `wanted` (or fails after 60 s).
fn wait_for(server: &LocalPostgres, query: &str, wanted: i64) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if sql(server, query) == wanted {
            return;
        }
        assert!(Instant::now() < until, "`{query}` never answered {wanted}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Phones that hang in their flashing (`for`: a time, or `ever`), for station `id`.
fn hanging_phones(demo: &Path, id: &str, prefix: &str, hang: &str) {
    let mut list = String::from("phones:\n");
    for slot in 1..=2 {
        list.push_str(&format!(
            "  - slot: {slot}\n    serial: {prefix}{slot:02}\n    faults:\n      \
             hang: [{{ on: flash, for: {hang} }}]\n"
        ));
    }
    std::fs::write(demo.join(format!("{id}-phones.yaml")), list).unwrap();
}

/// A station process that is killed if the test ends before it does (a stopped one included).
struct Station(Option<Child>);

impl Station {
    fn child(&self) -> &Child {
        self.0.as_ref().unwrap()
    }

    fn into_child(mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn places_held_by_a_killed_or_silent_station_go_to_another_after_the_lease() {
    let server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 4);
    let lease = "  place_lease_secs: 2\n";
    station(&demo, "st-dead", &server.url(), lease, "FD", 2);
    station(&demo, "st-paused", &server.url(), lease, "FP", 2);
    station(&demo, "st-live", &server.url(), lease, "FL", 4);
    let reserved = |n| {
        wait_for(
            &server,
            "SELECT count(*) FROM places WHERE state = 'reserved'",
            n,
        );
    };
    // One station holds two places and is killed in the middle of flashing.
    hanging_phones(&demo, "st-dead", "FD", "ever");
    let mut dead = spawn(&demo, "st-dead", &[]);
    reserved(2);
    dead.kill().unwrap();
    dead.wait().unwrap();
    // Another holds the other two and goes silent (stopped, as a station cut off from the
    // database would be), its phones still to pass.
    hanging_phones(&demo, "st-paused", "FP", "3s");
    let paused = Station(Some(spawn(&demo, "st-paused", &[])));
    reserved(4);
    signal(paused.child(), "-STOP");
    // A third waits for a place (the silent ones may yet come back), takes all four once their
    // leases have lapsed, and completes the order.
    let (stdout, _) = finish_cleanly(spawn(&demo, "st-live", &[]));
    assert!(
        stdout.contains("waiting for a place: 4 held by other stations"),
        "{stdout}"
    );
    let passed_at = |id: &str| {
        sql(
            &server,
            &format!("SELECT count(*) FROM places WHERE state = 'passed' AND station_id = '{id}'"),
        )
    };
    assert_eq!(passed_at("st-live"), 4);
    // The silent station comes back: its units pass, and their passes are recorded, flagged
    // beyond the quantity; the order complete elsewhere ends its batch.
    signal(paused.child(), "-CONT");
    let (stdout, _) = finish_cleanly(paused.into_child());
    // (It learns the order is complete as it resumes, before its own passes are shipped.)
    let finished = batch_finished(&stdout);
    assert!(
        finished["fleet_complete"]
            .as_str()
            .is_some_and(|s| s.starts_with("work order WO-FLEET complete across the fleet (")),
        "{stdout}"
    );
    assert_eq!(finished["passed"], 2, "{stdout}");
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE over_quantity AND station_id = 'st-paused'"
        ),
        2
    );
    // The killed station restarted: its cut attempts are closed and shipped, and the order,
    // complete elsewhere, ends its batch at once: no phone is flashed, exit 0.
    let (stdout, stderr) = finish_cleanly(spawn(&demo, "st-dead", &[]));
    let said = "work order WO-FLEET complete across the fleet (6 of 4 passed, this station 0)";
    assert_eq!(batch_finished(&stdout)["fleet_complete"], said, "{stdout}");
    assert!(stderr.contains(said), "{stderr}");
    assert!(stdout.contains("take it off the slot"), "{stdout}");
    assert_eq!(backlog(&demo, "st-dead"), 0);
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE station_id = 'st-dead' AND result = 'ABORTED' \
             AND flash_done_at_ms IS NULL"
        ),
        2
    );
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE result = 'PASS'"
        ),
        6
    );
}

#[test]
fn under_when_offline_stop_a_station_holds_while_the_database_is_away_and_resumes() {
    let mut server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 2);
    station(&demo, "st-s", &server.url(), "", "FZ", 2);
    server.stop().unwrap();
    let mut child = spawn(&demo, "st-s", &[]);
    let (lines, mut seen) = until_holding(&mut child);
    assert!(
        seen.contains(&format!("FLEET DATABASE NOT REACHED ({})", server.url()))
            && seen.contains("fleet.when_offline: stop"),
        "{seen}"
    );
    // Held, not flashed, not aborted in a loop: the phones wait on their slots.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(journal_rows(&demo, "st-s"), 0);
    server.start().unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {seen}");
    assert!(
        seen.contains("\"event\":\"holding\",\"why\":null"),
        "{seen}"
    );
    assert_eq!(journal_rows(&demo, "st-s"), 2);
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM places WHERE state = 'passed'"
        ),
        2
    );
}

#[test]
fn a_pass_on_a_place_that_lapsed_is_flagged_beyond_the_quantity_whichever_station_ships_last() {
    let server = server();
    let (_dir, demo) = demo_copy();
    work_order(&demo, 2);
    let lease = "  place_lease_secs: 2\n";
    station(&demo, "st-paused", &server.url(), lease, "FP", 2);
    station(&demo, "st-taker", &server.url(), lease, "FT", 2);
    let reserved_at = |id: &str, n| {
        wait_for(
            &server,
            &format!(
                "SELECT count(*) FROM places WHERE state = 'reserved' AND station_id = '{id}'"
            ),
            n,
        );
    };
    // One station holds both places and goes silent mid-flash.
    hanging_phones(&demo, "st-paused", "FP", "3s");
    let paused = Station(Some(spawn(&demo, "st-paused", &[])));
    reserved_at("st-paused", 2);
    signal(paused.child(), "-STOP");
    // Another takes both places once the leases lapse, and flashes slowly.
    hanging_phones(&demo, "st-taker", "FT", "15s");
    let taker = Station(Some(spawn(&demo, "st-taker", &[])));
    reserved_at("st-taker", 2);
    // The silent one comes back and ships its two passes first: within the quantity then.
    signal(paused.child(), "-CONT");
    finish_cleanly(paused.into_child());
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE result = 'PASS' AND over_quantity"
        ),
        0
    );
    // The taker's passes, kept on the places it held, are the ones beyond the quantity.
    finish_cleanly(taker.into_child());
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE result = 'PASS'"
        ),
        4
    );
    assert_eq!(
        sql(
            &server,
            "SELECT count(*) FROM attempts WHERE over_quantity AND station_id = 'st-taker'"
        ),
        2
    );
}
