//! The outbox's sender: a thread of its own that ships the journal's finished rows to the
//! fleet database, oldest first, and marks each batch shipped in the journal only once the
//! database has committed it. While the database cannot be reached it tries again with a
//! growing pause; the backlog (rows not shipped) is published on the station's event stream
//! (dashboard header, status page, `/metrics`) whenever it changes. A station that starts
//! with a backlog drains it first.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::FleetError;
use crate::config::FleetConfig;
use crate::events::{Event, EventKind, EventSink, FleetSyncState};
use crate::journal::Journal;

/// Rows per transaction: large enough to ship a backlog quickly, small enough that one
/// transaction stays short.
pub const BATCH_ROWS: usize = 500;
/// The first pause after a failure, doubled up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// With nothing to ship and nobody waking it, the sender looks at the journal this often.
const POLL: Duration = Duration::from_secs(1);

enum Wake {
    Rows,
    Stop,
}

/// Tells the sender a verdict was committed (it ships at once rather than at its next look).
#[derive(Clone)]
pub struct SyncWaker(mpsc::Sender<Wake>);

impl SyncWaker {
    pub fn rows_committed(&self) {
        let _ = self.0.send(Wake::Rows);
    }
}

/// What the sender last saw.
#[derive(Debug, Default)]
pub struct SyncStatus {
    state: Mutex<FleetSyncState>,
}

impl SyncStatus {
    pub fn snapshot(&self) -> FleetSyncState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The running sender.
pub struct SyncHandle {
    waker: SyncWaker,
    thread: Option<JoinHandle<()>>,
    status: Arc<SyncStatus>,
}

impl SyncHandle {
    /// Starts shipping the journal at `journal_path` (its own connection) to `fleet`.
    pub fn start(
        fleet: FleetConfig,
        journal_path: PathBuf,
        station_id: String,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, FleetError> {
        let journal = Journal::open(&journal_path)?;
        let uid = journal.uid()?;
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(SyncStatus::default());
        let mut sender = Sender {
            fleet,
            journal,
            uid,
            who: format!("flashgate {station_id} sync"),
            client: None,
            status: status.clone(),
            events,
            published: None,
        };
        let thread = std::thread::Builder::new()
            .name("fleet-sync".into())
            .spawn(move || sender.run(&rx))
            .map_err(|e| FleetError::Unreachable(format!("cannot start the sync thread: {e}")))?;
        Ok(SyncHandle {
            waker: SyncWaker(tx),
            thread: Some(thread),
            status,
        })
    }

    pub fn waker(&self) -> SyncWaker {
        self.waker.clone()
    }

    pub fn status(&self) -> Arc<SyncStatus> {
        self.status.clone()
    }

    /// Ships what it can once more, then stops (rows it could not ship stay in the backlog
    /// for the next start).
    pub fn stop(mut self) -> FleetSyncState {
        let _ = self.waker.0.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.status.snapshot()
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        let _ = self.waker.0.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Sender {
    fleet: FleetConfig,
    journal: Journal,
    uid: String,
    who: String,
    client: Option<postgres::Client>,
    status: Arc<SyncStatus>,
    events: Arc<dyn EventSink>,
    published: Option<FleetSyncState>,
}

impl Sender {
    fn run(&mut self, wake: &mpsc::Receiver<Wake>) {
        let mut backoff = MIN_BACKOFF;
        let mut stopping = false;
        loop {
            let shipped = self.ship_all();
            let failed = shipped.is_err();
            if let Err(e) = &shipped {
                tracing::warn!(error = %e, "fleet sync: rows wait in the journal");
                self.client = None;
            }
            let last_error = shipped.err().map(|e| e.to_string());
            self.publish(last_error.clone());
            if stopping {
                return;
            }
            let pause = if failed {
                let pause = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                pause
            } else {
                backoff = MIN_BACKOFF;
                POLL
            };
            match wake.recv_timeout(pause) {
                // A verdict while the database is unreachable does not cut the pause short, but
                // the backlog it adds is shown at once.
                Ok(Wake::Rows) if failed => {
                    self.publish(last_error.clone());
                    let until = std::time::Instant::now() + pause;
                    loop {
                        let left = until.saturating_duration_since(std::time::Instant::now());
                        match wake.recv_timeout(left) {
                            Ok(Wake::Rows) => self.publish(last_error.clone()),
                            Err(RecvTimeoutError::Timeout) => break,
                            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => {
                                stopping = true;
                                break;
                            }
                        }
                    }
                }
                Ok(Wake::Rows) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => stopping = true,
            }
            // Several verdicts at once wake it once.
            while let Ok(extra) = wake.try_recv() {
                if matches!(extra, Wake::Stop) {
                    stopping = true;
                }
            }
        }
    }

    /// Ships every finished row not yet shipped, in batches, oldest first.
    fn ship_all(&mut self) -> Result<u64, FleetError> {
        let mut total = 0;
        // Connected even with nothing to ship, so "reachable" is what the database said.
        if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
            self.client = Some(super::connect(&self.fleet, &self.who)?);
        }
        loop {
            let rows = self.journal.unshipped(BATCH_ROWS)?;
            if rows.is_empty() {
                return Ok(total);
            }
            let Some(client) = self.client.as_mut() else {
                return Ok(total);
            };
            super::ship::ship(client, &self.uid, &rows)?;
            let ids: Vec<i64> = rows.iter().map(|r| r.row).collect();
            self.journal.mark_shipped(&ids, SystemTime::now())?;
            total += ids.len() as u64;
        }
    }

    fn publish(&mut self, error: Option<String>) {
        let backlog = self.journal.backlog().unwrap_or_default();
        let state = FleetSyncState {
            backlog: backlog.rows,
            shipped: backlog.shipped,
            oldest_unshipped_ms: backlog.oldest_finished_ms,
            reachable: error.is_none(),
            error,
        };
        *self
            .status
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = state.clone();
        if self.published.as_ref() != Some(&state) {
            self.events
                .emit(Event::now(EventKind::FleetSync(state.clone())));
            self.published = Some(state);
        }
    }
}
