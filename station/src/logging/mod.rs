//! Station logging on `tracing`:
//! - a human console layer on stderr (above the dashboard rows when one is attached), its
//!   verbosity from `-v`/`-q` or `RUST_LOG`;
//! - a JSON file layer in the log directory, rotated daily, written by a background thread
//!   that never drops a line (the non-blocking writer is configured lossless: a full queue makes
//!   the logging thread wait instead of discarding);
//! - per-unit log files ([`UnitLogs::attach`]).
//!
//! Both file layers keep debug level whatever the console shows.
//! Every event inside a [`unit_span`] carries `slot`, `port_path`, `serial` and `work_order`.

mod console;
mod fields;
mod json_layer;
mod retention;
mod unit_log;

use std::path::{Path, PathBuf};

use tracing::{Dispatch, Span};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

pub use console::ConsoleOutput;
pub use json_layer::UNIT_KEYS;
pub use retention::{prune, utc_day, Pruned};
pub use unit_log::{LogHealth, UnitLog, UnitLogs};

use crate::config::LogRetention;
use crate::events::{Event, EventKind, EventSink};
use crate::verdict::Verdict;

/// The tracing target of device lines (fastboot INFO/TEXT, Firehose `<log>`).
pub const DEVICE_TARGET: &str = "device";

/// Lines the file writer may queue before loggers wait (tracing-appender's default).
pub const DEFAULT_FILE_QUEUE_LINES: usize = 128_000;

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot create log directory {}: {source}; check station.yaml `log_dir` and its permissions", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the daily log file in {}: {source}; check station.yaml `log_dir` and free space", dir.display())]
    OpenDailyLog {
        dir: PathBuf,
        source: tracing_appender::rolling::InitError,
    },
    #[error("cannot open unit log {}: {source}", path.display())]
    OpenUnitLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unit log {} not attached: the span is not recorded by flashgate's logging (was logging::build/install called on this thread?)", path.display())]
    SpanNotLogged { path: PathBuf },
    #[error("RUST_LOG `{value}` is not a valid filter: {reason}")]
    BadFilter { value: String, reason: String },
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The station's log directory: daily JSON files here, unit logs in `units/`.
    pub log_dir: PathBuf,
    /// `-v` count minus `-q` count: 0 = warnings, 1 = info, 2 = debug, 3 = trace; -1 = errors,
    /// -2 = nothing.
    pub verbosity: i8,
    /// `RUST_LOG`, if set: overrides `verbosity` for the console (only).
    pub rust_log: Option<String>,
    /// Colour on the console.
    pub console_ansi: bool,
    pub file_queue_lines: usize,
    /// What of `log_dir` is kept: applied when logging starts and every
    /// [`RETENTION_INTERVAL`] after.
    pub retention: LogRetention,
}

/// How often a running station applies its log retention.
pub const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

impl LogOptions {
    pub fn new(log_dir: impl Into<PathBuf>, verbosity: i8) -> Self {
        Self {
            log_dir: log_dir.into(),
            verbosity,
            rust_log: std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()),
            console_ansi: false,
            file_queue_lines: DEFAULT_FILE_QUEUE_LINES,
            retention: LogRetention::default(),
        }
    }

    pub fn with_retention(mut self, retention: LogRetention) -> Self {
        self.retention = retention;
        self
    }
}

/// Keeps the log machinery alive: dropping it flushes the JSON file (every queued line is
/// written before `drop` returns).
pub struct Logging {
    units: UnitLogs,
    console: ConsoleOutput,
    daily_dir: PathBuf,
    pruned_at_start: Pruned,
    /// Dropping it stops the hourly retention thread.
    _retention_stop: std::sync::mpsc::Sender<()>,
    _file_guard: WorkerGuard,
}

impl Logging {
    pub fn unit_logs(&self) -> &UnitLogs {
        &self.units
    }

    /// Attach the dashboard's `MultiProgress` here so console lines print above its rows.
    pub fn console(&self) -> &ConsoleOutput {
        &self.console
    }

    pub fn log_dir(&self) -> &Path {
        &self.daily_dir
    }

