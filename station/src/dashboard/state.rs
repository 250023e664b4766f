//! The dashboard as a pure state machine: events in, a model of the station out. No terminal,
//! no clock of its own (time comes from event stamps and [`DashboardState::tick`]), so a
//! scripted event stream gives the same screen every time.

use std::collections::{BTreeMap, VecDeque};

use crate::events::{BatchInfo, BatchSummary, Event, EventKind, Phase, SlotNumber};
use crate::mode::Mode;
use crate::verdict::Verdict;

/// How far back the MB/s figure looks: long enough to smooth USB bursts, short enough that a
/// stalled phone shows its rate falling within seconds.
const RATE_WINDOW_MS: u64 = 3_000;
const MAX_RATE_SAMPLES: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct DashboardState {
    pub(super) batch: Option<BatchInfo>,
    pub(super) started_ms: Option<u64>,
    pub(super) now_ms: u64,
    pub(super) summary: Option<BatchSummary>,
    pub(super) slots: BTreeMap<SlotNumber, SlotRow>,
    pub(super) passed: u32,
    pub(super) failed: u32,
    pub(super) aborted: u32,
    /// Serials that passed in this run (a unit passing twice is one unit of the order).
    pub(super) passed_serials: std::collections::BTreeSet<String>,
    /// Why the station is stopping, once it is.
    pub(super) stopping: Option<String>,
}

/// One physical slot. Its position on screen is fixed by its number.
#[derive(Debug, Clone, Default)]
pub struct SlotRow {
    pub port_path: String,
    pub status: SlotStatus,
}

#[derive(Debug, Clone, Default)]
pub enum SlotStatus {
    /// No unit: the slot waits for the operator.
    #[default]
    Empty,
    Occupied(Unit),
    /// The unit disappeared before any verdict (pulled mid-flash); shown until the next unit.
    Vanished(Unit),
}

#[derive(Debug, Clone)]
pub struct Unit {
    pub serial: Option<String>,
    pub mode: Mode,
    pub phase: Option<Phase>,
    pub phase_since_ms: u64,
    pub progress: Option<Progress>,
    pub verdict: Option<Verdict>,
    pub detected_ms: u64,
    pub verdict_ms: Option<u64>,
}

/// Bulk-data progress of the current phase.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    samples: VecDeque<(u64, u64)>,
}

impl Progress {
    fn record(&mut self, at_ms: u64, done: u64, total: u64) {
        if done < self.done || total != self.total {
            // A new transfer within the same phase (next sparse chunk or image): restart the rate.
            self.samples.clear();
        }
        self.done = done;
        self.total = total;
        self.samples.push_back((at_ms, done));
        while self.samples.len() > MAX_RATE_SAMPLES
            || (self.samples.len() > 2
                && self
                    .samples
                    .get(1)
                    .is_some_and(|&(t, _)| at_ms.saturating_sub(t) > RATE_WINDOW_MS))
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the recent window, measured up to `now_ms` so that a stalled
    /// transfer shows a falling rate rather than its last good figure.
    pub fn rate(&self, now_ms: u64) -> f64 {
        let (Some(&(t0, d0)), Some(&(t1, d1))) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        let span_ms = now_ms.max(t1).saturating_sub(t0);
        if span_ms == 0 || d1 <= d0 {
            return 0.0;
        }
        (d1 - d0) as f64 * 1000.0 / span_ms as f64
    }

    /// Seconds left at the current rate; `None` when unknown.
    pub fn eta_secs(&self, now_ms: u64) -> Option<u64> {
        let rate = self.rate(now_ms);
        if self.total == 0 || rate <= 0.0 {
            return None;
        }
        Some((self.total.saturating_sub(self.done) as f64 / rate).ceil() as u64)
    }

    pub fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| (self.done.min(self.total) as f64) / self.total as f64)
    }
}

