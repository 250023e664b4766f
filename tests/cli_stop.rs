//! How `flashgate run` ends, through the binary: a stop by signal journals every unit it cut as
//! ABORTED; a work order's quantity counts the passes of earlier runs; one station per journal;
//! a closed stdout does not stop the station.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flashgate_scenarios::batch::DemoStation;
use flashgate_scenarios::flashgate_bin;
use station::journal::Journal;

fn flashgate_run(demo: &DemoStation, work_order: &str) -> Command {
    let mut command = Command::new(flashgate_bin());
    command
        .arg("run")
        .arg("--station")
        .arg(demo.station_file())
        .arg("--work-order")
        .arg(demo.work_order_file(work_order))
        .arg("--json")
        .env("NO_COLOR", "1");
    command
}

/// A running batch whose JSON events arrive on a channel as they are printed.
struct Running {
    child: Child,
    events: mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting flashgate run");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {e}: {line}"));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits for an event matching `wanted`, keeping everything seen.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&serde_json::Value) -> bool) {
        loop {
            match self.events.recv_timeout(Duration::from_secs(60)) {
                Ok(event) => {
                    let found = wanted(&event);
                    self.seen.push(event);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("no {what} event; saw {:?}", self.seen),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process; every event it printed, and its stderr.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<serde_json::Value>, String) {
        let stderr = self.child.stderr.take().unwrap();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut { stderr }, &mut err).unwrap();
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(event);
        }
        (status, self.seen, err)
    }
}

fn journal_of(demo: &DemoStation) -> Journal {
    Journal::open_existing(&demo.root.join("state/journal.sqlite")).unwrap()
}

/// The journal of `run --sim N` on the demo station (beside its own).
fn sim_journal_of(demo: &DemoStation) -> Journal {
    Journal::open_existing(&demo.root.join("state/journal.sim.sqlite")).unwrap()
}

fn flashing(event: &serde_json::Value) -> bool {
    event["event"] == "phase_changed" && event["phase"]["phase"] == "flash"
}

fn stop_mid_batch(signal: &str) {
    let demo = DemoStation::new();
    let mut run = Running::start(flashgate_run(&demo, "WO-DEMO-EEA"));
    run.wait_for("flash phase", flashing);
    run.signal(signal);
    let (status, events, stderr) = run.finish();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stopping: Vec<_> = events.iter().filter(|e| e["event"] == "stopping").collect();
    assert_eq!(stopping.len(), 1, "{events:?}");
    assert!(
        stopping[0]["why"]
            .as_str()
            .unwrap()
            .contains(signal.trim_start_matches("SIG")),
        "{stopping:?}"
    );
    // Every unit the batch started has a verdict (PASS, or ABORTED for those the stop cut).
    let detected = events
        .iter()
        .filter(|e| e["event"] == "unit_detected")
        .count();
    let verdicts: Vec<_> = events.iter().filter(|e| e["event"] == "verdict").collect();
    assert_eq!(verdicts.len(), detected, "{events:?}");
    let aborted = verdicts
        .iter()
        .filter(|v| v["verdict"]["result"] == "ABORTED")
        .count();
    assert!(aborted >= 1, "the stop came mid-flash: {verdicts:?}");
    assert!(verdicts
        .iter()
        .all(|v| v["verdict"]["result"] == "PASS" || v["verdict"]["result"] == "ABORTED"));
    assert!(!status.success(), "a batch cut by a stop is not a success");
    assert!(stderr.contains("batch summary:"), "{stderr}");
    assert!(
        stderr.contains(&format!("aborted {aborted}")),
        "the summary counts the aborted units: {stderr}"
    );
    let report = journal_of(&demo).report("WO-DEMO-EEA").unwrap();
    assert_eq!(report.counts.attempts_in_progress, 0, "{report:?}");
    assert_eq!(
        report.counts.attempts as usize,
        verdicts.len(),
        "{report:?}"
    );
    assert_eq!(
        report.counts.attempts_aborted as usize, aborted,
        "{report:?}"
    );
    assert_eq!(
        report.counts.attempts_failed, 0,
        "aborted attempts are not failures"
    );
}

#[test]
fn sigterm_stops_like_ctrl_c_and_journals_every_unit() {
    stop_mid_batch("TERM");
}

#[test]
fn sighup_stops_like_ctrl_c_and_journals_every_unit() {
    stop_mid_batch("HUP");
}

#[test]
fn a_killed_station_leaves_no_attempt_open_after_the_next_start() {
    let demo = DemoStation::new();
    let mut run = Running::start(flashgate_run(&demo, "WO-DEMO-EEA"));
    run.wait_for("flash phase", flashing);
    run.signal("KILL");
    let (_, _, _) = run.finish();
    let open = journal_of(&demo)
        .report("WO-DEMO-EEA")
        .unwrap()
        .counts
        .attempts_in_progress;
    assert!(open >= 1, "the kill came mid-flash");

    let mut again = Running::start(flashgate_run(&demo, "WO-DEMO-EEA"));
    again.wait_for("batch start", |e| e["event"] == "batch_started");
    let (status, events, stderr) = again.finish();
    assert!(status.success(), "{stderr}");
    let closed: Vec<_> = events
        .iter()
        .filter(|e| {
            e["event"] == "warning"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("closed as ABORTED"))
        })
        .collect();
    assert_eq!(closed.len() as u64, open, "{events:?}");
    let report = journal_of(&demo).report("WO-DEMO-EEA").unwrap();
    assert_eq!(report.counts.attempts_in_progress, 0, "{report:?}");
    assert_eq!(report.counts.attempts_aborted, open, "{report:?}");
    assert_eq!(report.counts.units_passed, 8, "{report:?}");
}

