//! The operator dashboard driven by a scripted event stream, asserted on the rendered text:
//! no terminal needed.

use indicatif::ProgressDrawTarget;
use station::dashboard::script::{self, scripted_batch};
use station::dashboard::{
    CaptureTerm, DashboardState, LineFormat, LineSink, RenderStyle, TtyDashboard,
};
use station::digest::Sha256Digest;
use station::events::{Event, EventKind, EventSink, Phase};
use station::mode::Mode;
use station::verdict::{Failure, UnitRef, Verdict};
use unicode_width::UnicodeWidthStr;

const T0: u64 = 1_796_379_302_000;

fn replayed(events: &[Event]) -> DashboardState {
    let mut state = DashboardState::new();
    for event in events {
        state.apply(event);
    }
    state
}

/// Visible width: ANSI SGR sequences removed, columns counted.
fn visible(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn row(screen: &[String], slot: u16) -> &str {
    let tag = format!("S{slot:02} ");
    screen
        .iter()
        .find(|l| visible(l).starts_with(&tag))
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no row {tag}: {screen:#?}"))
}

#[test]
fn eight_slot_batch_final_screen_shows_every_verdict_and_matching_counts() {
    let events = scripted_batch(8, T0);
    let state = replayed(&events);
    let screen = state.render(160, 30, RenderStyle::PLAIN);
    // Header, 8 rows, then the two failure reasons and the warning, each on one line at 160.
    assert_eq!(screen.len(), 3 + 8 + 3, "{screen:#?}");
    assert!(
        screen[0].starts_with("FLASHGATE elapsed 0:"),
        "elapsed first: {}",
        screen[0]
    );
    assert!(screen[0].contains("[BATCH FINISHED]"), "{}", screen[0]);
    assert!(
        screen[0]
            .contains("| WO WO-1187 | demo-phone 00EEA | station LINE3-ST07 | operator op-1042"),
        "{}",
        screen[0]
    );
    assert!(screen[0].contains("build DP1.241128.007"));
    // 8 first units + a second unit on slots 1 and 2; slots 3 and 6 fail.
    assert_eq!(
        screen[1],
        "passed 8 of 100 ordered (this run 8) | failed 2 | in progress 0 | yield 80.0% | waiting 0"
    );
    assert!(
        screen[2].starts_with("avg ") && screen[2].contains(" units/h | cycle 0:"),
        "{}",
        screen[2]
    );
    for (i, slot) in (1..=8u16).enumerate() {
        assert!(
            screen[3 + i].starts_with(&format!("S{slot:02} ")),
            "slot order: {screen:#?}"
        );
    }
    for slot in [1, 2, 4, 5, 7, 8] {
        let line = row(&screen, slot);
        assert!(line.contains("PASS -> to pass tray ("), "{line}");
        assert!(
            line.contains(&script::serial(slot, if slot <= 2 { 2 } else { 1 })),
            "{line}"
        );
    }
    let s3 = row(&screen, 3);
    assert!(s3.contains("EDL"), "{s3}");
    assert!(
        s3.ends_with("FAIL ACTIVATION_CLIENT_WRONG_REGION -> call engineer"),
        "{s3}"
    );
    let s6 = row(&screen, 6);
    assert!(s6.ends_with("FAIL DISCONNECTED -> re-seat cable"), "{s6}");
    // The reasons, once each, without the row's slot and serial repeated.
    let pane = &screen[11..];
    assert!(
        pane[0].starts_with(
            "ACTIVATION_CLIENT_WRONG_REGION S03: system_a \
             /priv-app/ActivationClient/ActivationClient.apk has the 00CN client"
        ),
        "newest first: {pane:#?}"
    );
    assert!(
        pane[1].starts_with("DISCONNECTED S06: the phone disconnected during flash system_a"),
        "{pane:#?}"
    );
    assert!(pane[2].starts_with("WARNING S06: "), "{pane:#?}");
    assert!(
        screen.iter().all(|l| !l.contains("(serial 7PL")),
        "no `slot N (serial X)` in reasons: {screen:#?}"
    );
    let summary = match &events.last().map(|e| &e.kind) {
        Some(EventKind::BatchFinished(summary)) => summary.clone(),
        other => panic!("script ends with {other:?}"),
    };
    assert_eq!((summary.passed, summary.failed), (8, 2));
    assert_eq!(summary.failures_by_code.get("DISCONNECTED"), Some(&1));
}

#[test]
fn mid_batch_rows_show_progress_rate_and_eta() {
    let events = scripted_batch(8, T0);
    let until = T0 + 6_000;
    let state = replayed(
        &events
            .iter()
            .filter(|e| e.ts_ms <= until)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let screen = state.render(140, 20, RenderStyle::PLAIN);
    let counts = state.counts();
    assert_eq!(
        (
            counts.passed,
            counts.failed,
            counts.in_progress,
            counts.waiting
        ),
        (0, 0, 8, 0)
    );
    assert_eq!(
        screen[1],
        "passed 0 of 100 ordered (this run 0) | failed 0 | in progress 8 | yield - | waiting 0"
    );
    // Slot 2 is a fastboot unit flashing system_a at 44 MB/s (script: 30 + 2*7 % 16).
    let s2 = row(&screen, 2);
    assert!(s2.contains("fastboot flash system_a"), "{s2}");
    assert!(
        s2.contains('[') && s2.contains('#') && s2.contains('.'),
        "bar: {s2}"
    );
    assert!(s2.contains("/640.0 MB"), "{s2}");
    assert!(s2.contains("44.0 MB/s"), "{s2}");
    assert!(s2.contains("ETA    0:"), "{s2}");
    // The average over the run: every byte moved so far over the elapsed time, not the last
    // instant's rate.
    let figure = |prefix: &str| -> f64 {
        screen[2]
            .split(" | ")
            .find_map(|part| part.strip_prefix(prefix))
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("`{prefix}` in {}", screen[2]))
    };
    let average = figure("avg ");
    let now = figure("now ");
    assert!(
        average > 150.0 && average < now,
        "8 units at 30-45 MB/s after the first seconds of identify: avg {average}, now {now}"
    );
    assert!(now > 200.0, "8 units at 30-45 MB/s: {now}");
}

fn ev(ms: u64, kind: EventKind) -> Event {
    Event::at(T0 + ms, kind)
}

fn detected(ms: u64, slot: u16, serial: &str) -> Event {
    ev(
        ms,
        EventKind::UnitDetected {
            slot,
            port_path: script::port_path(slot),
            mode: Mode::Fastboot,
            serial: Some(serial.into()),
        },
    )
}

#[test]
fn failure_stays_until_removed_and_a_new_unit_starts_fresh() {
    let fail = Verdict::Fail(Failure::ImageHashMismatch {
        unit: UnitRef {
            slot: 5,
            serial: Some("AAA111".into()),
        },
        file: "boot".into(),
        expected: Sha256Digest::of_bytes(b"expected"),
        found: Sha256Digest::of_bytes(b"found"),
    });
    let mut state = replayed(&[
        detected(0, 5, "AAA111"),
        ev(
            10,
            EventKind::PhaseChanged {
                slot: 5,
                phase: Phase::Verify {
                    what: "boot_a".into(),
                },
            },
        ),
        ev(
            20,
            EventKind::Verdict {
                slot: 5,
                serial: None,
                verdict: fail,
            },
        ),
    ]);
    state.tick(T0 + 3_600_000);
    let line = row(&state.render(120, 10, RenderStyle::PLAIN), 5).to_owned();
    assert!(
        line.contains("AAA111") && line.contains("FAIL IMAGE_HASH_MISMATCH -> call engineer"),
        "an hour later: {line}"
    );
    state.apply(&ev(3_600_001, EventKind::UnitRemoved { slot: 5 }));
    let line = row(&state.render(120, 10, RenderStyle::PLAIN), 5).to_owned();
    assert!(
        line.contains("empty - waiting for a unit") && !line.contains("FAIL"),
        "{line}"
    );
    state.apply(&detected(3_600_002, 5, "BBB222"));
    let line = row(&state.render(120, 10, RenderStyle::PLAIN), 5).to_owned();
    assert!(
        line.contains("BBB222")
            && line.contains("detected")
            && !line.contains("FAIL")
            && !line.contains("AAA111"),
        "{line}"
    );
    assert_eq!(state.counts().failed, 1, "the counts keep the failure");
    // Pulled mid-flash without a verdict: flagged until the next unit.
    state.apply(&ev(
        3_600_003,
        EventKind::PhaseChanged {
            slot: 5,
            phase: Phase::Flash {
                partition: "super".into(),
            },
        },
    ));
    state.apply(&ev(3_600_004, EventKind::UnitRemoved { slot: 5 }));
    let screen = state.render(120, 10, RenderStyle::PLAIN);
    let line = row(&screen, 5).to_owned();
    assert!(
        line.contains("BBB222") && line.ends_with("GONE -> re-seat cable"),
        "{line}"
    );
    assert!(
        screen.iter().any(|l| l
            .starts_with("GONE S05: the unit left the slot during flash super before a verdict")),
        "{screen:#?}"
    );
    assert_eq!(state.counts().waiting, 1);
}

fn hostile_state(slots: u16) -> DashboardState {
    let mut events = scripted_batch(slots, T0);
    events.retain(|e| e.ts_ms <= T0 + 7_000);
    let long = "x".repeat(500);
    events.push(detected(
        7_001,
        1,
        "SER\x1b[2J\x1b[H\u{202e}IAL-日本語-with-a-very-long-tail",
    ));
    events.push(ev(
        7_002,
        EventKind::PhaseChanged {
            slot: 1,
            phase: Phase::Other {
                name: format!("step\r\n{long}"),
            },
        },
    ));
    events.push(ev(
        7_003,
        EventKind::Verdict {
            slot: 2,
            serial: None,
            verdict: Verdict::Fail(Failure::ProtocolError {
                unit: UnitRef {
                    slot: 2,
                    serial: None,
                },
                step: "flash".into(),
                detail: format!("device said \x07\x08 {long}"),
            }),
        },
    ));
    replayed(&events)
}

#[test]
fn lines_never_exceed_the_screen_at_any_size_and_carry_no_control_characters() {
    for slots in [1u16, 8, 16, 32] {
        let state = hostile_state(slots);
        for style in [
            RenderStyle::FULL,
            RenderStyle::PLAIN,
            RenderStyle {
                color: false,
                unicode: true,
            },
        ] {
            for width in [
                0u16, 1, 5, 10, 20, 33, 40, 59, 60, 79, 80, 100, 132, 200, 300,
            ] {
                for height in [0u16, 1, 2, 3, 4, 10, 24, 40, 60] {
                    let screen = state.render(width, height, style);
                    assert!(
                        screen.len() <= usize::from(height),
                        "{slots} slots {width}x{height}: {} lines",
                        screen.len()
                    );
                    for line in &screen {
                        let text = visible(line);
                        assert!(
                            text.width() <= usize::from(width),
                            "{slots} slots {width}x{height} {style:?}: {} cols: {line:?}",
                            text.width()
                        );
                        assert!(
                            !text.chars().any(|c| c.is_control()),
                            "control char in {line:?}"
                        );
                        if !style.color {
                            assert!(!line.contains('\x1b'), "colour with {style:?}: {line:?}");
                        }
                        if !style.unicode {
                            assert!(line.is_ascii(), "non-ASCII with {style:?}: {line:?}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn thirty_two_slots_fit_a_small_terminal_in_columns_or_say_what_is_hidden() {
    let state = replayed(&scripted_batch(32, T0));
    let wide = state.render(200, 24, RenderStyle::PLAIN);
    assert!(wide.len() <= 24, "{wide:#?}");
    assert!(
        wide[3 + 16..]
            .iter()
            .all(|l| !l.starts_with('S') && !l.contains(" | S")),
        "the rows left under the two columns hold reasons: {wide:#?}"
    );
    for slot in 1..=32u16 {
        assert!(
            wide.iter().any(|l| l.contains(&format!("S{slot:02} "))),
            "S{slot:02} missing at 200x24"
        );
    }
    assert!(
        wide[3].starts_with("S01 ") && wide[3].contains(" | S17 "),
        "{}",
        wide[3]
    );
    // At 80 columns every slot is still on screen, in two columns of compact cells.
    let narrow = state.render(80, 24, RenderStyle::PLAIN);
    assert!(narrow.len() <= 24, "{narrow:#?}");
    for slot in 1..=32u16 {
        assert!(
            narrow.iter().any(|l| l.contains(&format!("S{slot:02} "))),
            "S{slot:02} missing at 80x24: {narrow:#?}"
        );
    }
    assert!(narrow.iter().all(|l| !l.contains("hidden")), "{narrow:#?}");
    // Sixty-four do not fit: the last line names the hidden slots and their failures.
    let crowded = replayed(&scripted_batch(64, T0));
    let narrow = crowded.render(80, 24, RenderStyle::PLAIN);
    assert_eq!(narrow.len(), 24);
    let last = narrow.last().unwrap();
    assert!(
        last.starts_with("+24 slots S41-S64 hidden: enlarge the window | FAIL on "),
        "{last}"
    );
}

#[test]
fn no_color_gives_plain_ascii() {
    let style = RenderStyle::from_env(|key| match key {
        "NO_COLOR" => Some("1".into()),
        "TERM" => Some("xterm-256color".into()),
        "LANG" => Some("en_US.UTF-8".into()),
        _ => None,
    });
    let state = hostile_state(8);
    let screen = state.render(120, 30, style);
    assert!(
        screen.iter().all(|l| l.is_ascii() && !l.contains('\x1b')),
        "{screen:#?}"
    );
    assert!(
        screen[2].ends_with("----------"),
        "ASCII rule: {}",
        screen[2]
    );
    let finished = replayed(&scripted_batch(8, T0));
    let coloured = finished.render(120, 30, RenderStyle::FULL);
    assert!(
        row(&coloured.iter().map(|l| visible(l)).collect::<Vec<_>>(), 3)
            .contains("FAIL ACTIVATION_CLIENT_WRONG_REGION \u{2192} call engineer")
    );
    assert!(
        row(&coloured, 3).contains("\x1b[1;31mFAIL\x1b[0m"),
        "FAIL in red with colour"
    );
    assert!(
        row(&coloured, 4).contains("\x1b[1;32mPASS\x1b[0m"),
        "PASS in green with colour"
    );
    assert!(
        coloured[1].starts_with(
            "\x1b[1;32mpassed 8 of 100 ordered (this run 8)\x1b[0m | \x1b[1;31mfailed 2\x1b[0m"
        ),
        "{:?}",
        coloured[1]
    );
    let plain = finished.render(120, 30, style);
    assert!(
        plain.iter().all(|l| l.is_ascii() && !l.contains('\x1b')),
        "{plain:#?}"
    );
}

#[test]
fn plain_lines_one_per_event_without_control_characters() {
    let mut events = scripted_batch(8, T0);
    events.push(ev(99_000, EventKind::UnitRemoved { slot: 4 }));
    events.push(ev(
        99_001,
        EventKind::DeviceLog {
            slot: 4,
            line: "INFO\x1b[31m red\r".into(),
        },
    ));
    let plain_text = |device_lines: bool| {
        let sink = LineSink::new(LineFormat::Plain, Vec::new()).with_device_lines(device_lines);
        for event in &events {
            sink.emit(event.clone());
        }
        String::from_utf8(sink.into_inner()).unwrap()
    };
    let quiet = plain_text(false);
    assert!(
        !quiet.contains("device: "),
        "device chatter only with -v: {quiet}"
    );
    let text = plain_text(true);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    }
    // Local time with its UTC offset: `hh:mm:ss.mmm +hh:mm`.
    let stamp = lines[0].split(" batch started").next().unwrap();
    assert!(
        stamp.len() == 19 && matches!(&stamp[13..14], "+" | "-") && &stamp[16..17] == ":",
        "{stamp:?}"
    );
    assert!(lines[0].ends_with(
        "batch started | station LINE3-ST07 | work order WO-1187 | product demo-phone | region 00EEA | build DP1.241128.007 | quantity 100 | 8 slots | operator op-1042"
    ), "{}", lines[0]);
    let s3 = script::serial(3, 1);
    assert!(
        lines.iter().any(|l| l.contains(&format!(
        "slot 03 serial {s3} | FAIL ACTIVATION_CLIENT_WRONG_REGION | next: call engineer | system_a"
    ))),
        "{text}"
    );
    // EDL: the serial is unknown at detection and carried on every line after identification.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("slot 03 serial - | detected | port 1-1.3 | mode EDL")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.contains(&format!(
        "slot 03 serial {s3} | phase flash rawprogram0.xml"
    ))));
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("slot 04 serial {} | PASS", script::serial(4, 1)))));
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("slot 04 serial - | device: INFO?[31m red?")),
        "removed unit's serial not reused"
    );
    assert!(lines
        .iter()
        .any(|l| l.contains(
            "batch finished | passed 8 of 100 ordered (this run 8) | failed 2 | aborted 0 | yield 80.0%"
        )));
    // Progress is thinned to quarter steps: at most 5 lines per transfer, not 10 per second.
    let progress = lines.iter().filter(|l| l.contains("| progress ")).count();
    let progress_events = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::BytesProgress { .. }))
        .count();
    let transfers = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::BytesProgress { done: 0, .. }))
        .count();
    assert!(
        progress > 0 && progress <= 5 * transfers,
        "{progress} lines for {transfers} transfers"
    );
    assert!(
        progress * 10 < progress_events,
        "{progress} lines for {progress_events} events"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("| progress 50% (3") && l.ends_with("/640.0 MB)")),
        "{text}"
    );
}