/// Header figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
    /// Attempts cut by a stop (neither passed nor failed).
    pub aborted: u32,
    /// Distinct units passed under the work order, earlier runs included.
    pub units_passed: u32,
    /// Units on a slot without a verdict yet.
    pub in_progress: u32,
    /// Slots without a unit.
    pub waiting: u32,
}

impl DashboardState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply(&mut self, event: &Event) {
        self.now_ms = self.now_ms.max(event.ts_ms);
        let at = event.ts_ms;
        match &event.kind {
            EventKind::BatchStarted(info) => {
                for slot in &info.slots {
                    self.slots.entry(slot.slot).or_default().port_path = slot.port_path.clone();
                }
                self.batch = Some(info.clone());
                self.started_ms = Some(at);
                self.summary = None;
            }
            EventKind::UnitDetected {
                slot,
                port_path,
                mode,
                serial,
            } => {
                let row = self.slots.entry(*slot).or_default();
                row.port_path = port_path.clone();
                row.status = SlotStatus::Occupied(Unit::new(*mode, serial.clone(), at));
            }
            EventKind::UnitIdentified { slot, serial } => {
                self.unit_mut(*slot, at).serial = Some(serial.clone());
            }
            EventKind::ModeChanged { slot, mode } => self.unit_mut(*slot, at).mode = *mode,
            EventKind::PhaseChanged { slot, phase } => {
                let unit = self.unit_mut(*slot, at);
                unit.phase = Some(phase.clone());
                unit.phase_since_ms = at;
                unit.progress = None;
            }
            EventKind::BytesProgress { slot, done, total } => {
                self.unit_mut(*slot, at)
                    .progress
                    .get_or_insert_with(Progress::default)
                    .record(at, *done, *total);
            }
            EventKind::DeviceLog { .. } | EventKind::Warning { .. } => {}
            EventKind::Stopping { why, .. } => self.stopping = Some(why.clone()),
            EventKind::Verdict {
                slot,
                serial,
                verdict,
            } => {
                match verdict {
                    Verdict::Pass => {
                        self.passed += 1;
                        self.passed_serials.insert(
                            serial
                                .clone()
                                .unwrap_or_else(|| format!("slot {slot} #{}", self.passed)),
                        );
                    }
                    Verdict::Fail { .. } => self.failed += 1,
                    Verdict::Aborted { .. } => self.aborted += 1,
                }
                let unit = self.unit_mut(*slot, at);
                if unit.serial.is_none() {
                    unit.serial.clone_from(serial);
                }
                unit.verdict = Some(verdict.clone());
                unit.verdict_ms = Some(at);
            }
            EventKind::UnitRemoved { slot } => {
                let row = self.slots.entry(*slot).or_default();
                row.status = match std::mem::take(&mut row.status) {
                    SlotStatus::Occupied(unit) if unit.verdict.is_none() => {
                        SlotStatus::Vanished(unit)
                    }
                    _ => SlotStatus::Empty,
                };
            }
            EventKind::BatchFinished(summary) => self.summary = Some(summary.clone()),
        }
    }

    /// Advances the clock without an event (elapsed time, ETA and falling rates keep moving).
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// The unit on `slot`, created when an event names a slot whose detection we never saw (a
    /// consumer attached mid-batch): better a row with gaps than a lost verdict.
    fn unit_mut(&mut self, slot: SlotNumber, at: u64) -> &mut Unit {
        let row = self.slots.entry(slot).or_default();
        if !matches!(row.status, SlotStatus::Occupied(_)) {
            row.status = SlotStatus::Occupied(Unit::new(Mode::Fastboot, None, at));
        }
        match &mut row.status {
            SlotStatus::Occupied(unit) => unit,
            SlotStatus::Empty | SlotStatus::Vanished(_) => unreachable!("just made occupied"),
        }
    }

    pub fn counts(&self) -> Counts {
        let mut in_progress = 0;
        let mut waiting = 0;
        for row in self.slots.values() {
            match &row.status {
                SlotStatus::Occupied(unit) if unit.verdict.is_none() => in_progress += 1,
                SlotStatus::Occupied(_) => {}
                SlotStatus::Empty | SlotStatus::Vanished(_) => waiting += 1,
            }
        }
        let passed_before = self.batch.as_ref().map_or(0, |b| b.passed_before);
        Counts {
            passed: self.passed,
            failed: self.failed,
            aborted: self.aborted,
            units_passed: match &self.summary {
                Some(BatchSummary {
                    units_passed: Some(n),
                    ..
                }) => *n,
                _ => passed_before + self.passed_serials.len() as u32,
            },
            in_progress,
            waiting,
        }
    }

    /// Passed share of units with a verdict, in percent.
    pub fn yield_percent(&self) -> Option<f64> {
        let done = self.passed + self.failed;
        (done > 0).then(|| f64::from(self.passed) * 100.0 / f64::from(done))
    }

    /// Sum of the current transfer rates of all units still working, bytes per second.
    pub fn throughput(&self) -> f64 {
        self.units()
            .filter(|unit| unit.verdict.is_none())
            .filter_map(|unit| unit.progress.as_ref())
            .map(|p| p.rate(self.now_ms))
            .fold(0.0, |sum, rate| sum + rate)
    }

    pub fn elapsed_ms(&self) -> u64 {
        match (&self.summary, self.started_ms) {
            (Some(summary), _) if summary.elapsed_ms > 0 => summary.elapsed_ms,
            (_, Some(start)) => self.now_ms.saturating_sub(start),
            (_, None) => 0,
        }
    }

    pub fn batch(&self) -> Option<&BatchInfo> {
        self.batch.as_ref()
    }

    pub fn is_finished(&self) -> bool {
        self.summary.is_some()
    }

    /// Why the station is stopping (a signal, a journal that stopped answering), once it is.
    pub fn stopping(&self) -> Option<&str> {
        self.stopping.as_deref()
    }

    pub fn slot(&self, slot: SlotNumber) -> Option<&SlotRow> {
        self.slots.get(&slot)
    }

    pub fn slots(&self) -> impl Iterator<Item = (SlotNumber, &SlotRow)> {
        self.slots.iter().map(|(n, row)| (*n, row))
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn units(&self) -> impl Iterator<Item = &Unit> {
        self.slots.values().filter_map(|row| match &row.status {
            SlotStatus::Occupied(unit) => Some(unit),
            _ => None,
        })
    }
}

