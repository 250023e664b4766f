//! `flashgate check`: the whole pre-flight of a station and work order, and what the station
//! needs around it, without a phone; one line per finding, exit 1 if any would stop the batch.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use station::check::{self, CheckRequest, UdevRules};

#[derive(clap::Args)]
pub struct Args {
    /// The station file (station.yaml).
    #[arg(long)]
    station: PathBuf,
    /// The work order file (work-orders/<id>.yaml).
    #[arg(long = "work-order")]
    work_order: PathBuf,
    /// Check for a run with simulated phones (`run --sim N`): its own journal and logs, and no
    /// USB access needed (udev and group are not checked).
    #[arg(long)]
    sim: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let findings = check::check(&CheckRequest {
        station_file: args.station,
        work_order_file: args.work_order,
        simulated: args.sim,
        udev: UdevRules::system(),
    });
    let mut out = std::io::stdout().lock();
    for finding in &findings {
        writeln!(out, "{finding}")?;
    }
    let failed = findings
        .iter()
        .filter(|f| f.status == check::Status::Fail)
        .count();
    if failed == 0 {
        writeln!(
            out,
            "check passed: nothing found that would stop this batch"
        )?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "check failed: {failed} finding(s) would stop the batch; no phone was touched"
        )?;
        Ok(ExitCode::FAILURE)
    }
}
