//! `flashgate run`: the station's main job — pre-flight, then a batch of phones on their slots
//! (real USB, or simulated phones with `--sim N`), the operator's dashboard, and a summary.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};

use anyhow::Context;
use station::batch::{self, BatchEnd, BatchRun};
use station::dashboard::{
    LineFormat, LineSink, OutputMode, RenderStyle, TtyDashboard, DEFAULT_REFRESH,
};
use station::events::{BatchSummary, Event, EventSink, Fanout};
use station::logging::{self, LogHealth, LogOptions};
use station::preflight;
use station::publish::{self, EventPublisher};
use station::status::{StatusBoard, StatusServer};

#[derive(clap::Args)]
pub struct Args {
    /// The station file (station.yaml).
    #[arg(long)]
    station: PathBuf,
    /// The work order file (work-orders/<id>.yaml).
    #[arg(long = "work-order")]
    work_order: PathBuf,
    /// Run N simulated phones (alternating fastboot and EDL) instead of the station's slots; their
    /// attempts go to a journal of their own beside the station's (`journal.sim.sqlite`) and
    /// their logs to `<log_dir>/sim`, never to the production journal.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    sim: Option<u16>,
    /// Run the simulated phones this phones file describes (which phone arrives on each slot,
    /// with what on it and how it misbehaves; configs/demo/phones.yaml) instead of the
    /// station's slots; journal and logs as for --sim.
    #[arg(long, value_name = "FILE", conflicts_with = "sim")]
    phones: Option<PathBuf>,
    /// One JSON object per event on stdout instead of the dashboard.
    #[arg(long)]
    json: bool,
    /// Publish the event stream for `flashgate dashboard` on this Unix socket (default: in
    /// $RUNTIME_DIRECTORY under systemd, else beside the journal: journal.events.sock).
    #[arg(long, value_name = "PATH")]
    events_socket: Option<PathBuf>,
    /// Serve a read-only status page (/) and Prometheus metrics (/metrics) over HTTP on ADDR,
    /// e.g. 0.0.0.0:9100 for the line supervisor.
    #[arg(long, value_name = "ADDR")]
    status_listen: Option<String>,
    /// Who runs the station (a badge id), recorded with every attempt in the journal;
    /// overrides station.yaml `operator`.
    #[arg(long, value_name = "ID")]
    operator: Option<String>,
    /// Engineering mode for this run: a product manifest without a valid signature by a key
    /// station.yaml pins is flashed anyway, with a warning on screen, and every attempt is
    /// recorded as engineering (journal column engineering_mode). Never on a production line.
    #[arg(long)]
    engineering: bool,
    /// With --sim or --phones: use station.yaml's fleet database too (a test database: the
    /// simulated units take places in the work order's shared quantity). Without it simulated
    /// phones never reach the fleet.
    #[arg(long)]
    fleet: bool,
}

