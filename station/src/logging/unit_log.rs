//! Per-unit log files: every tracing event inside a unit's span (device INFO/log lines,
//! protocol steps) also goes to `<dir>/<YYYY-MM-DD>/<serial>-<attempt>.log` (the UTC day the
//! unit was identified, like the daily JSON files, so retention removes whole days), whose path
//! the journal row references. Writes are synchronous, one `write` per line, so nothing is lost or interleaved
//! however many threads log for the unit.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Map;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Span, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, Registry};

use super::fields::{plain_value, JsonVisitor};
use super::json_layer::{capture_span_fields, record_span_fields};
use super::LoggingError;
use crate::timestamp::Timestamp;

/// Where unit log files go (`<log dir>/units`).
#[derive(Debug, Clone)]
pub struct UnitLogs {
    dir: PathBuf,
    health: Arc<LogHealth>,
}

/// Failed log writes (a full or read-only log disk), counted for the whole process so the
/// station can say so on the dashboard and in the summary instead of losing logs quietly.
#[derive(Debug, Default)]
pub struct LogHealth {
    daily_errors: AtomicU64,
    unit_errors: AtomicU64,
}

impl LogHealth {
    /// Lines of the daily JSON log that could not be written.
    pub fn daily_write_errors(&self) -> u64 {
        self.daily_errors.load(Ordering::Relaxed)
    }

    /// Lines of unit logs that could not be written.
    pub fn unit_write_errors(&self) -> u64 {
        self.unit_errors.load(Ordering::Relaxed)
    }

    pub(super) fn daily_failed(&self) {
        self.daily_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// An open per-unit log. Clones share the file.
#[derive(Debug, Clone)]
pub struct UnitLog {
    inner: Arc<UnitLogFile>,
}

#[derive(Debug)]
struct UnitLogFile {
    path: PathBuf,
    file: Mutex<File>,
    lines: AtomicU64,
    write_errors: AtomicU64,
    health: Arc<LogHealth>,
}

impl UnitLogs {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_health(dir, Arc::default())
    }

    pub fn with_health(dir: impl Into<PathBuf>, health: Arc<LogHealth>) -> Self {
        Self {
            dir: dir.into(),
            health,
        }
    }

    pub fn health(&self) -> &Arc<LogHealth> {
        &self.health
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<today, UTC>/<serial>-<attempt>.log` (see [`UnitLogs::path_for_day`]).
    pub fn path_for(&self, serial: &str, attempt: u32) -> PathBuf {
        self.path_for_day(
            &super::utc_day(std::time::SystemTime::now()),
            serial,
            attempt,
        )
    }

    /// `<dir>/<day>/<serial>-<attempt>.log`; the serial comes from the device, so anything but
    /// `[A-Za-z0-9._-]` becomes `_` (no path separators, no surprises in a shell).
    pub fn path_for_day(&self, day: &str, serial: &str, attempt: u32) -> PathBuf {
        let mut safe: String = serial
            .chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if safe.is_empty() || safe.chars().all(|c| c == '.') {
            safe = "unknown".into();
        }
        self.dir.join(day).join(format!("{safe}-{attempt}.log"))
    }

    /// Opens (appending) the unit's log file and routes every event inside `span` — and its
    /// child spans — to it. Call as soon as the serial is known.
    pub fn attach(&self, span: &Span, serial: &str, attempt: u32) -> Result<UnitLog, LoggingError> {
        let log = self.open(serial, attempt)?;
        let attached = span.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let span = registry.span(id)?;
            span.extensions_mut().replace(log.clone());
            Some(())
        });
        match attached.flatten() {
            Some(()) => Ok(log),
            None => Err(LoggingError::SpanNotLogged {
                path: log.path().to_owned(),
            }),
        }
    }

    /// Opens the file without routing a span (for lines written directly with [`UnitLog::line`]).
    pub fn open(&self, serial: &str, attempt: u32) -> Result<UnitLog, LoggingError> {
        let path = self.path_for(serial, attempt);
        let folder = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(folder).map_err(|source| LoggingError::CreateDir {
            path: folder.to_path_buf(),
            source,
        })?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LoggingError::OpenUnitLog {
                path: path.clone(),
                source,
            })?;
        Ok(UnitLog {
            inner: Arc::new(UnitLogFile {
                path,
                file: Mutex::new(file),
                lines: AtomicU64::new(0),
                write_errors: AtomicU64::new(0),
                health: self.health.clone(),
            }),
        })
    }
}

impl UnitLog {
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Lines written so far (through tracing or [`UnitLog::line`]).
    pub fn lines_written(&self) -> u64 {
        self.inner.lines.load(Ordering::Relaxed)
    }

    /// Failed writes (disk full …); a non-zero count belongs in the journal row.
    pub fn write_errors(&self) -> u64 {
        self.inner.write_errors.load(Ordering::Relaxed)
    }

    /// Appends one timestamped line; control characters are escaped so a line stays a line.
    pub fn line(&self, text: &str) {
        self.write(&format!("{} {}\n", Timestamp::now(), escape_controls(text)));
    }

    fn write(&self, line: &str) {
        let mut file = self
            .inner
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match file.write_all(line.as_bytes()) {
            Ok(()) => {
                self.inner.lines.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.inner.write_errors.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .health
                    .unit_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Routes events to the [`UnitLog`] attached to the nearest enclosing span.
pub(crate) struct UnitLogLayer;

impl<S> Layer<S> for UnitLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        capture_span_fields(attrs, id, &ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        record_span_fields(id, values, &ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(log) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<UnitLog>().cloned())
        else {
            return;
        };
        let meta = event.metadata();
        let mut fields = Map::new();
        event.record(&mut JsonVisitor(&mut fields));
        let message = fields
            .remove("message")
            .map(|v| plain_value(&v))
            .unwrap_or_default();
        let mut line = format!(
            "{} {:>5} {}: {}",
            Timestamp::now(),
            meta.level().as_str(),
            meta.target(),
            escape_controls(&message)
        );
        for (key, value) in &fields {
            line.push_str(&format!(" {key}={}", escape_controls(&plain_value(value))));
        }
        line.push('\n');
        log.write(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        let logs = UnitLogs::new("/var/log/flashgate/units");
        let day = "2026-12-02";
        assert_eq!(
            logs.path_for_day(day, "7PL0001", 2),
            Path::new("/var/log/flashgate/units/2026-12-02/7PL0001-2.log")
        );
        assert_eq!(
            logs.path_for_day(day, "../../etc/x", 1),
            Path::new("/var/log/flashgate/units/2026-12-02/.._.._etc_x-1.log")
        );
        assert_eq!(
            logs.path_for_day(day, "..", 1),
            Path::new("/var/log/flashgate/units/2026-12-02/unknown-1.log")
        );
        assert_eq!(
            logs.path_for_day(day, "", 1),
            Path::new("/var/log/flashgate/units/2026-12-02/unknown-1.log")
        );
        // Today's folder, by UTC date.
        let today = logs.path_for("7PL0001", 2);
        let folder = today
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(folder, super::super::utc_day(std::time::SystemTime::now()));
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape_controls("a\nb\x1b[0m"), "a\\nb\\u{1b}[0m");
        assert_eq!(escape_controls("plain"), "plain");
    }
}
