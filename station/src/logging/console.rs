//! The console writer: while the dashboard draws, a log line written straight to stderr would
//! land in the middle of the rows; so each formatted line goes through
//! `MultiProgress::println` when a dashboard is attached, and to stderr otherwise.

use std::io::{self, Write};
use std::sync::{Arc, PoisonError, RwLock};

use indicatif::MultiProgress;
use tracing_subscriber::fmt::MakeWriter;

/// Cheap to clone; every clone sees the same attached dashboard.
#[derive(Clone, Default)]
pub struct ConsoleOutput {
    dashboard: Arc<RwLock<Option<MultiProgress>>>,
}

impl ConsoleOutput {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on console log lines are printed above the dashboard's rows.
    pub fn attach(&self, multi: MultiProgress) {
        *self
            .dashboard
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(multi);
    }

    /// Back to plain stderr (the dashboard finished).
    pub fn detach(&self) {
        *self
            .dashboard
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// One formatted event; emitted as a whole when dropped.
pub struct ConsoleLine {
    buf: Vec<u8>,
    dashboard: Option<MultiProgress>,
}

impl Write for ConsoleLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ConsoleLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match &self.dashboard {
            Some(multi) if !multi.is_hidden() => {
                let text = String::from_utf8_lossy(&self.buf);
                let _ = multi.println(text.trim_end_matches('\n'));
            }
            _ => {
                let _ = io::stderr().lock().write_all(&self.buf);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for ConsoleOutput {
    type Writer = ConsoleLine;

    fn make_writer(&'a self) -> ConsoleLine {
        let dashboard = self
            .dashboard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        ConsoleLine {
            buf: Vec::new(),
            dashboard,
        }
    }
}