pub fn run(args: Args, verbose: u8, quiet: u8) -> anyhow::Result<ExitCode> {
    // Signals are taken over before anything else: a stop during pre-flight or the batch ends
    // the way Ctrl-C does, never by the default action.
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let stops = runtime
        .block_on(async { StopRequests::listen() })
        .context("installing the stop signal handlers")?;
    let (mut station, checked) =
        preflight::load_and_check_as(&args.station, &args.work_order, args.engineering)
            .context("pre-flight refused the batch; no phone was touched")?;
    let engineering_warning = checked.product.trust.engineering_warning();
    if let Some(warning) = &engineering_warning {
        eprintln!("{warning}");
    }
    if let Some(operator) = args.operator {
        station::config::check_operator(&operator)
            .map_err(|problem| anyhow::anyhow!("--operator: {problem}; pass the badge id"))?;
        station.operator = Some(operator);
    }
    let mode = OutputMode::detect(args.json);
    // On the dashboard the header says the same from its first frame; a line above it would
    // only push the rows down.
    if mode != OutputMode::Tty {
        eprintln!(
        "pre-flight passed: work order {} ({} {}, build {}), {} files and {} programmer(s) hashed ({} bytes), activation client {} = {}",
        checked.work_order.id,
        checked.product.name,
        checked.region(),
        checked.image_set.build_id,
        checked.images.len(),
        checked.programmers.len(),
        checked.bytes_hashed,
        checked.image_set.activation_client.location,
        checked.activation.sha256.short(),
    );
    }
    // Simulated phones standing in for the station's slots never reach its production journal
    // or logs (a station whose slots are all `simulated:` is a rig: its journal is its own).
    let station = if args.sim.is_some() || args.phones.is_some() {
        let mut sim = station.for_simulated_phones();
        if !args.fleet {
            sim.fleet = None;
        }
        eprintln!(
            "simulated phones: journal {} and logs {} (not the station's journal; `report --sim` \
             reads it)",
            sim.journal.display(),
            sim.log_dir.display()
        );
        sim
    } else {
        station
    };
    let assembly = match &args.phones {
        Some(file) => {
            let phones = station::config::PhonesFile::load(file)?;
            batch::Assembly::scripted(&station, &checked, &phones)?
        }
        None => batch::assemble(&station, &checked, args.sim)?,
    };
    if let Some(warning) = &assembly.warning {
        eprintln!("warning: {warning}");
    }
    let verbosity =
        i8::try_from(verbose).unwrap_or(i8::MAX) - i8::try_from(quiet).unwrap_or(i8::MAX);
    // The operator's output is the event stream (dashboard or lines), which carries every
    // warning and verdict; at the default verbosity the console log would only repeat them
    // (above the dashboard, or between the lines), so it shows errors alone. Everything is in
    // the log files.
    let console_verbosity = if verbosity == 0 { -1 } else { verbosity };
    let logs = logging::install(
        &LogOptions::new(&station.log_dir, console_verbosity).with_retention(station.log_retention),
    )
    .context("setting up the log files")?;
    let pruned = logs.pruned_at_start();
    if !pruned.days.is_empty() {
        eprintln!(
            "log retention: removed {} file(s), {} bytes, of {} old day(s) ({} .. {}) from {}",
            pruned.files,
            pruned.bytes,
            pruned.days.len(),
            pruned.days.first().map_or("", String::as_str),
            pruned.days.last().map_or("", String::as_str),
            station.log_dir.display()
        );
    }
    for error in &pruned.errors {
        eprintln!("warning: log retention could not remove {error}");
    }

    let (tx, rx) = mpsc::channel::<Event>();
    let consumer: std::thread::JoinHandle<()> = match mode {
        OutputMode::Tty => {
            // Device lines above the rows only when asked for (-v); they are always in the
            // unit log files.
            let dashboard =
                TtyDashboard::stderr(RenderStyle::detect()).with_device_lines(verbosity >= 1);
            logs.console().attach(dashboard.multi_progress().clone());
            std::thread::spawn(move || {
                dashboard.run(rx, DEFAULT_REFRESH);
            })
        }
        OutputMode::Plain | OutputMode::Json => {
            let format = if mode == OutputMode::Json {
                LineFormat::Json
            } else {
                LineFormat::Plain
            };
            std::thread::spawn(move || {
                // A closed stdout (`run … | head`) must not stop the station: lines that cannot
                // be written are counted by the sink and dropped.
                let sink =
                    LineSink::new(format, std::io::stdout()).with_device_lines(verbosity >= 1);
                for event in rx {
                    sink.emit(event);
                }
            })
        }
    };
    let mut fanout = Fanout::new()
        .with(tx)
        .with(logging::StationLogSink::default());
    let socket = args.events_socket.clone().unwrap_or_else(|| {
        publish::default_socket(&station.journal, std::env::var_os("RUNTIME_DIRECTORY"))
    });
    // The screen's other home: a station without its socket still flashes (the journal is the
    // record), so a socket that cannot be made is a warning, not a refusal.
    let publisher = match EventPublisher::bind(&socket) {
        Ok(publisher) => Some(Arc::new(publisher)),
        Err(e) => {
            eprintln!("warning: {e}; `flashgate dashboard` cannot attach to this run");
            None
        }
    };
    if let Some(publisher) = &publisher {
        fanout.push(publisher.clone());
    }
    // Asked for explicitly, so an address that cannot be served refuses the run before any
    // phone is touched.
    let status = match &args.status_listen {
        Some(addr) => {
            let board = Arc::new(StatusBoard::new(Some(logs.unit_logs().health().clone())));
            let server = StatusServer::bind(addr, board.clone())?;
            eprintln!(
                "status page: http://{}/ (metrics: /metrics)",
                server.local_addr()
            );
            fanout.push(board);
            Some(server)
        }
        None => None,
    };
    let events: Arc<dyn EventSink> = Arc::new(fanout);

    let log_health = logs.unit_logs().health().clone();
    let stop_after_verdicts = assembly.stop_after_verdicts;
    let run = BatchRun {
        station,
        batch: checked,
        slots: assembly.slots,
        events,
        stop_after_verdicts,
        journal_patience: batch::DEFAULT_JOURNAL_PATIENCE,
        unit_logs: Some(logs.unit_logs().clone()),
        transfer_bytes: assembly.transfer_bytes,
    };
    // The rig's phones live as long as the batch.
    let _rig = assembly.rig;
    let ended = runtime.block_on(run.run(assembly.bus, async move { stops.first().await }));
    // Dropping the last sender ends the consumers; wait for them to draw the final screen.
    drop(runtime);
    let _ = consumer.join();
    // Attached dashboards get their last line; the socket file goes.
    drop(publisher);
    drop(status);
    let summary = match ended? {
        BatchEnd::Ran(summary) => summary,
        BatchEnd::AlreadyComplete {
            work_order,
            passed,
            ordered,
        } => {
            let text = format!(
                "work order {work_order} is complete: {passed} of {ordered} ordered units passed \
                 in earlier runs (journal); nothing to flash — lock the station to the next work \
                 order\n"
            );
            if mode == OutputMode::Json {
                eprint!("{text}");
            } else {
                say(&text);
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    print_summary(&summary, &log_health, mode);
    drop(logs);
    // 0 only for a batch that reached its end (the order's quantity, here or across the fleet,
    // or every phone of a rig)
    // with every attempt passed.
    let reached_end = summary
        .ordered
        .is_some_and(|ordered| summary.units_passed.unwrap_or(0) >= ordered)
        || summary.fleet_complete.is_some()
        || stop_after_verdicts.is_some_and(|n| summary.passed as usize >= n);
    Ok(
        if summary.failed == 0 && summary.aborted == 0 && reached_end {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// Ctrl-C, SIGTERM (`systemctl stop`) and SIGHUP (the terminal went away) all stop the station
/// the same way: every unit is cut at a safe point and journaled. A second request ends the
/// process at once; attempts without a verdict are then closed as ABORTED at the next start.
struct StopRequests {
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopRequests {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
            _ = self.interrupt.recv() => "Ctrl-C",
        }
    }

    /// The first stop request's reason; a second one exits the process.
    async fn first(mut self) -> String {
        let why = self.next().await;
        tokio::spawn(async move {
            let again = self.next().await;
            eprintln!(
                "\n{again} again: exiting now; attempts without a verdict are closed as ABORTED \
                 when the station next starts"
            );
            std::process::exit(130);
        });
        format!("the station was stopped ({why})")
    }
}

/// Writes to stdout, quietly giving up if nobody reads it any more (`run … | head`).
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The closing summary; with `--json` it goes to stderr so stdout stays one JSON object per line
/// (the `batch_finished` event carries the same figures). The dashboard's final screen already
/// shows the counters, so under it only lost log lines are reported.
fn print_summary(summary: &BatchSummary, logs: &LogHealth, mode: OutputMode) {
    let decided = summary.passed + summary.failed;
    let yield_pct = if decided > 0 {
        f64::from(summary.passed) * 100.0 / f64::from(decided)
    } else {
        0.0
    };
    let ordered = match (summary.units_passed, summary.ordered) {
        (Some(units), Some(ordered)) => format!(
            "passed {units} of {ordered} ordered (this run {})",
            summary.passed
        ),
        _ => format!("passed {}", summary.passed),
    };
    let mut text = format!(
        "batch summary: {ordered}, failed {}, aborted {}; yield {yield_pct:.1} %; {:.1} s\n",
        summary.failed,
        summary.aborted,
        summary.elapsed_ms as f64 / 1000.0
    );
    for (code, count) in &summary.failures_by_code {
        text.push_str(&format!("  {code}: {count}\n"));
    }
    if summary.aborted > 0 {
        text.push_str(&format!(
            "  ABORTED: {} (cut by the stop before a verdict; flash those units again)\n",
            summary.aborted
        ));
    }
    if summary.not_flashed > 0 {
        text.push_str(&format!(
            "  not flashed: {} (kept from flashing by the fleet database; their verdicts say \
             what to do with each)\n",
            summary.not_flashed
        ));
    }
    if let Some(why) = &summary.fleet_complete {
        text.push_str(&format!(
            "{why}: the batch ended; lock the station to the next work order\n"
        ));
    }
    let lost = logs.daily_write_errors() + logs.unit_write_errors();
    if lost > 0 {
        text.push_str(&format!(
            "WARNING: {lost} log line(s) could not be written ({} daily, {} unit logs): check free \
             space and permissions of the station's log_dir\n",
            logs.daily_write_errors(),
            logs.unit_write_errors()
        ));
    }
    match mode {
        OutputMode::Json => eprint!("{text}"),
        OutputMode::Plain => say(&text),
        OutputMode::Tty => {
            if let Some(at) = text.find("WARNING: ") {
                say(&text[at..]);
            }
        }
    }
}
