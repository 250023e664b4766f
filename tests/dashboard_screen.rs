//! The operator's screen at the sizes a line uses (80 and 200 columns): one set of counters,
//! the failure code and its full reason readable, the physical next step, the stop-line banner,
//! one identity per unit and bars that only move forward.

use station::config::RegionCode;
use station::dashboard::{DashboardState, RenderStyle};
use station::events::{BatchInfo, Event, EventKind, Phase, SlotInfo};
use station::mode::Mode;
use station::verdict::{Failure, UnitRef, Verdict};

const T0: u64 = 1_796_379_302_000;
const MB: u64 = 1_000_000;

fn at(ms: u64, kind: EventKind) -> Event {
    Event::at(T0 + ms, kind)
}

fn batch(slots: u16, stop_line_after: u32) -> Event {
    at(
        0,
        EventKind::BatchStarted(BatchInfo {
            station_id: "LINE3-ST07".into(),
            work_order: "WO-1187".into(),
            product: "demo-phone".into(),
            region: "00EEA".into(),
            build_id: "DP1.241128.007".into(),
            quantity: 32,
            passed_before: 4,
            slots: (1..=slots)
                .map(|slot| SlotInfo {
                    slot,
                    port_path: format!("1-{slot}"),
                })
                .collect(),
            stop_line_after,
            operator: Some("op-1042".into()),
        }),
    )
}

fn wrong_region(slot: u16, serial: &str) -> Verdict {
    Verdict::Fail(Failure::ActivationClientWrongRegion {
        unit: UnitRef {
            slot,
            serial: Some(serial.into()),
        },
        partition: "system_a".into(),
        location: "/system/priv-app/ActivationClient/ActivationClient.apk".into(),
        found_region: RegionCode::parse("00CN").unwrap(),
        work_order: "WO-1187".into(),
        needed_region: RegionCode::parse("00EEA").unwrap(),
    })
}

fn disconnected(slot: u16, serial: &str) -> Verdict {
    Verdict::Fail(Failure::Disconnected {
        unit: UnitRef {
            slot,
            serial: Some(serial.into()),
        },
        step: "flash system_a".into(),
    })
}

/// One unit on `slot`: detected at `t`, flashes 100 MB at 50 MB/s, then its verdict.
fn unit(events: &mut Vec<Event>, slot: u16, t: u64, verdict: Option<Verdict>) {
    let serial = format!("FG{slot:06}");
    events.push(at(
        t,
        EventKind::UnitDetected {
            slot,
            port_path: format!("1-{slot}"),
            mode: Mode::Fastboot,
            serial: Some(serial.clone()),
        },
    ));
    events.push(at(
        t + 100,
        EventKind::PhaseChanged {
            slot,
            phase: Phase::Flash {
                partition: "system_a".into(),
            },
        },
    ));
    for tick in 0..=20u64 {
        events.push(at(
            t + 100 + tick * 100,
            EventKind::BytesProgress {
                slot,
                done: tick * 5 * MB,
                total: 100 * MB,
            },
        ));
    }
    if let Some(verdict) = verdict {
        events.push(at(
            t + 2_500,
            EventKind::Verdict {
                slot,
                serial: Some(serial),
                verdict,
            },
        ));
    }
}

fn replay(events: &[Event]) -> DashboardState {
    let mut state = DashboardState::new();
    for event in events {
        state.apply(event);
    }
    state
}

/// 16 phones of a broken image set: 5 pass, then every unit fails the region check; two are
/// still flashing when the screen is drawn.
fn broken_batch() -> DashboardState {
    let mut events = vec![batch(16, 3)];
    for slot in 1..=16u16 {
        let t = u64::from(slot) * 1_000;
        let verdict = match slot {
            1..=5 => Some(Verdict::Pass),
            6 => Some(disconnected(slot, &format!("FG{slot:06}"))),
            15 | 16 => None,
            _ => Some(wrong_region(slot, &format!("FG{slot:06}"))),
        };
        unit(&mut events, slot, t, verdict);
    }
    events.sort_by_key(|e| e.ts_ms);
    let mut state = replay(&events);
    state.tick(T0 + 18_400);
    state
}

