//! The dashboard as a pure state machine: events in, a model of the station out. No terminal,
//! no clock of its own (time comes from event stamps and [`DashboardState::tick`]), so a
//! scripted event stream gives the same screen every time.

use std::collections::{BTreeMap, VecDeque};

use crate::events::{BatchInfo, BatchSummary, Event, EventKind, Phase, SlotNumber};
use crate::mode::Mode;
use crate::verdict::{FailureCode, Verdict};

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
    /// Bytes every unit moved in this run (all transfers, finished or not): the average rate.
    pub(super) bytes_moved: u64,
    /// Detection-to-verdict times of the units that passed or failed, for the cycle time.
    pub(super) cycle_ms_total: u64,
    /// Failures in a row with one code (a PASS ends the run): the stop-line banner.
    pub(super) streak: FailureStreak,
    /// The newest warnings, newest last: shown on the screen, never printed above it.
    pub(super) warnings: VecDeque<Notice>,
    /// The fleet sync, at a station with a fleet database.
    pub(super) fleet: Option<crate::events::FleetSyncState>,
    /// Why the fleet holds the station (no unit starts), while it does.
    pub(super) holding: Option<String>,
}

/// How many warnings the screen keeps.
const MAX_WARNINGS: usize = 3;

/// A warning as the screen keeps it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub at_ms: u64,
    pub slot: Option<SlotNumber>,
    pub message: String,
}

/// Consecutive failures with the same code, in verdict order. A PASS ends the run; an ABORTED
/// attempt (the station's stop, not the unit) leaves it as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureStreak {
    pub code: Option<FailureCode>,
    pub count: u32,
    /// The slots of the failures in the run, oldest first.
    pub slots: Vec<SlotNumber>,
}

impl FailureStreak {
    pub fn record(&mut self, slot: SlotNumber, verdict: &Verdict) {
        match verdict {
            Verdict::Pass => *self = Self::default(),
            Verdict::Aborted(_) => {}
            Verdict::Fail(failure) => {
                let code = failure.code();
                if self.code != Some(code) {
                    *self = Self {
                        code: Some(code),
                        ..Self::default()
                    };
                }
                self.count += 1;
                self.slots.push(slot);
            }
        }
    }

    /// The code to stop the line for, once `after` failures in a row had it (`after` 0: never).
    pub fn stop_line(&self, after: u32) -> Option<FailureCode> {
        self.code.filter(|_| after > 0 && self.count >= after)
    }
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
    /// The name the unit was first known by on this slot; it stays for the whole attempt.
    pub serial: Option<String>,
    /// Another serial the same unit reported later (an EDL unit's chip serial first, then its
    /// fastboot serial after the reset): the same unit, linked in the journal.
    pub also_known_as: Option<String>,
    pub mode: Mode,
    pub phase: Option<Phase>,
    pub phase_since_ms: u64,
    pub progress: Option<Progress>,
    pub verdict: Option<Verdict>,
    pub detected_ms: u64,
    pub verdict_ms: Option<u64>,
    /// Transfers the current phase has started (an `_a` then a `_b` copy are two): from the
    /// second on, the phase is shown with its number, so a bar restarting at 0 % is a new step.
    pub transfers_in_phase: u32,
}

/// Bulk-data progress of the current phase.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    samples: VecDeque<(u64, u64)>,
}

