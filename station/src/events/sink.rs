//! How events leave the orchestrator. A sink never blocks the batch on a slow or vanished
//! consumer for long and never fails it: the journal, not the screen, is the record.

use std::sync::{mpsc, Arc, Mutex, PoisonError};

use super::Event;

/// Receives every event the orchestrator emits. Implemented for channel senders so a consumer
/// can run on its own thread or task.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// A consumer that hung up (dashboard closed) must not stop flashing: the send error is dropped.
impl EventSink for mpsc::Sender<Event> {
    fn emit(&self, event: Event) {
        let _ = self.send(event);
    }
}

/// Bounded: back-pressure on the emitter when the consumer falls behind, never a lost event.
impl EventSink for mpsc::SyncSender<Event> {
    fn emit(&self, event: Event) {
        let _ = self.send(event);
    }
}

/// For a consumer running as a tokio task. Unbounded because `emit` is called from blocking
/// protocol threads and from async code alike; progress is throttled upstream by
/// [`super::SlotProgress`], so the queue stays short.
impl EventSink for tokio::sync::mpsc::UnboundedSender<Event> {
    fn emit(&self, event: Event) {
        let _ = self.send(event);
    }
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn emit(&self, event: Event) {
        (**self).emit(event)
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn emit(&self, event: Event) {
        (**self).emit(event)
    }
}

/// Sends each event to several consumers (dashboard, JSON lines, journal watcher) in order.
#[derive(Default)]
pub struct Fanout {
    sinks: Vec<Box<dyn EventSink>>,
}

impl Fanout {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, sink: impl EventSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    pub fn push(&mut self, sink: impl EventSink + 'static) {
        self.sinks.push(Box::new(sink));
    }
}

impl EventSink for Fanout {
    fn emit(&self, event: Event) {
        if let Some((last, rest)) = self.sinks.split_last() {
            for sink in rest {
                sink.emit(event.clone());
            }
            last.emit(event);
        }
    }
}

/// Keeps every event in memory: for tests and for replaying a batch into another consumer.
#[derive(Default)]
pub struct RecordingSink {
    events: Mutex<Vec<Event>>,
}

impl RecordingSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    fn detected(slot: u16) -> Event {
        Event::at(
            1,
            EventKind::UnitDetected {
                slot,
                port_path: format!("1-{slot}"),
                mode: crate::mode::Mode::Edl,
                serial: None,
            },
        )
    }

    #[test]
    fn fanout_delivers_to_every_sink_in_order() {
        let a = Arc::new(RecordingSink::new());
        let (tx, rx) = mpsc::channel();
        let fanout = Fanout::new().with(a.clone()).with(tx);
        fanout.emit(detected(1));
        fanout.emit(detected(2));
        assert_eq!(a.events(), vec![detected(1), detected(2)]);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![detected(1), detected(2)]
        );
    }

    #[test]
    fn hung_up_consumer_does_not_panic() {
        let (tx, rx) = mpsc::channel::<Event>();
        drop(rx);
        tx.emit(detected(1));
        let (ttx, trx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        drop(trx);
        ttx.emit(detected(1));
    }
}
