//! Output without a terminal (CI, systemd, a pipe): one plain line per event, or one JSON
//! object per event. Lines never carry control characters, so a log file stays greppable.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

use crate::events::{Event, EventKind, EventSink, SlotNumber};
use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

use super::render::{clock, sizes};
use super::state::FailureStreak;
use super::text::sanitize;

/// Plain lines, stateful only to repeat each slot's serial on every line and to thin progress
/// (one line per 25 % step rather than ten a second per slot).
#[derive(Debug, Default)]
pub struct PlainLines {
    serials: HashMap<SlotNumber, String>,
    quarter: HashMap<SlotNumber, u64>,
    /// Device lines (fastboot INFO/TEXT, Firehose `<log>`) only at `-v`; they are always in
    /// the unit log files.
    device_lines: bool,
    streak: FailureStreak,
    stop_line_after: u32,
    /// Whether the fleet database was last reached (a line only when that changes).
    fleet_reachable: Option<bool>,
}

impl PlainLines {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also write device lines (`flashgate run -v`).
    pub fn with_device_lines(mut self, show: bool) -> Self {
        self.device_lines = show;
        self
    }

    /// The line for `event`, or `None` for progress that did not cross a 25 % step.
    pub fn format(&mut self, event: &Event) -> Option<String> {
        let mut body = self.body(event)?;
        if let EventKind::Verdict { slot, verdict, .. } = &event.kind {
            let before = self.streak.stop_line(self.stop_line_after);
            self.streak.record(*slot, verdict);
            if let (None, Some(code)) = (before, self.streak.stop_line(self.stop_line_after)) {
                body.push_str(&format!(
                    " | STOP THE LINE: {} units in a row failed {code}: likely a config or image \
                     problem, not the phones; stop loading units and call the line engineer",
                    self.streak.count
                ));
            }
        }
        let time = Timestamp::from_unix_ms_u64(event.ts_ms).local_clock();
        let line = match event.slot() {
            Some(slot) => {
                let serial = self.serials.get(&slot).map_or("-", String::as_str);
                format!("{time} slot {slot:02} serial {serial} | {body}")
            }
            None => format!("{time} {body}"),
        };
        if let EventKind::UnitRemoved { slot } = &event.kind {
            // The serial belonged to the unit that left; the next unit's lines must not carry it.
            self.serials.remove(slot);
        }
        Some(sanitize(&line, true).into_owned())
    }