impl Progress {
    /// Records a progress report; returns the bytes moved since the previous one and whether a
    /// new transfer started (the first report, or `done` going back: the next copy or image).
    /// A `total` learned or changed mid-way is the same transfer.
    fn record(&mut self, at_ms: u64, done: u64, total: u64) -> (u64, bool) {
        let restarted = self.samples.is_empty() || done < self.done;
        let moved = if restarted { done } else { done - self.done };
        if restarted || total != self.total {
            // The rate of another transfer says nothing about this one.
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
        (moved, restarted)
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
            EventKind::FleetSync(state) => self.fleet = Some(state.clone()),
            EventKind::Holding { why } => self.holding.clone_from(why),
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
                // The slot's warnings were about the unit that left.
                self.warnings.retain(|w| w.slot != Some(*slot));
            }
            EventKind::UnitIdentified { slot, serial } => {
                let unit = self.unit_mut(*slot, at);
                match &unit.serial {
                    None => unit.serial = Some(serial.clone()),
                    Some(first) if first != serial => unit.also_known_as = Some(serial.clone()),
                    Some(_) => {}
                }
            }
            EventKind::ModeChanged { slot, mode } => self.unit_mut(*slot, at).mode = *mode,
            EventKind::PhaseChanged { slot, phase } => {
                let unit = self.unit_mut(*slot, at);
                unit.phase = Some(phase.clone());
                unit.phase_since_ms = at;
                unit.progress = None;
                unit.transfers_in_phase = 0;
            }
            EventKind::BytesProgress { slot, done, total } => {
                let unit = self.unit_mut(*slot, at);
                let (moved, restarted) = unit
                    .progress
                    .get_or_insert_with(Progress::default)
                    .record(at, *done, *total);
                if restarted {
                    unit.transfers_in_phase += 1;
                }
                self.bytes_moved = self.bytes_moved.saturating_add(moved);
            }
            EventKind::DeviceLog { .. } => {}
            EventKind::Warning { slot, message } => {
                self.warnings.push_back(Notice {
                    at_ms: at,
                    slot: *slot,
                    message: message.clone(),
                });
                while self.warnings.len() > MAX_WARNINGS {
                    self.warnings.pop_front();
                }
            }
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
                self.streak.record(*slot, verdict);
                let unit = self.unit_mut(*slot, at);
                match (&unit.serial, serial) {
                    (None, _) => unit.serial.clone_from(serial),
                    (Some(first), Some(last)) if first != last => {
                        unit.also_known_as = Some(last.clone())
                    }
                    _ => {}
                }
                unit.verdict = Some(verdict.clone());
                unit.verdict_ms = Some(at);
                if !matches!(verdict, Verdict::Aborted(_)) {
                    let took = at.saturating_sub(unit.detected_ms);
                    self.cycle_ms_total = self.cycle_ms_total.saturating_add(took);
                }
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

    /// Bytes per second over the whole run: every byte any unit moved, over the elapsed time.
    pub fn average_rate(&self) -> f64 {
        match self.elapsed_ms() {
            0 => 0.0,
            ms => self.bytes_moved as f64 * 1000.0 / ms as f64,
        }
    }

    /// Units with a verdict (passed or failed) per hour of the run; `None` before the first.
    pub fn units_per_hour(&self) -> Option<f64> {
        let decided = self.passed + self.failed;
        let ms = self.elapsed_ms();
        (decided > 0 && ms > 0).then(|| f64::from(decided) * 3_600_000.0 / ms as f64)
    }

    /// Average detection-to-verdict time of the units that passed or failed, in seconds.
    pub fn cycle_secs(&self) -> Option<u64> {
        let decided = u64::from(self.passed + self.failed);
        (decided > 0).then(|| self.cycle_ms_total / decided / 1000)
    }

    /// The failure code the line should stop for (K failures in a row with it), if any.
    pub fn stop_line(&self) -> Option<(FailureCode, &FailureStreak)> {
        let after = self.batch.as_ref().map_or(0, |b| b.stop_line_after);
        self.streak
            .stop_line(after)
            .map(|code| (code, &self.streak))
    }

    /// The newest warnings, newest last.
    pub fn warnings(&self) -> impl DoubleEndedIterator<Item = &Notice> {
        self.warnings.iter()
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

    /// The batch's summary, once it finished.
    pub fn summary(&self) -> Option<&BatchSummary> {
        self.summary.as_ref()
    }

    /// Why the fleet holds the station, while it does.
    pub fn holding(&self) -> Option<&str> {
        self.holding.as_deref()
    }

    /// The fleet sync's latest state (None: no fleet database at this station).
    pub fn fleet(&self) -> Option<&crate::events::FleetSyncState> {
        self.fleet.as_ref()
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
            also_known_as: None,
            transfers_in_phase: 0,
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