    /// What the retention removed when logging started.
    pub fn pruned_at_start(&self) -> &Pruned {
        &self.pruned_at_start
    }
}

/// Applies `retention` every [`RETENTION_INTERVAL`] until the returned sender is dropped.
fn keep_pruning(dir: PathBuf, retention: LogRetention) -> std::sync::mpsc::Sender<()> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("flashgate-log-retention".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(RETENTION_INTERVAL)
            {
                let pruned = prune(&dir, &retention, std::time::SystemTime::now());
                if !pruned.days.is_empty() {
                    tracing::info!(
                        days = ?pruned.days,
                        files = pruned.files,
                        bytes = pruned.bytes,
                        "log retention removed old logs"
                    );
                }
                for error in &pruned.errors {
                    tracing::warn!("log retention could not remove {error}");
                }
            }
        });
    if let Err(e) = spawned {
        // Retention then runs only at the next start; the logs themselves are unaffected.
        eprintln!("warning: log retention thread not started: {e}");
    }
    stop
}

/// The console filter: `RUST_LOG` when given, else the level for `verbosity`.
pub fn console_filter(verbosity: i8, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    if let Some(value) = rust_log {
        return EnvFilter::builder()
            .parse(value)
            .map_err(|e| LoggingError::BadFilter {
                value: value.to_owned(),
                reason: e.to_string(),
            });
    }
    let level = match verbosity {
        i8::MIN..=-2 => LevelFilter::OFF,
        -1 => LevelFilter::ERROR,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    Ok(EnvFilter::default().add_directive(level.into()))
}

/// Builds the subscriber without installing it (tests use it with `tracing::dispatcher::
/// with_default`); [`install`] makes it global.
pub fn build(options: &LogOptions) -> Result<(Dispatch, Logging), LoggingError> {
    let dir = &options.log_dir;
    std::fs::create_dir_all(dir).map_err(|source| LoggingError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let pruned_at_start = prune(dir, &options.retention, std::time::SystemTime::now());
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("flashgate")
        .filename_suffix("jsonl")
        .build(dir)
        .map_err(|source| LoggingError::OpenDailyLog {
            dir: dir.clone(),
            source,
        })?;
    let health = std::sync::Arc::new(LogHealth::default());
    let (file_writer, file_guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(options.file_queue_lines.max(1))
        .thread_name("flashgate-log")
        .finish(CountFailures {
            inner: appender,
            health: health.clone(),
        });
    let console = ConsoleOutput::new();
    // Device lines reach the operator through the event stream (the dashboard at -v, plain and
    // JSON lines always); the console log would only repeat them. An explicit RUST_LOG gets
    // what it names.
    let device_lines_on_console = options.rust_log.is_some();
    let console_layer = tracing_subscriber::fmt::layer()
        .with_writer(console.clone())
        .with_ansi(options.console_ansi)
        .with_target(false)
        .with_filter(console_filter(
            options.verbosity,
            options.rust_log.as_deref(),
        )?)
        .with_filter(filter_fn(move |meta| {
            device_lines_on_console || meta.target() != DEVICE_TARGET
        }));
    let json_layer = json_layer::JsonFileLayer::new(file_writer).with_filter(LevelFilter::DEBUG);
    let unit_layer = unit_log::UnitLogLayer.with_filter(LevelFilter::DEBUG);
    let subscriber = Registry::default()
        .with(json_layer)
        .with(unit_layer)
        .with(console_layer);
    let logging = Logging {
        units: UnitLogs::with_health(dir.join("units"), health),
        console,
        daily_dir: dir.clone(),
        pruned_at_start,
        _retention_stop: keep_pruning(dir.clone(), options.retention),
        _file_guard: file_guard,
    };
    Ok((Dispatch::new(subscriber), logging))
}

/// The daily log's file writer, counting the writes that fail (the writer thread cannot report
/// them to anyone else).
struct CountFailures<W> {
    inner: W,
    health: std::sync::Arc<LogHealth>,
}

impl<W: std::io::Write> std::io::Write for CountFailures<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner
            .write(buf)
            .inspect_err(|_| self.health.daily_failed())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner
            .write_all(buf)
            .inspect_err(|_| self.health.daily_failed())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner
            .flush()
            .inspect_err(|_| self.health.daily_failed())
    }
}

/// Builds and installs the subscriber for the whole process. Keep the returned [`Logging`]
/// alive until exit.
pub fn install(options: &LogOptions) -> Result<Logging, LoggingError> {
    let (dispatch, logging) = build(options)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    Ok(logging)
}

/// The span for one unit's job. `serial` is recorded once identification read it
/// (`span.record("serial", serial)`), then [`UnitLogs::attach`] routes it to its file.
pub fn unit_span(slot: u16, port_path: &str, work_order: &str, attempt: u32) -> Span {
    tracing::info_span!(
        "unit",
        slot,
        port_path,
        work_order,
        attempt,
        serial = tracing::field::Empty
    )
}

/// Logs a station event as a tracing event (call it inside the unit's span so it reaches the
/// unit log): device lines at info under target `device`, byte progress at debug.
pub fn log_event(event: &Event) {
    match &event.kind {
        EventKind::DeviceLog { line, .. } => tracing::info!(target: DEVICE_TARGET, "{line}"),
        EventKind::BytesProgress { done, total, .. } => tracing::debug!(done, total, "progress"),
        EventKind::PhaseChanged { phase, .. } => tracing::info!(%phase, "phase"),
        EventKind::Warning { message, .. } => tracing::warn!("{message}"),
        EventKind::Verdict {
            verdict: Verdict::Pass,
            ..
        } => tracing::info!(result = "PASS", "verdict"),
        EventKind::Verdict {
            verdict: Verdict::Fail(failure),
            ..
        } => tracing::warn!(
            result = "FAIL",
            code = %failure.code(),
            next_step = %failure.code().next_step(),
            "verdict: {}",
            failure.sentence()
        ),
        EventKind::Verdict {
            verdict: Verdict::Aborted(interruption),
            ..
        } => tracing::warn!(result = "ABORTED", "verdict: {}", interruption.sentence()),
        EventKind::Holding { why: Some(why) } => tracing::warn!("holding: {why}"),
        EventKind::Holding { why: None } => tracing::info!("hold lifted"),
        EventKind::Stopping { why, units_running } => {
            tracing::warn!(units_running, "stopping: {why}")
        }
        EventKind::UnitDetected { mode, .. } => tracing::info!(%mode, "unit detected"),
        EventKind::UnitIdentified { serial, .. } => {
            tracing::info!(serial = %serial, "unit identified")
        }
        EventKind::ModeChanged { mode, .. } => tracing::info!(%mode, "re-enumerated"),
        EventKind::UnitRemoved { .. } => tracing::info!("unit removed"),
        EventKind::BatchStarted(b) => tracing::info!(
            station = %b.station_id, work_order = %b.work_order, product = %b.product,
            region = %b.region, build_id = %b.build_id, "batch started"
        ),
        EventKind::FleetSync(state) => match &state.error {
            Some(error) => {
                tracing::warn!(
                    backlog = state.backlog,
                    "fleet database not reached: {error}"
                )
            }
            None => tracing::debug!(
                backlog = state.backlog,
                shipped = state.shipped,
                "fleet sync"
            ),
        },
        EventKind::BatchFinished(s) => {
            tracing::info!(
                passed = s.passed,
                failed = s.failed,
                aborted = s.aborted,
                elapsed_ms = s.elapsed_ms,
                "batch finished"
            )
        }
    }
}

/// Logs station events with the unit's keys filled in even where no unit span is around: the
/// supervisor reports a unit's detection and its verdict from outside the unit's job, so this
/// sink remembers each slot's port path and serial (from detection and identification) and the
/// batch's work order (from its start), and the `unit detected` and `verdict` records of the JSON
/// log carry `slot`, `port_path`, `serial` and `work_order`. Every other event is logged as
/// [`log_event`] logs it. Use it for the station's event stream, once per batch.
#[derive(Default)]
pub struct StationLogSink {
    known: std::sync::Mutex<KnownUnits>,
}

#[derive(Default)]
struct KnownUnits {
    work_order: Option<String>,
    /// Slot → (port path, serial).
    slots: std::collections::BTreeMap<u16, (String, Option<String>)>,
}

impl EventSink for StationLogSink {
    fn emit(&self, event: Event) {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let work_order = known.work_order.clone().unwrap_or_default();
        match &event.kind {
            EventKind::BatchStarted(batch) => {
                known.work_order = Some(batch.work_order.clone());
                drop(known);
                log_event(&event);
            }
            EventKind::UnitDetected {
                slot,
                port_path,
                mode,
                serial,
            } => {
                known
                    .slots
                    .insert(*slot, (port_path.clone(), serial.clone()));
                drop(known);
                // An EDL unit's serial is known only at identification: null until then.
                match serial {
                    Some(serial) => tracing::info!(
                        slot,
                        port_path = %port_path,
                        serial = %serial,
                        work_order = %work_order,
                        %mode,
                        "unit detected"
                    ),
                    None => tracing::info!(
                        slot,
                        port_path = %port_path,
                        work_order = %work_order,
                        %mode,
                        "unit detected"
                    ),
                }
            }
            EventKind::UnitIdentified { slot, serial, .. } => {
                if let Some(entry) = known.slots.get_mut(slot) {
                    entry.1 = Some(serial.clone());
                }
                drop(known);
                log_event(&event);
            }
            EventKind::Verdict {
                slot,
                serial,
                verdict,
            } => {
                let (port_path, known_serial) = known.slots.get(slot).cloned().unwrap_or_default();
                drop(known);
                let serial = serial.clone().or(known_serial).unwrap_or_default();
                log_verdict(*slot, &port_path, &serial, &work_order, verdict);
            }
            _ => {
                drop(known);
                log_event(&event);
            }
        }
    }
}

fn log_verdict(slot: u16, port_path: &str, serial: &str, work_order: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Pass => tracing::info!(
            slot,
            port_path,
            serial,
            work_order,
            result = "PASS",
            "verdict"
        ),
        Verdict::Fail(failure) => tracing::warn!(
            slot,
            port_path,
            serial,
            work_order,
            result = "FAIL",
            code = %failure.code(),
            next_step = %failure.code().next_step(),
            reason = %failure.sentence(),
            "verdict"
        ),
        Verdict::Aborted(interruption) => tracing::warn!(
            slot,
            port_path,
            serial,
            work_order,
            result = "ABORTED",
            reason = %interruption.sentence(),
            "verdict"
        ),
    }
}

