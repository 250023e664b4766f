//! Progress and device messages flow out of protocol code through a sink; the station decides
//! whether they become dashboard rows, log lines or journal fields.

/// Something a protocol operation wants its caller to know while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent<'a> {
    /// A step begins (e.g. `flash system_a`, `upload programmer`); `total_bytes` is 0 when
    /// the step moves no bulk data.
    StepStarted { step: &'a str, total_bytes: u64 },
    /// `bytes` more of the current step's data went to (or came from) the device.
    Bytes { bytes: u64 },
    /// The current step finished.
    StepFinished { step: &'a str },
    /// A line the device sent (fastboot INFO/TEXT, Firehose `<log>`).
    DeviceMessage { text: &'a str },
}

/// The caller's side of a long protocol operation: it hears what happens, and it may ask the
/// operation to stop (as curl's progress callback can): data phases check between chunks and
/// end with a `Stopped` error, leaving the device mid-transfer (a safe point for the host, never
/// for the flashed partition, which must be written again).
pub trait ProgressSink: Send + Sync {
    fn event(&self, event: ProgressEvent<'_>);

    /// Whether the operation should stop at its next safe point.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// For callers that do not watch progress.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _event: ProgressEvent<'_>) {}
}

impl<F: Fn(ProgressEvent<'_>) + Send + Sync> ProgressSink for F {
    fn event(&self, event: ProgressEvent<'_>) {
        self(event)
    }
}