#[test]
fn json_lines_one_object_per_event() {
    let events = scripted_batch(8, T0);
    let sink = LineSink::new(LineFormat::Json, Vec::new());
    for event in &events {
        sink.emit(event.clone());
    }
    let text = String::from_utf8(sink.into_inner()).unwrap();
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), events.len());
    assert_eq!(objects[0]["event"], "batch_started");
    assert_eq!(objects[0]["slots"].as_array().map(Vec::len), Some(8));
    let fails: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["verdict"]["result"] == "FAIL")
        .collect();
    assert_eq!(fails.len(), 2);
    assert_eq!(
        fails[0]["slot"], 6,
        "slot 6 is cut at 300 MB, before slot 3 reaches verification"
    );
    assert_eq!(fails[0]["verdict"]["code"], "DISCONNECTED");
    assert_eq!(fails[0]["verdict"]["next_step"], "reseat_cable");
    assert!(objects
        .iter()
        .all(|o| o["ts_ms"].as_u64().is_some_and(|t| t >= T0)));
}

/// At `-v` (`with_device_lines(true)`) device lines and warnings also go above the rows; by
/// default nothing does (see `tty_front_end_prints_nothing_above_the_rows_by_default`).
#[test]
fn tty_front_end_prints_device_lines_above_the_rows() {
    let term = CaptureTerm::new(120, 40);
    let mut dashboard = TtyDashboard::with_target(
        ProgressDrawTarget::term_like(Box::new(term.clone())),
        || (120, 40),
        RenderStyle::PLAIN,
    )
    .with_device_lines(true);
    for event in scripted_batch(4, T0) {
        dashboard.apply(&event);
    }
    dashboard.apply(&ev(
        99_000,
        EventKind::Warning {
            slot: Some(2),
            message: "hub port 1-1.2 over-current".into(),
        },
    ));
    let state = dashboard.finish();
    assert_eq!(state.counts().passed, 5);
    let written = term.text();
    let log_at = written
        .find("S02 7PL020215838: Writing 'system_a' OKAY")
        .expect(&written);
    let warn_at = written
        .find("WARNING S02 7PL020215838: hub port 1-1.2 over-current")
        .expect(&written);
    let rows_at = written.rfind("S01 ").expect(&written);
    assert!(
        log_at < rows_at && warn_at < rows_at,
        "device lines are printed above the rows:\n{written}"
    );
    assert!(written[rows_at..].contains("PASS -> to pass tray"));
    assert!(written.contains("[BATCH FINISHED]"));
}

