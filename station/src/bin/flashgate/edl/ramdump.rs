//! `flashgate edl ramdump`: collect a crashed phone's RAM over Sahara memory-debug mode into a
//! directory, one file per region, and print what was written with each file's SHA-256.

use std::process::ExitCode;

use anyhow::{bail, Context};
use protocols::progress::{ProgressEvent, ProgressSink};
use protocols::sahara::ramdump::{RamdumpLimits, RamdumpReport, RegionFilter};
use protocols::sahara::SaharaHost;
use protocols::transport::Transport;

use super::{sahara_timeouts, Action, Args};

/// One line on stderr per region started.
struct RegionProgress;

impl ProgressSink for RegionProgress {
    fn event(&self, event: ProgressEvent<'_>) {
        if let ProgressEvent::StepStarted { step, total_bytes } = event {
            eprintln!("{step}: {total_bytes} bytes");
        }
    }
}

pub fn run(link: &mut dyn Transport, args: &Args) -> anyhow::Result<ExitCode> {
    let Action::Ramdump {
        out,
        regions,
        preferred_only,
        max_region_bytes,
        max_total_bytes,
    } = &args.action
    else {
        bail!("internal: not a ramdump action");
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let filter = RegionFilter {
        names: regions.clone(),
        save_preferred_only: *preferred_only,
    };
    let limits = RamdumpLimits {
        max_region_bytes: *max_region_bytes,
        max_total_bytes: *max_total_bytes,
        ..RamdumpLimits::default()
    };
    let report = SaharaHost::with_timeouts(link, sahara_timeouts(args)).collect_ramdump(
        out,
        &filter,
        &limits,
        &RegionProgress,
    )?;
    print!("{}", format_report(&report));
    if report.collected.is_empty() {
        bail!("no region was collected");
    }
    Ok(ExitCode::SUCCESS)
}

fn format_report(report: &RamdumpReport) -> String {
    let mut text = format!(
        "memory table: {} regions ({:?} entries)\n",
        report.table.len(),
        report.format
    );
    for c in &report.collected {
        text.push_str(&format!(
            "{:<20} {:#014x} {:>12} bytes  sha256 {}  -> {}\n",
            c.region.filename,
            c.region.address,
            c.region.length,
            hex::encode(c.sha256),
            c.path.display()
        ));
    }
    for (region, why) in &report.skipped {
        text.push_str(&format!("skipped {:?}: {why}\n", region.filename));
    }
    if !report.reset_acknowledged {
        text.push_str("warning: the phone did not acknowledge the reset; power-cycle it\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use protocols::sahara::memory_table::TableFormat;
    use protocols::sim::sahara::{SaharaDevice, SaharaIdentity, SaharaServeOutcome, SimMemoryDump};
    use protocols::transport::pty::PtyDevice;

    use super::super::{open_target, Args};
    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn ramdump_over_a_pty_writes_the_regions_a_crashed_phone_offers() {
        let dir = tempfile::tempdir().unwrap();
        let tty = dir.path().join("ttyEDL");
        let out = dir.path().join("dump");
        let mut pty = PtyDevice::create(Some(&tty)).unwrap();
        let dump = SimMemoryDump::small(TableFormat::Bits64);
        let mut rom = SaharaDevice::crashed(3, SaharaIdentity::default(), dump.clone());
        rom.host_timeout = Duration::from_secs(10);
        let device = std::thread::spawn(move || {
            let outcome = rom.serve(&mut pty).unwrap();
            (outcome, pty)
        });
        let target = format!("serial:{}", tty.display());
        let argv = [
            "edl",
            "-t",
            &target,
            "ramdump",
            "--out",
            out.to_str().unwrap(),
            "--region",
            "ddrcs0",
        ];
        let args = Cli::try_parse_from(argv).unwrap().args;
        let mut link = open_target(&args.target).unwrap();
        assert_eq!(run(&mut *link, &args).unwrap(), ExitCode::SUCCESS);
        let written = std::fs::read(out.join("DDRCS0.BIN")).unwrap();
        assert!(written == dump.region_bytes("DDRCS0.BIN").unwrap());
        assert!(!out.join("OCIMEM.BIN").exists());
        drop(link);
        let (outcome, _pty) = device.join().unwrap();
        assert_eq!(outcome, SaharaServeOutcome::Reset);
    }
}