const REASON: &str = "system_a /system/priv-app/ActivationClient/ActivationClient.apk has the \
                      00CN client, work order WO-1187 needs 00EEA";

#[test]
fn at_80_columns_elapsed_counters_and_every_code_are_whole() {
    let state = broken_batch();
    let screen = state.render(80, 23, RenderStyle::PLAIN);
    assert!(screen.len() <= 23, "{screen:#?}");
    assert!(screen.iter().all(|l| l.chars().count() <= 80));
    assert!(
        screen[0].starts_with("FLASHGATE elapsed 0:18 | WO WO-1187 | demo-phone 00EEA"),
        "{}",
        screen[0]
    );
    // One set of counters: passed of ordered counts earlier runs (4) and this run (5).
    assert_eq!(
        screen[1],
        "passed 9 of 32 ordered (this run 5) | failed 9 | in progress 2 | yield 35.7% | >"
    );
    assert!(
        screen[2].starts_with("avg ") && !screen[2].starts_with("avg 0.0 MB/s"),
        "an average rate over the run: {}",
        screen[2]
    );
    assert!(
        screen[2].contains(" units/h | cycle 0:02 | now "),
        "{}",
        screen[2]
    );
    // The banner names the code and what to do, in two lines at 80 columns.
    assert_eq!(
        screen[3..5]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" "),
        "STOP THE LINE: 8 in a row failed ACTIVATION_CLIENT_WRONG_REGION: likely a config or \
         image problem, not the phones. Stop loading units, call engineer."
    );
    // Sixteen rows and the banner leave the reasons three lines: the slots go into two
    // columns of compact cells, so that every reason is whole under them. A cell keeps the
    // code whole; the next step is said once, with the reason.
    for slot in 7..=14u16 {
        let cell = format!("S{slot:02} FAIL ACTIVATION_CLIENT_WRONG_REGION");
        assert!(
            screen.iter().any(|l| l.contains(&cell)),
            "the code is never cut: {cell} in {screen:#?}"
        );
    }
    let text = screen.join("\n");
    assert!(text.contains("S06 FG000006 FAIL DISCONNECTED"), "{text}");
    assert!(text.contains("S01 FG000001 PASS -> to pass tray"), "{text}");
    assert!(text.contains("S15 FG000015 flash system_a"), "{text}");
    let slot_rows: Vec<&String> = screen
        .iter()
        .filter(|l| l.starts_with('S') && l[1..].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(slot_rows.len(), 8, "two columns of eight: {screen:#?}");
    assert!(
        slot_rows[0].starts_with("S01 ") && slot_rows[0].contains("  S09 "),
        "column by column: {}",
        slot_rows[0]
    );
    let pane: Vec<&String> = screen
        .iter()
        .skip_while(|l| !l.starts_with("ACTIVATION_CLIENT_WRONG_REGION S07"))
        .collect();
    assert!(
        pane.iter().all(|l| !l.ends_with('>')),
        "no reason is cut: {screen:#?}"
    );
    let joined = pane.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    assert!(
        joined.contains(&format!(
            "ACTIVATION_CLIENT_WRONG_REGION S07 S08 S09 S10 S11 S12 S13 S14 -> call engineer: \
             {REASON}"
        )),
        "{screen:#?}"
    );
    assert!(
        joined.contains("DISCONNECTED S06 -> re-seat cable: the phone disconnected during flash"),
        "{screen:#?}"
    );
    assert!(!joined.contains("not shown"), "{screen:#?}");
    // Without the banner (a PASS came since), the reason is in the pane under the slots,
    // wrapped, whole, once for the eight units that share it.
    let mut state = state;
    state.apply(&at(
        18_500,
        EventKind::Verdict {
            slot: 15,
            serial: None,
            verdict: Verdict::Pass,
        },
    ));
    let screen = state.render(80, 23, RenderStyle::PLAIN);
    assert!(screen.iter().all(|l| !l.starts_with("STOP THE LINE")));
    let pane: Vec<&String> = screen
        .iter()
        .skip_while(|l| !l.starts_with("ACTIVATION_CLIENT_WRONG_REGION S07"))
        .collect();
    let joined = pane.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    assert!(
        joined.starts_with(&format!(
            "ACTIVATION_CLIENT_WRONG_REGION S07 S08 S09 S10 S11 S12 S13 S14: {REASON}"
        )),
        "{screen:#?}"
    );
    assert!(!joined.contains("(serial"), "{joined}");
}