/// Logs each event with [`log_event`] in the emitting thread's current span. Put it beside the
/// dashboard's channel in a unit task's fan-out (`SlotProgress::new(slot, Fanout::new()
/// .with(dashboard_tx).with(TracingSink))`) and protocol steps and device lines reach the unit's
/// log file and the JSON log with the unit's fields.
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, event: Event) {
        log_event(&event);
    }
}

#[cfg(test)]
mod tests {
    use indicatif::{MultiProgress, ProgressDrawTarget};

    use super::*;

    /// What the console shows, above a dashboard, for one device line and one station line.
    fn console_shows(verbosity: i8, rust_log: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let mut options = LogOptions::new(dir.path(), verbosity);
        options.rust_log = rust_log.map(str::to_owned);
        let (dispatch, logging) = build(&options).unwrap();
        let term = crate::dashboard::CaptureTerm::new(160, 40);
        logging.console().attach(MultiProgress::with_draw_target(
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        ));
        tracing::dispatcher::with_default(&dispatch, || {
            let span = unit_span(3, "1-4.3", "WO-1", 1);
            let _entered = span.enter();
            log_event(&Event::now(EventKind::DeviceLog {
                slot: 3,
                line: "INFO: Binary build date".into(),
            }));
            tracing::info!("station line");
        });
        term.text()
    }

    #[test]
    fn the_console_never_repeats_device_lines_unless_rust_log_names_them() {
        let shown = console_shows(1, None);
        assert!(shown.contains("station line"), "{shown}");
        assert!(!shown.contains("Binary build date"), "{shown}");
        let shown = console_shows(0, None);
        assert!(!shown.contains("station line"), "{shown}");
        let shown = console_shows(0, Some("info"));
        assert!(shown.contains("Binary build date"), "{shown}");
    }
}
