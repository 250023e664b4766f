//! CPU cost of the operator dashboard at a realistic event rate: 32 slots all transferring,
//! progress every 100 ms per slot, a phase change every 8 s and a device log line every 2 s per
//! slot, the screen refreshed every 200 ms (the TTY front end's rate) through indicatif into a
//! terminal that discards output. Prints the cost as a percentage of one core (target < 2 %).
//!
//! `cargo bench -p flashgate-station --bench dashboard_render` (or `cargo run -p
//! flashgate-station --bench dashboard_render` for an unoptimised upper bound).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressDrawTarget, TermLike};
use station::dashboard::{script, DashboardState, RenderStyle, TtyDashboard};
use station::events::{now_unix_ms, BatchInfo, Event, EventKind, Phase, SlotInfo};
use station::mode::Mode;

const SLOTS: u16 = 32;
const SIMULATED_SECS: u64 = 120;
const PROGRESS_MS: u64 = 100;
const REFRESH_MS: u64 = 200;
const RUNS: usize = 7;

/// A 200x60 terminal that counts what it is sent and throws it away.
#[derive(Debug, Clone, Default)]
struct NullTerm {
    bytes: Arc<AtomicU64>,
}

impl TermLike for NullTerm {
    fn width(&self) -> u16 {
        200
    }
    fn height(&self) -> u16 {
        60
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.bytes.fetch_add(s.len() as u64 + 1, Ordering::Relaxed);
        Ok(())
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.bytes.fetch_add(s.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn clear_line(&self) -> io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Steady state: every slot busy for the whole run.
fn steady_stream(start_ms: u64) -> Vec<Event> {
    let mut events = vec![Event::at(
        start_ms,
        EventKind::BatchStarted(BatchInfo {
            station_id: "BENCH".into(),
            work_order: "WO-BENCH".into(),
            product: "demo-phone".into(),
            region: "00WW".into(),
            build_id: "B1".into(),
            quantity: 1000,
            passed_before: 0,
            slots: (1..=SLOTS)
                .map(|slot| SlotInfo {
                    slot,
                    port_path: script::port_path(slot),
                })
                .collect(),
            stop_line_after: 3,
            operator: None,
        }),
    )];
    for slot in 1..=SLOTS {
        let mode = if slot % 2 == 0 {
            Mode::Fastboot
        } else {
            Mode::Edl
        };
        events.push(Event::at(
            start_ms,
            EventKind::UnitDetected {
                slot,
                port_path: script::port_path(slot),
                mode,
                serial: Some(script::serial(slot, 1)),
            },
        ));
    }
    let total = 320_000_000u64;
    let per_tick = 4_000_000u64;
    for tick in 1..=(SIMULATED_SECS * 1000 / PROGRESS_MS) {
        let t = start_ms + tick * PROGRESS_MS;
        for slot in 1..=SLOTS {
            // Slots are staggered so phase changes do not all land on the same tick.
            let step = tick + u64::from(slot) * 3;
            if step % 80 == 0 {
                let phase = Phase::Flash {
                    partition: format!("part{}", step / 80),
                };
                events.push(Event::at(t, EventKind::PhaseChanged { slot, phase }));
            }
            let done = (step % 80) * per_tick;
            events.push(Event::at(t, EventKind::BytesProgress { slot, done, total }));
            if step % 20 == 0 {
                events.push(Event::at(
                    t,
                    EventKind::DeviceLog {
                        slot,
                        line: format!("INFO: wrote {done} bytes"),
                    },
                ));
            }
        }
    }
    events
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Run {
    cpu: Duration,
    refreshes: u64,
    bytes: u64,
}

/// Feeds `events` as the TTY consumer would: apply each, refresh whenever simulated time has
/// moved 200 ms on.
fn run_tty(events: &[Event]) -> Run {
    let term = NullTerm::default();
    let mut dashboard = TtyDashboard::with_target(
        ProgressDrawTarget::term_like(Box::new(term.clone())),
        || (200, 60),
        RenderStyle::FULL,
    );
    let start = thread_cpu();
    let mut next_refresh = events[0].ts_ms + REFRESH_MS;
    let mut refreshes = 0;
    for event in events {
        while event.ts_ms >= next_refresh {
            dashboard.refresh();
            refreshes += 1;
            next_refresh += REFRESH_MS;
        }
        dashboard.apply(event);
    }
    dashboard.refresh();
    let cpu = thread_cpu() - start;
    let bytes = term.bytes.load(Ordering::Relaxed);
    drop(dashboard);
    Run {
        cpu,
        refreshes: refreshes + 1,
        bytes,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // Stamped in the future so the front end's wall-clock tick never moves the simulated clock.
    let start_ms = now_unix_ms() + 86_400_000;
    let events = steady_stream(start_ms);
    let sim = Duration::from_secs(SIMULATED_SECS);
    println!(
        "dashboard_render: {SLOTS} slots, {} events over {SIMULATED_SECS} s simulated ({:.0} events/s), refresh every {REFRESH_MS} ms",
        events.len(),
        events.len() as f64 / sim.as_secs_f64()
    );
    let mut percents = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let run = run_tty(&events);
        percents.push(run.cpu.as_secs_f64() * 100.0 / sim.as_secs_f64());
        last = Some(run);
    }
    let last = last.expect("RUNS > 0");
    println!(
        "  TTY front end (apply + render + indicatif draw): median {:.3} % of one core over {RUNS} runs (min {:.3} %, max {:.3} %); {} refreshes, {:.1} MB drawn",
        median(percents.clone()),
        percents.iter().cloned().fold(f64::INFINITY, f64::min),
        percents.iter().cloned().fold(0.0, f64::max),
        last.refreshes,
        last.bytes as f64 / 1e6
    );

    // The pure parts, for where the time goes.
    let mut state = DashboardState::new();
    let t = Instant::now();
    for event in &events {
        state.apply(event);
    }
    let apply_ns = t.elapsed().as_nanos() as f64 / events.len() as f64;
    let frames = 500;
    let t = Instant::now();
    let mut cols = 0usize;
    for _ in 0..frames {
        cols += state.render(200, 60, RenderStyle::FULL).len();
    }
    let render_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(frames);
    println!("  apply: {apply_ns:.0} ns/event; render 32 slots at 200x60: {render_us:.1} us/frame ({cols} lines)");

    let scripted = script::scripted_batch(SLOTS, start_ms);
    let span = Duration::from_millis(scripted.last().map_or(0, |e| e.ts_ms) - start_ms);
    let run = run_tty(&scripted);
    println!(
        "  scripted 32-slot batch ({} events over {:.1} s): {:.3} % of one core",
        scripted.len(),
        span.as_secs_f64(),
        run.cpu.as_secs_f64() * 100.0 / span.as_secs_f64()
    );
}