impl Unit {
    fn new(mode: Mode, serial: Option<String>, at: u64) -> Self {
        Self {
            serial,
            mode,
            phase: None,
            phase_since_ms: at,
            progress: None,
            verdict: None,
            detected_ms: at,
            verdict_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_uses_recent_window_and_falls_when_stalled() {
        let mut p = Progress::default();
        for i in 0..=10u64 {
            p.record(i * 100, i * 1_000_000, 100_000_000);
        }
        assert!(
            (p.rate(1000) - 10_000_000.0).abs() < 1.0,
            "{}",
            p.rate(1000)
        );
        assert_eq!(p.eta_secs(1000), Some(9));
        // No bytes for 9 s: the rate reflects the stall.
        assert!(p.rate(10_000) < 1_100_000.0);
        // Window slides: old samples go once newer ones exist.
        for i in 11..=60u64 {
            p.record(i * 100, i * 1_000_000, 100_000_000);
        }
        assert!(p.samples.len() <= 32, "{}", p.samples.len());
    }

    #[test]
    fn new_transfer_restarts_rate() {
        let mut p = Progress::default();
        p.record(0, 0, 10);
        p.record(1000, 10, 10);
        p.record(1100, 0, 20);
        assert_eq!(p.rate(1100), 0.0);
        assert_eq!(p.fraction(), Some(0.0));
    }
}
