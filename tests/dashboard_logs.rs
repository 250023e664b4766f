//! Station logs: JSON daily file and per-unit files keep every line under load, carry the unit
//! fields, and keep debug level whatever the console verbosity.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use station::logging::{self, console_filter, LogOptions, UnitLog};

fn options(dir: &Path, verbosity: i8) -> LogOptions {
    LogOptions {
        log_dir: dir.to_path_buf(),
        verbosity,
        rust_log: None,
        console_ansi: false,
        // A tiny queue so the burst fills it many times: a lossy writer would drop lines here.
        file_queue_lines: 16,
        retention: station::config::LogRetention::default(),
    }
}

/// Where today's unit log of `serial`, attempt `n`, is.
fn unit_log_today(dir: &Path, serial: &str, n: u32) -> PathBuf {
    dir.join("units")
        .join(logging::utc_day(std::time::SystemTime::now()))
        .join(format!("{serial}-{n}.log"))
}

fn daily_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn json_lines(dir: &Path) -> Vec<serde_json::Value> {
    daily_files(dir)
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn burst_of_100k_lines_from_8_threads_loses_nothing() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 12_500;
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, logging) = logging::build(&options(dir.path(), -2)).unwrap();
    let (span, unit_log): (tracing::Span, UnitLog) =
        tracing::dispatcher::with_default(&dispatch, || {
            let span = logging::unit_span(7, "1-2.3", "WO-1187", 1);
            span.record("serial", "7PLBURST");
            let log = logging.unit_logs().attach(&span, "7PLBURST", 1).unwrap();
            (span, log)
        });
    let span = Arc::new(span);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let dispatch = dispatch.clone();
            let span = span.clone();
            scope.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| {
                        for i in 0..PER_THREAD {
                            tracing::debug!(target: "device", thread = t, seq = i, "INFO: line {t}/{i}");
                        }
                    })
                })
            });
        }
    });
    drop(span);
    drop(dispatch);
    drop(logging); // flushes the JSON writer's queue
    let total = THREADS * PER_THREAD;
    assert_eq!(unit_log.lines_written(), total as u64);
    assert_eq!(unit_log.path(), unit_log_today(dir.path(), "7PLBURST", 1));
    let unit_text = std::fs::read_to_string(unit_log.path()).unwrap();
    let mut seen = HashSet::new();
    for line in unit_text.lines() {
        let tail = line
            .split(": INFO: line ")
            .nth(1)
            .unwrap_or_else(|| panic!("malformed unit line {line:?}"));
        let key = tail.split(' ').next().unwrap().to_owned();
        assert!(seen.insert(key), "duplicate {line}");
    }
    assert_eq!(seen.len(), total, "every line once in the unit log");
    let objects = json_lines(dir.path());
    let keys: HashSet<(u64, u64)> = objects
        .iter()
        .map(|o| (o["thread"].as_u64().unwrap(), o["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(objects.len(), total, "JSON file has every line");
    assert_eq!(keys.len(), total);
    assert!(objects
        .iter()
        .all(|o| o["serial"] == "7PLBURST" && o["slot"] == 7 && o["work_order"] == "WO-1187"));
}

#[test]
fn json_lines_carry_unit_fields_and_files_keep_debug_whatever_the_console_says() {
    let dir = tempfile::tempdir().unwrap();
    let (dispatch, logging) = logging::build(&options(dir.path(), -2)).unwrap();
    let unit_path = tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!("station starting");
        let span = logging::unit_span(3, "1-1.3", "WO-1187", 2);
        let _entered = span.enter();
        tracing::debug!("before identification");
        span.record("serial", "7PL0003");
        let log = logging.unit_logs().attach(&span, "7PL0003", 2).unwrap();
        let step = tracing::debug_span!("flash", partition = "system_a");
        step.in_scope(|| {
            tracing::debug!(bytes = 4096_u64, "download");
            tracing::trace!("too fine for the files");
        });
        logging::log_event(&station::events::Event::at(
            0,
            station::events::EventKind::DeviceLog {
                slot: 3,
                line: "Writing 'system_a'\u{1b}[0m".into(),
            },
        ));
        log.path().to_owned()
    });
    drop(dispatch);
    drop(logging);
    let objects = json_lines(dir.path());
    let messages: Vec<&str> = objects
        .iter()
        .map(|o| o["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "station starting",
            "before identification",
            "download",
            "Writing 'system_a'\u{1b}[0m"
        ]
    );
    for key in logging::UNIT_KEYS {
        assert!(
            objects.iter().all(|o| o.get(key).is_some()),
            "every line has {key}"
        );
    }
    assert_eq!(objects[0]["slot"], serde_json::Value::Null);
    assert_eq!(objects[1]["slot"], 3);
    assert_eq!(
        objects[1]["serial"],
        serde_json::Value::Null,
        "serial not known yet"
    );
    assert_eq!(objects[2]["serial"], "7PL0003");
    assert_eq!(objects[2]["port_path"], "1-1.3");
    assert_eq!(objects[2]["partition"], "system_a");
    assert_eq!(objects[2]["span"], "flash");
    assert_eq!(objects[2]["level"], "DEBUG");
    assert_eq!(objects[3]["target"], "device");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let lines: Vec<&str> = unit.lines().collect();
    assert_eq!(lines.len(), 2, "lines after attach, debug and up: {unit}");
    assert!(
        lines[0].contains("DEBUG") && lines[0].ends_with(": download bytes=4096"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("INFO device: Writing 'system_a'\\u{1b}[0m"),
        "escaped: {}",
        lines[1]
    );
    assert_eq!(unit_path, unit_log_today(dir.path(), "7PL0003", 2));
}

/// The supervisor reports detection and verdicts outside any unit span; the station's log sink
/// still gives those records the unit's keys, and a failure's code and reason.
#[test]
fn detection_and_verdict_records_carry_slot_serial_port_and_work_order() {
    use station::events::{BatchInfo, Event, EventKind, EventSink};
    use station::mode::Mode;
    use station::verdict::{Failure, UnitRef, Verdict};

    let dir = tempfile::tempdir().unwrap();
    let (dispatch, logging) = logging::build(&options(dir.path(), -2)).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let sink = logging::StationLogSink::default();
        let batch = BatchInfo {
            station_id: "st1".into(),
            work_order: "WO-1187".into(),
            product: "fgdemo".into(),
            region: "00EEA".into(),
            build_id: "B1".into(),
            quantity: 10,
            passed_before: 0,
            slots: Vec::new(),
            stop_line_after: 3,
            operator: None,
        };
        sink.emit(Event::at(0, EventKind::BatchStarted(batch)));
        // An EDL unit: no serial at detection, its chip serial at identification.
        sink.emit(Event::at(
            1,
            EventKind::UnitDetected {
                slot: 5,
                port_path: "1-4.5".into(),
                mode: Mode::Edl,
                serial: None,
            },
        ));
        sink.emit(Event::at(
            2,
            EventKind::UnitIdentified {
                slot: 5,
                serial: "5EC00002".into(),
            },
        ));
        sink.emit(Event::at(
            3,
            EventKind::Verdict {
                slot: 5,
                serial: None,
                verdict: Verdict::Fail(Failure::Timeout {
                    unit: UnitRef {
                        slot: 5,
                        serial: Some("5EC00002".into()),
                    },
                    step: "verify".into(),
                    secs: 300,
                }),
            },
        ));
    });
    drop(dispatch);
    drop(logging);
    let objects = json_lines(dir.path());
    let detected = objects
        .iter()
        .find(|o| o["message"] == "unit detected")
        .expect("a unit detected record");
    assert_eq!(detected["slot"], 5, "{detected}");
    assert_eq!(detected["port_path"], "1-4.5", "{detected}");
    assert_eq!(detected["work_order"], "WO-1187", "{detected}");
    assert_eq!(detected["mode"], "EDL", "{detected}");
    assert!(
        detected["serial"].is_null(),
        "not known at detection: {detected}"
    );
    let verdict = objects
        .iter()
        .find(|o| o["message"] == "verdict")
        .expect("a verdict record");
    assert_eq!(verdict["slot"], 5, "{verdict}");
    assert_eq!(verdict["serial"], "5EC00002", "{verdict}");
    assert_eq!(verdict["port_path"], "1-4.5", "{verdict}");
    assert_eq!(verdict["work_order"], "WO-1187", "{verdict}");
    assert_eq!(verdict["result"], "FAIL", "{verdict}");
    assert_eq!(verdict["code"], "TIMEOUT", "{verdict}");
    assert!(
        verdict["reason"].as_str().unwrap().contains("300 s"),
        "{verdict}"
    );
}

