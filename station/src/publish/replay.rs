//! What a client attaching late is sent before the live stream: the events that rebuild the
//! station's current screen, kept compact. The batch's start, every verdict (the counters and
//! yield are sums of them), the last progress sample of every finished transfer (the run's
//! average rate is the sum of the bytes moved), each slot's events since its unit was detected,
//! the latest progress of each working slot, the last warnings, the stop and the end. Device
//! lines are not kept (they are in the unit logs).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::events::{Event, EventKind, SlotNumber};

/// Warnings a late client still sees above its rows.
const KEPT_WARNINGS: usize = 16;
/// Progress samples kept per slot: more than the dashboard's rate window holds (64 samples, or
/// 3 s at about 10 per second), so a late client shows the same MB/s and ETA at once.
const KEPT_PROGRESS: usize = 70;
/// Verdicts kept for the counters: far more than a shift's units on one station; beyond it the
/// oldest go and a late client's counters start from there (the journal keeps them all).
const KEPT_VERDICTS: usize = 100_000;
/// Finished transfers kept for the bytes moved: a few per unit, for as many units as verdicts.
const KEPT_TRANSFERS: usize = 4 * KEPT_VERDICTS;

/// One serialized event line and what compaction needs to know of it.
struct Kept {
    slot: Option<SlotNumber>,
    class: Class,
    line: Arc<str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Verdict,
    Warning,
    /// Belongs to the unit now on its slot (dropped when the next unit arrives).
    UnitState,
    /// Batch-wide (start, stop, end).
    Batch,
    /// The last progress sample of a finished transfer: the bytes it moved.
    Transfer,
}

/// A slot's latest progress sample, as an event and as its line.
struct LastSample {
    ts_ms: u64,
    done: u64,
    total: u64,
    line: Arc<str>,
}

#[derive(Default)]
pub struct Replay {
    kept: Vec<Kept>,
    /// The latest progress samples of each slot's current transfer, sent after everything else.
    progress: BTreeMap<SlotNumber, VecDeque<Arc<str>>>,
    /// Each slot's latest progress sample: where its transfer stands.
    last_sample: BTreeMap<SlotNumber, LastSample>,
    verdicts: usize,
    transfers: usize,
    warnings: usize,
    /// The fleet sync's latest state (only the latest matters).
    fleet: Option<Arc<str>>,
    /// The fleet's hold on the station (only the latest matters).
    holding: Option<Arc<str>>,
}