#[test]
fn at_200_columns_everything_is_on_screen_once() {
    let state = broken_batch();
    let screen = state.render(200, 49, RenderStyle::PLAIN);
    let text = screen.join("\n");
    assert_eq!(
        screen[1],
        "passed 9 of 32 ordered (this run 5) | failed 9 | in progress 2 | yield 35.7% | waiting 0"
    );
    assert!(screen[0].contains("| station LINE3-ST07 | operator op-1042 | build DP1.241128.007"));
    assert_eq!(
        text.matches("passed ").count(),
        1,
        "one set of counters: {text}"
    );
    assert!(screen[3].starts_with(
        "STOP THE LINE: 8 in a row failed ACTIVATION_CLIENT_WRONG_REGION: likely a config"
    ));
    assert!(
        screen.contains(&format!(
            "ACTIVATION_CLIENT_WRONG_REGION S07 S08 S09 S10 S11 S12 S13 S14: {REASON}"
        )),
        "{text}"
    );
    assert!(
        screen.contains(
            &"DISCONNECTED S06: the phone disconnected during flash system_a".to_string()
        ),
        "{text}"
    );
    let s15 = screen.iter().find(|l| l.starts_with("S15 ")).unwrap();
    assert!(s15.contains("flash system_a") && s15.contains('['), "{s15}");
}

#[test]
fn stop_line_banner_needs_k_failures_in_a_row_with_one_code() {
    let banner = |events: &[Event]| {
        replay(events)
            .render(200, 30, RenderStyle::PLAIN)
            .iter()
            .any(|l| l.starts_with("STOP THE LINE"))
    };
    let fail = |slot: u16, verdict: Verdict| {
        at(
            u64::from(slot) * 10,
            EventKind::Verdict {
                slot,
                serial: None,
                verdict,
            },
        )
    };
    let mut events = vec![batch(8, 3), fail(1, wrong_region(1, "A"))];
    events.push(fail(2, wrong_region(2, "B")));
    assert!(!banner(&events), "two are not a run yet");
    events.push(fail(3, disconnected(3, "C")));
    events.push(fail(4, wrong_region(4, "D")));
    events.push(fail(5, wrong_region(5, "E")));
    assert!(!banner(&events), "another code in between starts a new run");
    events.push(fail(6, wrong_region(6, "F")));
    assert!(banner(&events));
    events.push(fail(7, Verdict::Pass));
    assert!(!banner(&events), "a PASS ends the run");
    let mut off = vec![batch(8, 0)];
    for slot in 1..=8 {
        off.push(fail(slot, wrong_region(slot, "X")));
    }
    assert!(!banner(&off), "stop_line_after: 0 turns it off");
}

#[test]
fn plain_lines_say_stop_the_line_once_when_the_run_reaches_k() {
    let mut events = vec![batch(16, 3)];
    for slot in 1..=16u16 {
        let verdict = match slot {
            1..=5 => Some(Verdict::Pass),
            _ => Some(wrong_region(slot, &format!("FG{slot:06}"))),
        };
        unit(&mut events, slot, u64::from(slot) * 1_000, verdict);
    }
    events.sort_by_key(|e| e.ts_ms);
    let mut lines = station::dashboard::PlainLines::new();
    let text: Vec<String> = events.iter().filter_map(|e| lines.format(e)).collect();
    let stops: Vec<&String> = text
        .iter()
        .filter(|l| l.contains("STOP THE LINE"))
        .collect();
    assert_eq!(stops.len(), 1, "{stops:#?}");
    assert!(
        stops[0].contains("slot 08 serial FG000008 | FAIL ACTIVATION_CLIENT_WRONG_REGION")
            && stops[0].contains("STOP THE LINE: 3 units in a row failed"),
        "the third failure in a row: {}",
        stops[0]
    );
}

