//! Replays the scripted batch (`station::dashboard::script`) into the operator dashboard, so the
//! screen can be looked at without phones: `cargo run -p flashgate-station --example
//! dashboard_replay -- --slots 16` (in tmux or any terminal).
//!
//! `--output plain|json` prints event lines instead; `--dump COLSxROWS` prints the final screen
//! without a terminal; `--speed 4` plays four times as fast.

use std::sync::mpsc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use station::dashboard::{
    script, LineFormat, LineSink, RenderStyle, TtyDashboard, DEFAULT_REFRESH,
};
use station::events::{now_unix_ms, EventSink};

#[derive(Parser)]
struct Args {
    /// Number of slots (1 to 32).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=32))]
    slots: u16,
    /// Playback speed factor.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    #[arg(long, value_enum, default_value_t = Output::Tty)]
    output: Output,
    /// Print the final screen for COLSxROWS (e.g. 120x40) and exit, no terminal needed.
    #[arg(long)]
    dump: Option<String>,
    /// Seconds to keep the final screen before exiting (tty output).
    #[arg(long, default_value_t = 0)]
    hold: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Tty,
    Plain,
    Json,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let events = script::scripted_batch(args.slots, now_unix_ms());
    if let Some(size) = &args.dump {
        let (cols, rows) = size
            .split_once('x')
            .and_then(|(c, r)| Some((c.parse::<u16>().ok()?, r.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("--dump {size}: expected COLSxROWS, e.g. 120x40"))?;
        let mut state = station::dashboard::DashboardState::new();
        for event in &events {
            state.apply(event);
        }
        for line in state.render(cols, rows, RenderStyle::detect()) {
            println!("{line}");
        }
        return Ok(());
    }
    match args.output {
        Output::Plain | Output::Json => {
            let format = if matches!(args.output, Output::Json) {
                LineFormat::Json
            } else {
                LineFormat::Plain
            };
            let sink = LineSink::new(format, std::io::stdout());
            script::replay(&events, &sink, args.speed);
        }
        Output::Tty => {
            let (tx, rx) = mpsc::channel();
            let dashboard = TtyDashboard::stderr(RenderStyle::detect());
            let handle = dashboard
                .spawn(rx, DEFAULT_REFRESH)
                .map_err(|e| format!("cannot start dashboard thread: {e}"))?;
            script::replay(&events, &tx as &dyn EventSink, args.speed);
            drop(tx);
            let state = handle
                .join()
                .map_err(|_| "dashboard thread panicked".to_owned())?;
            let counts = state.counts();
            std::thread::sleep(Duration::from_secs(args.hold));
            eprintln!(
                "replay done: passed {} failed {}",
                counts.passed, counts.failed
            );
        }
    }
    Ok(())
}
