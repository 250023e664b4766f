//! Bridge from protocol progress (`protocols::progress::ProgressSink`) to station events for one
//! slot. Protocol code reports every USB packet; the dashboard needs a few updates a second, so
//! byte progress is throttled here, at the source, and the channel to the consumers stays short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use protocols::progress::{ProgressEvent, ProgressSink};

use super::{Event, EventKind, EventSink, Phase, SlotNumber};

/// For operations whose progress the operator need not see (verification's many small reads),
/// but which must still stop when the station stops.
pub struct StopOnly(pub Arc<AtomicBool>);

impl ProgressSink for StopOnly {
    fn event(&self, _event: ProgressEvent<'_>) {}

    fn stop_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Default spacing of `BytesProgress` events per slot.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Turns one unit's protocol progress into [`EventKind::BytesProgress`] and
/// [`EventKind::DeviceLog`] events for its slot.
pub struct SlotProgress<S> {
    slot: SlotNumber,
    sink: S,
    steps_as_phases: bool,
    interval: Duration,
    step: Mutex<StepCounter>,
    /// Set when the station stops: the protocol operation ends at its next safe point.
    stop: Option<Arc<AtomicBool>>,
}

struct StepCounter {
    done: u64,
    total: u64,
    last_sent: Option<Instant>,
}

impl<S: EventSink> SlotProgress<S> {
    pub fn new(slot: SlotNumber, sink: S) -> Self {
        Self {
            slot,
            sink,
            steps_as_phases: false,
            interval: PROGRESS_INTERVAL,
            step: Mutex::new(StepCounter {
                done: 0,
                total: 0,
                last_sent: None,
            }),
            stop: None,
        }
    }

    /// Protocol operations reporting here stop at their next safe point once `stop` is set.
    pub fn stop_on(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Also announce each protocol step (`flash system_a`, `program rawprogram0.xml`) as the
    /// slot's phase, for flows where the orchestrator does not name phases itself (EDL packages).
    pub fn steps_as_phases(mut self, yes: bool) -> Self {
        self.steps_as_phases = yes;
        self
    }

    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    fn bytes(&self, done: u64, total: u64) {
        self.sink.emit(Event::now(EventKind::BytesProgress {
            slot: self.slot,
            done,
            total,
        }));
    }
}

impl<S: EventSink> ProgressSink for SlotProgress<S> {
    fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn event(&self, event: ProgressEvent<'_>) {
        let mut step = self.step.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            ProgressEvent::StepStarted {
                step: name,
                total_bytes,
            } => {
                *step = StepCounter {
                    done: 0,
                    total: total_bytes,
                    last_sent: Some(Instant::now()),
                };
                drop(step);
                if self.steps_as_phases {
                    let phase = Phase::Other {
                        name: name.to_owned(),
                    };
                    self.sink.emit(Event::now(EventKind::PhaseChanged {
                        slot: self.slot,
                        phase,
                    }));
                }
                if total_bytes > 0 {
                    self.bytes(0, total_bytes);
                }
            }
            ProgressEvent::Bytes { bytes } => {
                step.done = step.done.saturating_add(bytes);
                let now = Instant::now();
                let due = match step.last_sent {
                    Some(t) => now.duration_since(t) >= self.interval,
                    None => true,
                };
                if due {
                    step.last_sent = Some(now);
                    let (done, total) = (step.done, step.total);
                    drop(step);
                    self.bytes(done, total);
                }
            }
            ProgressEvent::StepFinished { .. } => {
                let (done, total) = (step.done, step.total);
                drop(step);
                if total > 0 || done > 0 {
                    self.bytes(done, total.max(done));
                }
            }
            ProgressEvent::DeviceMessage { text } => {
                drop(step);
                self.sink.emit(Event::now(EventKind::DeviceLog {
                    slot: self.slot,
                    line: text.to_owned(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RecordingSink;
    use std::sync::Arc;

    #[test]
    fn throttles_bytes_and_always_reports_the_end() {
        let rec = Arc::new(RecordingSink::new());
        let progress = SlotProgress::new(4, rec.clone()).interval(Duration::from_secs(3600));
        progress.event(ProgressEvent::StepStarted {
            step: "flash boot_a",
            total_bytes: 1000,
        });
        for _ in 0..100 {
            progress.event(ProgressEvent::Bytes { bytes: 10 });
        }
        progress.event(ProgressEvent::DeviceMessage { text: "erasing" });
        progress.event(ProgressEvent::StepFinished {
            step: "flash boot_a",
        });
        let kinds: Vec<EventKind> = rec.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::BytesProgress {
                    slot: 4,
                    done: 0,
                    total: 1000
                },
                EventKind::DeviceLog {
                    slot: 4,
                    line: "erasing".into()
                },
                EventKind::BytesProgress {
                    slot: 4,
                    done: 1000,
                    total: 1000
                },
            ]
        );
    }

    #[test]
    fn steps_can_become_phases() {
        let rec = Arc::new(RecordingSink::new());
        let progress = SlotProgress::new(1, rec.clone())
            .steps_as_phases(true)
            .interval(Duration::ZERO);
        progress.event(ProgressEvent::StepStarted {
            step: "program rawprogram0.xml",
            total_bytes: 0,
        });
        progress.event(ProgressEvent::Bytes { bytes: 7 });
        let kinds: Vec<EventKind> = rec.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::PhaseChanged {
                    slot: 1,
                    phase: Phase::Other {
                        name: "program rawprogram0.xml".into()
                    }
                },
                EventKind::BytesProgress {
                    slot: 1,
                    done: 7,
                    total: 0
                },
            ]
        );
    }
}
