//! `flashgate dashboard` attached to a running `flashgate run`: what a second terminal on the
//! station's PC receives and draws, and what it says when no station runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use flashgate_scenarios::batch::demo_copy;
use flashgate_scenarios::flashgate_bin;

/// `flashgate run --json` in the background, its phones (`--sim N` or `--phones FILE`) and any
/// other options in `args`.
fn start_batch(demo: &Path, args: &[&str]) -> Child {
    Command::new(flashgate_bin())
        .arg("run")
        .arg("--station")
        .arg(demo.join("station.yaml"))
        .arg("--work-order")
        .arg(demo.join("work-orders/WO-DEMO-EEA.yaml"))
        .arg("--json")
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting flashgate run")
}

/// A phones file of 48 phones, the first of which holds its system flash for 10 s: however loaded
/// the machine, the batch still runs when a second process attaches to it (48 quick phones can
/// all be done before that process starts).
fn phones_outlasting_the_attach(demo: &Path) -> PathBuf {
    let phones = demo.join("phones-48.yaml");
    let mut entries = String::from(
        "phones:\n  - slot: 1\n    faults:\n      hang: [{ on: \"flash:system_a\", for: 10s }]\n",
    );
    for slot in 2..=48 {
        entries.push_str(&format!("  - slot: {slot}\n"));
    }
    std::fs::write(&phones, entries).unwrap();
    phones
}

fn wait_for_socket(path: &Path, station: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(status) = station.try_wait().unwrap() {
            panic!("the station ended ({status}) before its socket appeared");
        }
        assert!(Instant::now() < deadline, "no socket at {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn attach(socket: &Path, extra: &[&str]) -> Output {
    Command::new(flashgate_bin())
        .arg("dashboard")
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("running flashgate dashboard")
}

fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn two_dashboards_attached_to_a_running_batch_see_every_verdict_the_station_journals() {
    let (_keep, demo) = demo_copy();
    // A simulated run publishes beside its own journal (journal.sim.sqlite).
    let socket = demo.join("state/journal.sim.events.sock");
    let phones = phones_outlasting_the_attach(&demo);
    let mut station = start_batch(&demo, &["--phones", phones.to_str().unwrap()]);
    wait_for_socket(&socket, &mut station);
    // The station's stdout is read while it runs: a full pipe would hold its last lines back.
    let station = std::thread::spawn(move || station.wait_with_output().unwrap());
    let (json, plain) = std::thread::scope(|s| {
        let json = s.spawn(|| attach(&socket, &["--json"]));
        // `attach` is the same command; without a terminal it prints plain lines.
        let plain = s.spawn(|| {
            Command::new(flashgate_bin())
                .arg("attach")
                .arg("--station")
                .arg(demo.join("station.yaml"))
                .env("NO_COLOR", "1")
                .output()
                .unwrap()
        });
        (json.join().unwrap(), plain.join().unwrap())
    });
    let run = station.join().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!socket.exists(), "the station removes its socket");

    let station_events = json_lines(&run.stdout);
    let station_verdicts: Vec<&serde_json::Value> = station_events
        .iter()
        .filter(|e| e["event"] == "verdict")
        .collect();
    assert_eq!(station_verdicts.len(), 48);

    let stderr = String::from_utf8_lossy(&json.stderr);
    assert!(json.status.success(), "{stderr}");
    assert!(stderr.contains("the station ended"), "{stderr}");
    let received = json_lines(&json.stdout);
    assert_eq!(
        received[0]["event"], "batch_started",
        "the replay starts the batch"
    );
    assert_eq!(received.last().unwrap()["event"], "batch_finished");
    // However late it attached, the replay and the live stream carry every verdict once, as the
    // station printed it.
    let verdicts: Vec<&serde_json::Value> = received
        .iter()
        .filter(|e| e["event"] == "verdict")
        .collect();
    let mut sorted = verdicts.clone();
    let mut expected = station_verdicts.clone();
    sorted.sort_by_key(|v| v["slot"].as_u64());
    expected.sort_by_key(|v| v["slot"].as_u64());
    assert_eq!(sorted, expected);

    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(
        text.lines().next().unwrap().contains("batch started"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("PASS")).count(),
        48,
        "{text}"
    );
}

#[test]
fn no_running_station_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("events.sock");
    let out = attach(&socket, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "error: no station is running: nothing listens on {}",
            socket.display()
        )),
        "{stderr}"
    );
}

fn curl(url: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--include"])
        .args(extra)
        .arg(url)
        .output()
        .expect("running curl (Debian package curl)");
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[test]
fn the_status_page_and_metrics_answer_curl_while_the_batch_runs() {
    use std::io::BufRead;
    let (_keep, demo) = demo_copy();
    let phones = phones_outlasting_the_attach(&demo);
    let mut station = start_batch(
        &demo,
        &[
            "--phones",
            phones.to_str().unwrap(),
            "--status-listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = station.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the station ended before naming its status page")
            .unwrap();
        if let Some(rest) = line.strip_prefix("status page: ") {
            break rest.split(' ').next().unwrap().to_owned();
        }
    };
    // Keep draining stderr and stdout so the station never blocks on a full pipe.
    let drain = std::thread::spawn(move || lines.count());
    let station = std::thread::spawn(move || station.wait_with_output().unwrap());

    // The server answers from before the batch's first event ("waiting for the batch").
    let deadline = Instant::now() + Duration::from_secs(30);
    let (head, page) = loop {
        let (head, page) = curl(&url, &[]);
        if !page.contains("waiting for the batch to start") || Instant::now() > deadline {
            break (head, page);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/html; charset=utf-8"));
    assert!(
        page.contains("<title>flashgate demo-st01 · WO-DEMO-EEA</title>"),
        "{page}"
    );
    assert!(page.contains("<td>sim-1</td>"), "{page}");

    let (head, metrics) = curl(&format!("{url}metrics"), &[]);
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    for family in [
        "flashgate_units_total",
        "flashgate_yield_ratio",
        "flashgate_throughput_bytes_per_second",
        "flashgate_slot_state",
        "flashgate_journal_commits_total",
        "flashgate_log_write_errors_total",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family}\n{metrics}"
        );
    }
    assert!(metrics.contains(
        "flashgate_batch_info{station=\"demo-st01\",work_order=\"WO-DEMO-EEA\",product=\"fgdemo\""
    ));
    // Read-only.
    let (head, _) = curl(&format!("{url}metrics"), &["--data", "x=1"]);
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    assert!(head.contains("Allow: GET, HEAD"));

    let run = station.join().unwrap();
    drain.join().unwrap();
    assert!(run.status.success());
    // The verdict count the endpoint reported never exceeds what the station journaled.
    let commits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("flashgate_journal_commits_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(commits <= 48);
}