fn set_quantity(demo: &DemoStation, id: &str, quantity: u32) {
    let path = demo.work_order_file(id);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("quantity:") {
                format!("quantity: {quantity}")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&path, edited.join("\n")).unwrap();
}

fn output(mut command: Command) -> (std::process::Output, String, Vec<serde_json::Value>) {
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, stderr, events)
}

#[test]
fn the_quantity_counts_passes_of_earlier_runs_and_a_complete_order_flashes_nothing() {
    let demo = DemoStation::new();
    set_quantity(&demo, "WO-DEMO-EEA", 3);
    let (out, stderr, events) = output(flashgate_run(&demo, "WO-DEMO-EEA"));
    assert!(out.status.success(), "{stderr}");
    let passes = events
        .iter()
        .filter(|e| e["event"] == "verdict" && e["verdict"]["result"] == "PASS")
        .count();
    assert_eq!(
        passes, 3,
        "eight phones on the rig, three ordered: {events:?}"
    );
    assert!(
        stderr.contains("passed 3 of 3 ordered (this run 3)"),
        "{stderr}"
    );
    assert_eq!(journal_of(&demo).units_passed("WO-DEMO-EEA").unwrap(), 3);

    // The same order again (a restarted service): complete, nothing is flashed.
    let (out, stderr, events) = output(flashgate_run(&demo, "WO-DEMO-EEA"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        events.is_empty() || !events.iter().any(|e| e["event"] == "unit_detected"),
        "{stdout}"
    );
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("work order WO-DEMO-EEA is complete: 3 of 3 ordered units passed"),
        "{said}"
    );
    assert_eq!(
        journal_of(&demo)
            .report("WO-DEMO-EEA")
            .unwrap()
            .counts
            .attempts,
        3
    );

    // Raising the quantity lets the order go on from where it stood. The rig's phones keep
    // their serials from run to run, so units that passed before may be flashed again: each
    // unit counts once.
    set_quantity(&demo, "WO-DEMO-EEA", 5);
    let (out, stderr, _) = output(flashgate_run(&demo, "WO-DEMO-EEA"));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("passed 5 of 5 ordered (this run"),
        "{stderr}"
    );
    assert_eq!(journal_of(&demo).units_passed("WO-DEMO-EEA").unwrap(), 5);
}

