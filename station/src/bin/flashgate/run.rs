//! `flashgate run`: the station's main job — pre-flight, then a batch of phones on their slots
//! (real USB, or simulated phones with `--sim N`), the operator's dashboard, and a summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context;
use station::batch::{self, sim_port, BatchRun, SlotSource};
use station::bus::rusb_bus::RusbBus;
use station::bus::usbfs;
use station::bus::UsbBus;
use station::dashboard::{
    LineFormat, LineSink, OutputMode, RenderStyle, TtyDashboard, DEFAULT_REFRESH,
};
use station::events::{BatchSummary, Event, EventSink, Fanout};
use station::logging::{self, LogOptions};
use station::preflight;
use station::run::StopWhen;

#[derive(clap::Args)]
pub struct Args {
    /// The station file (station.yaml).
    #[arg(long)]
    station: PathBuf,
    /// The work order file (work-orders/<id>.yaml).
    #[arg(long = "work-order")]
    work_order: PathBuf,
    /// Run N simulated phones (alternating fastboot and EDL) instead of the station's slots.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    sim: Option<u16>,
    /// One JSON object per event on stdout instead of the dashboard.
    #[arg(long)]
    json: bool,
    /// Less console output.
    #[arg(short, long, action = clap::ArgAction::Count)]
    quiet: u8,
}

pub fn run(args: Args, verbose: u8) -> anyhow::Result<ExitCode> {
    let (station, checked) = preflight::load_and_check(&args.station, &args.work_order)
        .context("pre-flight refused the batch; no phone was touched")?;
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
    let source = batch::slot_source(&station, &checked, args.sim)?;
    let verbosity =
        i8::try_from(verbose).unwrap_or(i8::MAX) - i8::try_from(args.quiet).unwrap_or(i8::MAX);
    let logs = logging::install(&LogOptions::new(&station.log_dir, verbosity))
        .context("setting up the log files")?;

    let (tx, rx) = mpsc::channel::<Event>();
    let mode = OutputMode::detect(args.json);
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
                let sink = LineSink::new(format, std::io::stdout());
                for event in rx {
                    sink.emit(event);
                }
            })
        }
    };
    let events: Arc<dyn EventSink> = Arc::new(Fanout::new().with(tx).with(logging::TracingSink));

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let quantity = checked.work_order.quantity as usize;
    let mut transfer_bytes = 1 << 20;
    let (bus, slots, stop_when, _units): (Arc<dyn UsbBus>, _, _, _) = match source {
        SlotSource::Usb(slots) => {
            let bus = RusbBus::new().context(
                "this station's slots are USB ports; to try flashgate without phones use --sim N",
            )?;
            let plan = usbfs::plan(
                usbfs::read_budget_mb(std::path::Path::new(usbfs::USBFS_MEMORY_MB)),
                slots.len(),
                1 << 20,
            );
            if let Some(warning) = plan.warning {
                tracing::warn!("{warning}");
                eprintln!("warning: {warning}");
            }
            transfer_bytes = plan.per_slot_bytes;
            let stop = StopWhen {
                verdicts: None,
                passes: Some(quantity),
            };
            (Arc::new(bus) as Arc<dyn UsbBus>, slots, stop, Vec::new())
        }
        SlotSource::Simulated(sim_slots) => {
            let (bus, units) = batch::simulated_bus(&checked, &sim_slots)?;
            // Phones arrive one after another, as an operator fills a hub.
            for (i, unit) in units.iter().enumerate() {
                let unit = unit.clone();
                bus.schedule(Duration::from_millis(40 * i as u64), move |_| unit.plug());
            }
            let slots = sim_slots
                .iter()
                .map(|(slot, _)| (sim_port(*slot), *slot))
                .collect();
            let stop = StopWhen {
                verdicts: Some(sim_slots.len()),
                passes: None,
            };
            (Arc::new(bus) as Arc<dyn UsbBus>, slots, stop, units)
        }
    };
    let expected = match stop_when.verdicts {
        Some(n) => n,
        None => quantity,
    };
    let run = BatchRun {
        station,
        batch: checked,
        slots,
        events,
        stop_when,
        unit_logs: Some(logs.unit_logs().clone()),
        transfer_bytes,
    };
    let summary = runtime.block_on(run.run(bus, async {
        let _ = tokio::signal::ctrl_c().await;
    }));
    // Dropping the last sender ends the consumers; wait for them to draw the final screen.
    drop(runtime);
    let _ = consumer.join();
    let summary = summary?;
    print_summary(&summary, expected, mode == OutputMode::Json);
    drop(logs);
    Ok(
        if summary.failed == 0 && summary.passed as usize >= expected {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// The closing summary; with `--json` it goes to stderr so stdout stays one JSON object per line
/// (the `batch_finished` event carries the same figures).
fn print_summary(summary: &BatchSummary, expected: usize, json: bool) {
    let total = summary.passed + summary.failed;
    let yield_pct = if total > 0 {
        f64::from(summary.passed) * 100.0 / f64::from(total)
    } else {
        0.0
    };
    let mut text = format!(
        "batch summary: {} passed, {} failed of {expected} expected; yield {yield_pct:.1} %; {:.1} s\n",
        summary.passed,
        summary.failed,
        summary.elapsed_ms as f64 / 1000.0
    );
    for (code, count) in &summary.failures_by_code {
        text.push_str(&format!("  {code}: {count}\n"));
    }
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}