#[test]
fn attaching_outside_flashgate_logging_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logging::UnitLogs::new(dir.path());
    let err = logs.attach(&tracing::Span::none(), "X1", 1).unwrap_err();
    assert!(err.to_string().contains("X1-1.log"), "{err}");
}

#[test]
fn console_verbosity_and_rust_log() {
    assert_eq!(console_filter(0, None).unwrap().to_string(), "warn");
    assert_eq!(console_filter(2, None).unwrap().to_string(), "debug");
    assert_eq!(console_filter(-1, None).unwrap().to_string(), "error");
    assert_eq!(console_filter(-5, None).unwrap().to_string(), "off");
    assert_eq!(
        console_filter(0, Some("station=trace"))
            .unwrap()
            .to_string(),
        "station=trace"
    );
    let err = console_filter(0, Some("station=loud")).unwrap_err();
    assert!(err.to_string().contains("RUST_LOG `station=loud`"), "{err}");
}

#[test]
fn protocol_progress_reaches_the_unit_log_through_the_tracing_sink() {
    use protocols::progress::{ProgressEvent, ProgressSink};
    use station::events::{EventKind, Fanout, RecordingSink, SlotProgress};

    let dir = tempfile::tempdir().unwrap();
    let (dispatch, logging) = logging::build(&options(dir.path(), 0)).unwrap();
    let dashboard = Arc::new(RecordingSink::new());
    let path = tracing::dispatcher::with_default(&dispatch, || {
        let span = logging::unit_span(4, "1-1.4", "WO-1187", 1);
        let log = logging.unit_logs().attach(&span, "7PL0004", 1).unwrap();
        let _entered = span.enter();
        let progress = SlotProgress::new(
            4,
            Fanout::new()
                .with(dashboard.clone())
                .with(logging::TracingSink),
        );
        progress.event(ProgressEvent::StepStarted {
            step: "flash boot_a",
            total_bytes: 4096,
        });
        progress.event(ProgressEvent::DeviceMessage {
            text: "erasing boot_a",
        });
        progress.event(ProgressEvent::Bytes { bytes: 4096 });
        progress.event(ProgressEvent::StepFinished {
            step: "flash boot_a",
        });
        log.path().to_owned()
    });
    drop(dispatch);
    drop(logging);
    let unit = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = unit.lines().collect();
    assert!(lines.len() >= 3, "{unit}");
    assert!(lines[0].ends_with("progress done=0 total=4096"), "{unit}");
    assert!(lines[1].ends_with("INFO device: erasing boot_a"), "{unit}");
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("progress done=4096 total=4096"),
        "{unit}"
    );
    let kinds: Vec<EventKind> = dashboard.events().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds.first(),
        Some(&EventKind::BytesProgress {
            slot: 4,
            done: 0,
            total: 4096
        })
    );
    assert_eq!(
        kinds.len(),
        lines.len(),
        "the dashboard and the log saw the same events"
    );
}