#[test]
fn a_second_station_on_the_same_journal_is_refused_naming_the_first() {
    let demo = DemoStation::new();
    let mut first = Running::start(flashgate_run(&demo, "WO-DEMO-EEA"));
    first.wait_for("batch start", |e| e["event"] == "batch_started");
    // Held still, so it surely holds the journal while the second station starts.
    first.signal("STOP");
    let (out, stderr, _) = output(flashgate_run(&demo, "WO-DEMO-EEA"));
    first.signal("CONT");
    let pid = first.child.id();
    let (status, _, first_err) = first.finish();
    assert!(status.success(), "{first_err}");
    assert!(!out.status.success());
    assert!(
        stderr.contains("in use by another flashgate station")
            && stderr.contains(&format!("pid {pid}")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "the second station started a batch");
}

#[test]
fn a_closed_stdout_does_not_stop_the_station() {
    let demo = DemoStation::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = flashgate_run(&demo, "WO-DEMO-EEA");
    let out = command.stdout(writer).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
    let report = journal_of(&demo).report("WO-DEMO-EEA").unwrap();
    assert_eq!(report.counts.units_passed, 8, "{report:?}");
}

/// The kill test: a 16-phone batch killed (SIGKILL) or stopped (SIGTERM) at random
/// moments, again and again on one journal. After every round each verdict that was shown is in
/// the journal with the same result; the next start closes whatever the kill left open; the
/// order's quantity is never exceeded; the journal stays intact. CI runs a few rounds; the full
/// count is `FLASHGATE_KILL_ROUNDS=20 FLASHGATE_TERM_ROUNDS=5 cargo test --release --test
/// scenarios killed_and_stopped`.
#[test]
fn killed_and_stopped_at_random_moments_nothing_is_lost_and_the_quantity_holds() {
    let rounds = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let kills = rounds("FLASHGATE_KILL_ROUNDS", 3);
    let terms = rounds("FLASHGATE_TERM_ROUNDS", 1);
    // New phones each round (a rig on one journal brings new serials): the order completes
    // about when the rounds run out, so the quantity is tested under kills.
    let quantity = u32::try_from(14 * (kills + terms)).unwrap();
    let demo = DemoStation::new();
    set_quantity(&demo, "WO-DEMO-EEA", quantity);
    let seed = 0x5EED_0011;
    let delays = flashgate_scenarios::pseudo_random(seed, 2 * (kills + terms));
    // The stops spread evenly among the kills.
    let total = kills + terms;
    let signals: Vec<&str> = (0..total)
        .map(|i| {
            if (i + 1) * terms / total > i * terms / total {
                "TERM"
            } else {
                "KILL"
            }
        })
        .collect();
    let mut shown_total = 0;
    for (round, signal) in signals.iter().enumerate() {
        let mut command = flashgate_run(&demo, "WO-DEMO-EEA");
        command.args(["--sim", "16"]);
        let mut run = Running::start(command);
        // A random moment between detection and the end of a typical batch.
        let wait_ms = u64::from(u16::from_le_bytes([
            delays[2 * round],
            delays[2 * round + 1],
        ])) % 2_500;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(wait_ms) {
            if let Ok(event) = run.events.recv_timeout(Duration::from_millis(10)) {
                run.seen.push(event);
            }
        }
        run.signal(signal);
        let (_, events, stderr) = run.finish();
        assert!(
            !stderr.contains("panicked"),
            "round {round} (seed {seed:#x}): {stderr}"
        );
        if !demo.root.join("state/journal.sim.sqlite").exists() {
            // Killed before the station took its journal (a slow pre-flight on a loaded
            // machine): nothing may have been shown, and nothing is left to check.
            assert!(
                !events.iter().any(|e| e["event"] == "verdict"),
                "round {round}: a verdict was shown without a journal"
            );
            eprintln!("round {round}: SIG{signal} after {wait_ms} ms, before the journal existed");
            continue;
        }
        let journal = sim_journal_of(&demo);
        // Every verdict shown is in the journal, with the result shown.
        for verdict in events.iter().filter(|e| e["event"] == "verdict") {
            shown_total += 1;
            let serial = verdict["serial"]
                .as_str()
                .expect("a verdict names its unit");
            let result = verdict["verdict"]["result"].as_str().unwrap();
            let rows = journal.history(serial).unwrap();
            assert!(
                rows.iter().any(|r| r.result == result
                    && u64::from(r.slot) == verdict["slot"].as_u64().unwrap()),
                "round {round} ({signal} after {wait_ms} ms, seed {seed:#x}): verdict {verdict} \
                 not in the journal: {rows:?}"
            );
        }
        let passed = journal.units_passed("WO-DEMO-EEA").unwrap();
        eprintln!(
            "round {round}: SIG{signal} after {wait_ms} ms: {} verdicts shown, {passed} units passed",
            events.iter().filter(|e| e["event"] == "verdict").count()
        );
        assert!(
            passed <= quantity,
            "round {round}: {passed} units passed, {quantity} ordered"
        );
        assert_eq!(journal.integrity_check().unwrap(), "ok", "round {round}");
    }
    // A last start closes what the last kill left open and completes the order.
    let mut command = flashgate_run(&demo, "WO-DEMO-EEA");
    command.args(["--sim", "16"]);
    let (out, stderr, _) = output(command);
    assert!(
        out.status.success() || stderr.contains("is complete"),
        "{stderr}"
    );
    let report = sim_journal_of(&demo).report("WO-DEMO-EEA").unwrap();
    assert_eq!(report.counts.attempts_in_progress, 0, "{report:?}");
    assert!(
        report.counts.units_passed <= u64::from(quantity),
        "{report:?}"
    );
    assert!(shown_total > 0, "no round got as far as a verdict");
    assert!(
        !demo.root.join("state/journal.sqlite").exists(),
        "simulated phones reached the station's own journal"
    );
}

/// A full log disk is said out loud: per unit on the screen, and in the summary. (`/dev/full`
/// stands in for the full disk: every write to it fails with ENOSPC.)
#[test]
fn a_full_log_disk_is_a_loud_warning_not_a_silent_loss() {
    let demo = DemoStation::new();
    let logs = demo.root.join("state/logs");
    // Today's folder of unit logs (by UTC day).
    let units = logs
        .join("units")
        .join(station::logging::utc_day(std::time::SystemTime::now()));
    std::fs::create_dir_all(&units).unwrap();
    // Every name a unit log of this run can have: fastboot serials and EDL chip serials, by
    // attempt number.
    for n in 101..=108u32 {
        for attempt in 1..=8 {
            for serial in [format!("FG{n:06}"), format!("5EC00{n}")] {
                std::os::unix::fs::symlink(
                    "/dev/full",
                    units.join(format!("{serial}-{attempt}.log")),
                )
                .unwrap();
            }
        }
    }
    let (out, stderr, events) = output(flashgate_run(&demo, "WO-DEMO-EEA"));
    assert!(
        out.status.success(),
        "units pass; only their logs are lost: {stderr}"
    );
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| {
            e["event"] == "warning"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("LOG WRITE FAILED"))
        })
        .collect();
    assert_eq!(warnings.len(), 8, "one per unit: {events:?}");
    assert!(
        stderr.contains("log line(s) could not be written") && stderr.contains("log_dir"),
        "{stderr}"
    );
}