    fn body(&mut self, event: &Event) -> Option<String> {
        Some(match &event.kind {
            EventKind::BatchStarted(b) => {
                self.stop_line_after = b.stop_line_after;
                self.streak = FailureStreak::default();
                format!(
                "batch started | station {} | work order {} | product {} | region {} | build {} | quantity {} | {} slots{}",
                b.station_id,
                b.work_order,
                b.product,
                b.region,
                b.build_id,
                b.quantity,
                b.slots.len(),
                b.operator.as_ref().map_or_else(String::new, |o| format!(" | operator {o}"))
            )
            }
            EventKind::UnitDetected { slot, port_path, mode, serial } => {
                match serial {
                    Some(serial) => self.serials.insert(*slot, serial.clone()),
                    None => self.serials.remove(slot),
                };
                self.quarter.remove(slot);
                format!("detected | port {port_path} | mode {mode}")
            }
            EventKind::UnitIdentified { slot, serial } => match self.serials.get(slot) {
                // The slot's lines keep the name the unit was first known by.
                Some(first) if first != serial => {
                    format!("identified again as {serial} (the same unit)")
                }
                Some(_) => "identified".to_owned(),
                None => {
                    self.serials.insert(*slot, serial.clone());
                    "identified".to_owned()
                }
            },
            EventKind::ModeChanged { mode, .. } => format!("re-enumerated | mode {mode}"),
            EventKind::PhaseChanged { slot, phase } => {
                self.quarter.remove(slot);
                format!("phase {phase}")
            }
            EventKind::BytesProgress { slot, done, total } => {
                let step = if *total == 0 { 0 } else { done.saturating_mul(4) / total };
                if *total == 0 || self.quarter.get(slot) == Some(&step) {
                    return None;
                }
                self.quarter.insert(*slot, step);
                format!("progress {}% ({})", step * 25, sizes(*done, *total))
            }
            EventKind::DeviceLog { line, .. } if self.device_lines => format!("device: {line}"),
            EventKind::DeviceLog { .. } => return None,
            EventKind::Warning { message, .. } => format!("WARNING: {message}"),
            EventKind::Verdict { slot, serial, verdict } => {
                if let Some(serial) = serial {
                    self.serials.entry(*slot).or_insert_with(|| serial.clone());
                }
                match verdict {
                    Verdict::Pass => format!("PASS | next: {}", verdict.next_step()),
                    Verdict::Fail(failure) => format!(
                        "FAIL {} | next: {} | {}",
                        failure.code(),
                        verdict.next_step(),
                        failure.detail()
                    ),
                    Verdict::Aborted(interruption) => format!(
                        "ABORTED | next: {} | {}",
                        verdict.next_step(),
                        interruption.detail()
                    ),
                }
            }
            EventKind::UnitRemoved { slot } => {
                self.quarter.remove(slot);
                "unit removed".to_owned()
            }
            EventKind::FleetSync(state) => {
                if self.fleet_reachable == Some(state.reachable) {
                    return None;
                }
                self.fleet_reachable = Some(state.reachable);
                match &state.error {
                    Some(error) => format!(
                        "FLEET DATABASE NOT REACHED | {} attempt(s) wait in the journal, shipped when it answers | {error}",
                        state.backlog
                    ),
                    None => format!(
                        "fleet database reached | {} attempt(s) waiting, {} shipped",
                        state.backlog, state.shipped
                    ),
                }
            }
            EventKind::Holding { why: Some(why) } => {
                format!("HOLDING | {why} | no new unit starts; units on their slots wait unflashed")
            }
            EventKind::Holding { why: None } => {
                "hold lifted | the fleet has a place: held units start".to_owned()
            }
            EventKind::Stopping { why, units_running } => format!(
                "STOPPING | {why} | {units_running} unit(s) finish their current step; nothing new starts"
            ),
            EventKind::BatchFinished(s) => {
                let decided = s.passed + s.failed;
                let yield_text = match decided {
                    0 => "-".to_owned(),
                    n => format!("{:.1}%", f64::from(s.passed) * 100.0 / f64::from(n)),
                };
                let codes: Vec<String> =
                    s.failures_by_code.iter().map(|(code, n)| format!("{code}={n}")).collect();
                let ordered = match (s.units_passed, s.ordered) {
                    (Some(units), Some(ordered)) => {
                        format!("passed {units} of {ordered} ordered (this run {})", s.passed)
                    }
                    _ => format!("passed {}", s.passed),
                };
                let fleet = match &s.fleet_complete {
                    Some(why) => format!(" | {why}"),
                    None => String::new(),
                };
                let not_flashed = match s.not_flashed {
                    0 => String::new(),
                    n => format!(" | not flashed {n}"),
                };
                format!(
                    "batch finished | {ordered} | failed {} | aborted {}{not_flashed} | yield {} | elapsed {}{}{fleet}",
                    s.failed,
                    s.aborted,
                    yield_text,
                    clock(s.elapsed_ms / 1000),
                    if codes.is_empty() { String::new() } else { format!(" | failures {}", codes.join(" ")) }
                )
            }
        })
    }
}

/// One compact JSON object (no newline) for `event`.
pub fn json_line(event: &Event) -> String {
    // Serializing plain data with string keys cannot fail; the fallback keeps the stream valid.
    serde_json::to_string(event)
        .unwrap_or_else(|e| format!("{{\"event\":\"unserializable\",\"error\":\"{e}\"}}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    Plain,
    Json,
}

/// Writes one line per event to `out` (stdout, a file). Write errors are counted, not raised:
/// a closed pipe must not stop the station; the journal and log files are the record.
pub struct LineSink<W: Write + Send> {
    inner: Mutex<LineSinkInner<W>>,
}

struct LineSinkInner<W> {
    format: LineFormat,
    plain: PlainLines,
    out: W,
    write_errors: u64,
}

impl<W: Write + Send> LineSink<W> {
    pub fn new(format: LineFormat, out: W) -> Self {
        Self {
            inner: Mutex::new(LineSinkInner {
                format,
                plain: PlainLines::new(),
                out,
                write_errors: 0,
            }),
        }
    }

    /// Plain lines also carry device lines (`flashgate run -v`); JSON always does.
    pub fn with_device_lines(self, show: bool) -> Self {
        let mut inner = self
            .inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        inner.plain = std::mem::take(&mut inner.plain).with_device_lines(show);
        Self {
            inner: Mutex::new(inner),
        }
    }

    pub fn write_errors(&self) -> u64 {
        self.lock().write_errors
    }

    pub fn into_inner(self) -> W {
        self.inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LineSinkInner<W>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<W: Write + Send> LineSinkInner<W> {
    fn write(&mut self, event: &Event) -> io::Result<()> {
        let line = match self.format {
            LineFormat::Plain => match self.plain.format(event) {
                Some(line) => line,
                None => return Ok(()),
            },
            LineFormat::Json => json_line(event),
        };
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }
}

impl<W: Write + Send> EventSink for LineSink<W> {
    fn emit(&self, event: Event) {
        let mut inner = self.lock();
        if inner.write(&event).is_err() {
            inner.write_errors += 1;
        }
    }
}