impl Replay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `event`, serialized as `line`.
    pub fn record(&mut self, event: &Event, line: &Arc<str>) {
        let slot = event.slot();
        let class = match &event.kind {
            EventKind::DeviceLog { .. } => return,
            EventKind::FleetSync(_) => {
                self.fleet = Some(line.clone());
                return;
            }
            EventKind::Holding { .. } => {
                self.holding = Some(line.clone());
                return;
            }
            EventKind::BytesProgress { slot, done, total } => {
                // `done` going back is the next copy or image: the previous transfer ended.
                if self
                    .last_sample
                    .get(slot)
                    .is_some_and(|last| *done < last.done)
                {
                    self.end_transfer(*slot);
                }
                self.last_sample.insert(
                    *slot,
                    LastSample {
                        ts_ms: event.ts_ms,
                        done: *done,
                        total: *total,
                        line: line.clone(),
                    },
                );
                let samples = self.progress.entry(*slot).or_default();
                samples.push_back(line.clone());
                if samples.len() > KEPT_PROGRESS {
                    samples.pop_front();
                }
                return;
            }
            EventKind::BatchStarted(_) => {
                *self = Self::default();
                Class::Batch
            }
            EventKind::Stopping { .. } | EventKind::BatchFinished(_) => Class::Batch,
            EventKind::Warning { .. } => Class::Warning,
            EventKind::Verdict { .. } => Class::Verdict,
            EventKind::UnitDetected { slot, .. } => {
                // The previous unit's rows are gone from the screen; its verdict stays counted.
                self.kept
                    .retain(|k| !(k.slot == Some(*slot) && k.class == Class::UnitState));
                Class::UnitState
            }
            EventKind::UnitIdentified { .. }
            | EventKind::ModeChanged { .. }
            | EventKind::PhaseChanged { .. }
            | EventKind::UnitRemoved { .. } => Class::UnitState,
        };
        // A new phase, a verdict or a removal ends the slot's transfer.
        if let Some(slot) = slot {
            if class != Class::Warning {
                self.end_transfer(slot);
            }
        }
        self.kept.push(Kept {
            slot,
            class,
            line: line.clone(),
        });
        match class {
            Class::Warning => {
                self.warnings += 1;
                if self.warnings > KEPT_WARNINGS {
                    self.drop_oldest(Class::Warning);
                    self.warnings -= 1;
                }
            }
            Class::Verdict => {
                self.verdicts += 1;
                if self.verdicts > KEPT_VERDICTS {
                    self.drop_oldest(Class::Verdict);
                    self.verdicts -= 1;
                }
            }
            Class::UnitState | Class::Batch | Class::Transfer => {}
        }
    }

    /// Keeps the last sample of `slot`'s transfer, if it had one, and forgets its progress.
    /// The sample is kept behind a sample of zero bytes: a reader counts the bytes of a new
    /// transfer from zero, and once the phase changes that separated two finished transfers are
    /// gone (with their unit), nothing else would tell it the second one started afresh.
    fn end_transfer(&mut self, slot: SlotNumber) {
        self.progress.remove(&slot);
        let Some(last) = self.last_sample.remove(&slot) else {
            return;
        };
        let start = Event::at(
            last.ts_ms,
            EventKind::BytesProgress {
                slot,
                done: 0,
                total: last.total,
            },
        );
        let Ok(start) = serde_json::to_string(&start) else {
            return;
        };
        for line in [Arc::from(start), last.line] {
            self.kept.push(Kept {
                slot: Some(slot),
                class: Class::Transfer,
                line,
            });
        }
        self.transfers += 1;
        if self.transfers > KEPT_TRANSFERS {
            // A transfer is two lines: its start and its last sample.
            self.drop_oldest(Class::Transfer);
            self.drop_oldest(Class::Transfer);
            self.transfers -= 1;
        }
    }

    fn drop_oldest(&mut self, class: Class) {
        if let Some(at) = self.kept.iter().position(|k| k.class == class) {
            self.kept.remove(at);
        }
    }

    /// The lines to send, in order.
    pub fn lines(&self) -> Vec<Arc<str>> {
        self.kept
            .iter()
            .map(|k| k.line.clone())
            .chain(self.fleet.iter().cloned())
            .chain(self.holding.iter().cloned())
            .chain(self.progress.values().flatten().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::{script, DashboardState, RenderStyle};

    fn replay_of(events: &[Event]) -> (Replay, usize) {
        let mut replay = Replay::new();
        for event in events {
            let line: Arc<str> = serde_json::to_string(event).unwrap().into();
            replay.record(event, &line);
        }
        let kept = replay.lines().len();
        (replay, kept)
    }

    fn screen(events: impl IntoIterator<Item = Event>, now_ms: u64) -> Vec<String> {
        let mut state = DashboardState::new();
        for event in events {
            state.apply(&event);
        }
        state.tick(now_ms);
        state.render(120, 40, RenderStyle::PLAIN)
    }

    #[test]
    fn a_late_client_draws_the_screen_of_a_client_that_saw_everything() {
        let events = script::scripted_batch(16, 1_700_000_000_000);
        // At every tenth of the batch, and at its end.
        let cuts: Vec<usize> = (1..=10).map(|i| events.len() * i / 10).collect();
        for cut in cuts {
            let seen = &events[..cut];
            let now = seen.last().unwrap().ts_ms;
            let (replay, kept) = replay_of(seen);
            let replayed: Vec<Event> = replay
                .lines()
                .iter()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            assert_eq!(
                screen(replayed, now),
                screen(seen.iter().cloned(), now),
                "after {cut} events"
            );
            assert!(kept <= cut);
        }
        let (_, kept) = replay_of(&events);
        assert!(
            kept * 3 < events.len(),
            "{kept} of {} events kept",
            events.len()
        );
    }

    #[test]
    fn warnings_are_bounded() {
        let mut events = vec![];
        for i in 0..100 {
            events.push(Event::at(
                i,
                EventKind::Warning {
                    slot: None,
                    message: format!("w{i}"),
                },
            ));
        }
        let (replay, kept) = replay_of(&events);
        assert_eq!(kept, KEPT_WARNINGS);
        assert!(replay.lines().last().unwrap().contains("w99"));
    }
}
