//! `flashgate`: the station's command line. Thin: parse arguments, set up logging, call the
//! library, map errors to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod bench;
mod byte_size;
mod check;
mod dashboard;
mod devices;
mod edl;
mod fastboot;
mod fleet;
mod history;
mod image;
mod journal;
mod journal_arg;
mod manifest;
mod manual;
mod output_file;
mod report;
mod run;
mod sim;
mod station_cmd;
mod time_arg;
mod unit;

#[derive(Parser)]
#[command(
    name = "flashgate",
    version,
    about = "Factory-line phone flashing station (fastboot + Qualcomm EDL)"
)]
struct Cli {
    /// More console output (-v, -vv); the log files always keep debug level.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less console output (-q: errors only; the log files keep everything).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List attached fastboot and Qualcomm EDL devices with their port path and serial.
    Devices(devices::DevicesArgs),
    /// List attached phones by port path with a ready-to-paste station.yaml slot entry;
    /// `--watch` prints plug/unplug events live.
    Ports(devices::PortsArgs),
    /// Talk fastboot to one device (engineering: getvar, flash, erase, fetch, reboot, oem …).
    Fastboot(fastboot::Args),
    /// Talk to one phone in Qualcomm EDL mode (Sahara identity, Firehose).
    Edl(edl::Args),
    /// Run the station: pre-flight, then flash and verify every phone on its slot.
    Run(run::Args),
    /// Show the live dashboard of the station running on this PC (a service has no terminal):
    /// its slots as `run` draws them, from the station's event socket. q or Ctrl-C detaches.
    #[command(visible_alias = "attach")]
    Dashboard(dashboard::Args),
    /// Everything `run` checks before a phone, and what the station needs around it (journal
    /// and log folders, udev rules and group on USB): one line per finding, exit 1 if any
    /// would stop the batch. Touches no phone and writes nothing.
    Check(check::Args),
    /// Counts, yield and failures by code of a work order, from the journal.
    Report(report::Args),
    /// Every recorded attempt of one unit serial, from the journal.
    History(history::Args),
    /// The journal's hash chain: `journal verify` names every row edited, deleted, reordered
    /// or inserted since its verdict.
    Journal(journal::Args),
    /// A unit's signed proof: `unit proof SERIAL` prints it, `unit verify FILE` checks it with
    /// the station's public key.
    Unit(unit::Args),
    /// The station's own set-up: `station keygen` makes the key its unit proofs are signed with.
    Station(station_cmd::Args),
    /// The fleet database: `fleet migrate` (schema), `fleet sync-status`, `fleet local-server`.
    Fleet(fleet::Args),
    /// The outbox to the fleet database: `sync status` (attempts not yet shipped).
    Sync(fleet::SyncArgs),
    /// Serve simulated phones to outside peers (`sim fastboot --listen … --storage DIR`).
    Sim(sim::Args),
    /// Benchmarks of the station (`bench line`: batches of simulated phones at line scale).
    Bench(bench::Args),
    /// Look inside an image file (super, ext4, erofs; raw or sparse): ls, sha256, cat.
    Image(image::Args),
    /// Release engineering: build a product manifest from a release folder (`manifest build`).
    Manifest(manifest::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(manual::CompletionsArgs),
    /// Print the man page (roff) on stdout: `flashgate man | man -l -`.
    Man(manual::ManArgs),
}

/// Read-only listing commands end quietly when their reader goes away (`history --json | head`),
/// as Unix tools do. Commands that drive a phone keep Rust's default (a failed write is an
/// error they handle), so a closed pipe never kills a flash half-way.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes, each said once: library errors already quote their cause in their
/// own sentence, so a cause whose text is already there is not repeated.
fn render_error(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn main() -> ExitCode {
    // Before any thread exists: the local offset can only be asked for soundly now.
    station::timestamp::resolve_local_offset();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Report(_)
            | Command::Check(_)
            | Command::History(_)
            | Command::Journal(_)
            | Command::Unit(_)
            | Command::Devices(_)
            | Command::Ports(_)
            | Command::Image(_)
            | Command::Completions(_)
            | Command::Man(_)
    ) {
        quiet_on_closed_pipe();
    }
    // `run` sets up the station's own logging (files + console above the dashboard).
    if let Command::Run(args) = cli.command {
        return match run::run(args, cli.verbose, cli.quiet) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", render_error(&e));
                ExitCode::FAILURE
            }
        };
    }
    let filter = match i16::from(cli.verbose) - i16::from(cli.quiet) {
        ..=-1 => "error",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, and never when NO_COLOR asks for none.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Devices(args) => devices::devices(args),
        Command::Ports(args) => devices::ports(args),
        Command::Fastboot(args) => fastboot::run(args),
        Command::Edl(args) => edl::run(args),
        Command::Run(_) => unreachable!("handled above"),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Report(args) => report::run(args),
        Command::Check(args) => check::run(args),
        Command::History(args) => history::run(args),
        Command::Journal(args) => journal::run(args),
        Command::Unit(args) => unit::run(args),
        Command::Station(args) => station_cmd::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Fleet(args) => fleet::run(args),
        Command::Sync(args) => fleet::run_sync(args),
        Command::Bench(args) => bench::run(args),
        Command::Image(args) => image::run(args),
        Command::Manifest(args) => manifest::run(args),
        Command::Completions(args) => manual::completions(args, Cli::command()),
        Command::Man(args) => manual::man(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("image `boot`: cannot open: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[test]
    fn causes_already_quoted_are_said_once() {
        let error = anyhow::Error::new(Quoting {
            source: std::io::Error::other("disk on fire"),
        })
        .context("pre-flight refused the batch");
        assert_eq!(
            render_error(&error),
            "pre-flight refused the batch: image `boot`: cannot open: disk on fire"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&plain), "outer: inner");
    }
}
