//! The line supervisor's read-only view of a running station (`flashgate run --status-listen
//! ADDR`): an HTML page of the slots and Prometheus metrics at `/metrics`, served over a small
//! HTTP/1.1 server ([`http`]). The board is fed the same events as the dashboard and reads no
//! device and no journal itself.

pub mod http;
mod metrics;
mod page;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::dashboard::DashboardState;
use crate::events::{now_unix_ms, Event, EventKind, EventSink};
use crate::logging::LogHealth;
use crate::verdict::Verdict;

pub use http::{StatusServer, StatusServerError};

/// What the status endpoint shows: the dashboard's model plus the figures a scrape needs that a
/// screen does not (failures by code, journal commits).
#[derive(Default)]
pub struct StatusBoard {
    inner: Mutex<Board>,
    logs: Option<Arc<LogHealth>>,
}

#[derive(Default, Clone)]
struct Board {
    state: DashboardState,
    failures_by_code: BTreeMap<&'static str, u64>,
    /// Verdict events are emitted only after their row is committed and synced: each one is a
    /// journal commit.
    journal_commits: u64,
    last_commit_ms: Option<u64>,
}

/// One consistent copy of the board, taken under its lock, rendered without it.
pub struct Snapshot {
    board: Board,
    now_ms: u64,
    log_errors: Option<(u64, u64)>,
}

impl StatusBoard {
    pub fn new(logs: Option<Arc<LogHealth>>) -> Self {
        Self {
            inner: Mutex::default(),
            logs,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let now_ms = now_unix_ms();
        let mut board = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        board.state.tick(now_ms);
        Snapshot {
            board,
            now_ms,
            log_errors: self
                .logs
                .as_ref()
                .map(|h| (h.daily_write_errors(), h.unit_write_errors())),
        }
    }
}

impl EventSink for StatusBoard {
    fn emit(&self, event: Event) {
        let mut board = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match &event.kind {
            EventKind::BatchStarted(_) => {
                board.failures_by_code.clear();
            }
            EventKind::Verdict { verdict, .. } => {
                board.journal_commits += 1;
                board.last_commit_ms = Some(event.ts_ms);
                if let Verdict::Fail(failure) = verdict {
                    *board
                        .failures_by_code
                        .entry(failure.code().as_str())
                        .or_default() += 1;
                }
            }
            _ => {}
        }
        board.state.apply(&event);
    }
}

impl Snapshot {
    /// The Prometheus text exposition (format 0.0.4).
    pub fn metrics(&self) -> String {
        metrics::render(self)
    }

    /// The slots page.
    pub fn page(&self) -> String {
        page::render(self)
    }
}

#[cfg(test)]
mod tests;