#[test]
fn an_edl_unit_keeps_one_identity_on_its_row() {
    let events = vec![
        batch(2, 3),
        at(
            10,
            EventKind::UnitDetected {
                slot: 2,
                port_path: "1-2".into(),
                mode: Mode::Edl,
                serial: None,
            },
        ),
        at(
            20,
            EventKind::UnitIdentified {
                slot: 2,
                serial: "5EC00002".into(),
            },
        ),
        at(
            30,
            EventKind::ModeChanged {
                slot: 2,
                mode: Mode::Fastboot,
            },
        ),
        at(
            40,
            EventKind::UnitIdentified {
                slot: 2,
                serial: "FG000102".into(),
            },
        ),
    ];
    let mid = replay(&events);
    let row = |state: &DashboardState, width| {
        state
            .render(width, 20, RenderStyle::PLAIN)
            .into_iter()
            .find(|l| l.starts_with("S02 "))
            .unwrap()
    };
    for width in [80, 200] {
        let line = row(&mid, width);
        assert!(
            line.starts_with("S02 5EC00002 ") && !line.contains("FG000102"),
            "{line}"
        );
    }
    let mut done = events.clone();
    done.push(at(
        50,
        EventKind::Verdict {
            slot: 2,
            serial: Some("FG000102".into()),
            verdict: Verdict::Pass,
        },
    ));
    let line = row(&replay(&done), 200);
    assert!(
        line.starts_with("S02 5EC00002 ")
            && line.ends_with("PASS -> to pass tray (0:00) (also FG000102)"),
        "{line}"
    );
}

/// The fill and the width of the bar on `slot`'s row, with the phase it is shown under.
fn bar_of(state: &DashboardState, slot: u16, width: u16) -> Option<(String, usize, usize)> {
    let screen = state.render(width, 20, RenderStyle::PLAIN);
    let line = screen
        .iter()
        .find(|l| l.starts_with(&format!("S{slot:02} ")))?;
    let open = line.find('[')?;
    let close = line[open..].find(']')? + open;
    let bar = &line[open + 1..close];
    let label = line[..open].trim_end().to_owned();
    Some((label, bar.matches('#').count(), bar.len()))
}

#[test]
fn a_second_copy_gets_its_own_label_and_no_bar_goes_backwards_or_changes_width() {
    let mut events = vec![
        batch(1, 3),
        at(
            0,
            EventKind::UnitDetected {
                slot: 1,
                port_path: "1-1".into(),
                mode: Mode::Fastboot,
                serial: Some("FG000001".into()),
            },
        ),
        at(
            10,
            EventKind::PhaseChanged {
                slot: 1,
                phase: Phase::Flash {
                    partition: "system".into(),
                },
            },
        ),
    ];
    // `system` to both slots: the client sends the image to system_a, then to system_b.
    let mut t = 20;
    for _copy in 0..2 {
        for tick in 0..=10u64 {
            events.push(at(
                t,
                EventKind::BytesProgress {
                    slot: 1,
                    done: tick * 10 * MB,
                    total: 100 * MB,
                },
            ));
            t += 500;
        }
    }
    for width in [80u16, 120, 200] {
        let mut state = DashboardState::new();
        let mut seen: Vec<(String, usize, usize)> = Vec::new();
        for event in &events {
            state.apply(event);
            if let Some(bar) = bar_of(&state, 1, width) {
                seen.push(bar);
            }
        }
        assert!(seen.len() >= 20, "{seen:?}");
        let bar_width = seen[0].2;
        assert!(
            seen.iter().all(|(_, _, w)| *w == bar_width),
            "one bar width at 0 % and after ({width} columns): {seen:?}"
        );
        for pair in seen.windows(2) {
            let ((label_a, fill_a, _), (label_b, fill_b, _)) = (&pair[0], &pair[1]);
            assert!(
                label_a != label_b || fill_b >= fill_a,
                "a bar went backwards under `{label_a}` at {width} columns: {seen:?}"
            );
        }
        let labels: Vec<&str> = seen.iter().map(|(l, _, _)| l.as_str()).collect();
        assert!(labels[0].ends_with("flash system"), "{labels:?}");
        assert!(
            labels.last().unwrap().ends_with("flash system #2"),
            "{labels:?}"
        );
    }
}