#[test]
fn tty_front_end_prints_nothing_above_the_rows_by_default() {
    let term = CaptureTerm::new(120, 40);
    let mut dashboard = TtyDashboard::with_target(
        ProgressDrawTarget::term_like(Box::new(term.clone())),
        || (120, 40),
        RenderStyle::PLAIN,
    );
    let script = scripted_batch(4, T0);
    assert!(script
        .iter()
        .any(|e| matches!(e.kind, EventKind::DeviceLog { .. })));
    for event in script {
        dashboard.apply(&event);
    }
    dashboard.apply(&ev(
        99_000,
        EventKind::Warning {
            slot: Some(2),
            message: "hub port 1-1.2 over-current".into(),
        },
    ));
    dashboard.finish();
    let written = term.text();
    assert!(!written.contains("Writing 'system_a' OKAY"), "{written}");
    let first_frame = written.find("FLASHGATE").expect(&written);
    assert!(
        written[..first_frame].trim().is_empty(),
        "nothing above the dashboard:\n{written}"
    );
    // The warning is on the screen, in the pane under the slots.
    let rows_at = written.rfind("S01 ").expect(&written);
    assert!(
        written[rows_at..].contains("WARNING S02: hub port 1-1.2 over-current"),
        "{written}"
    );
    assert!(written.contains("[BATCH FINISHED]"));
}
