//! `flashgate report --work-order ID`: counts, yield and failures by code, from the journal.

use std::process::ExitCode;

use station::journal::WorkOrderReport;

use crate::journal_arg::JournalArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Work order id, e.g. WO-1187.
    #[arg(long = "work-order", value_name = "ID")]
    pub work_order: String,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let journal = args.journal.open()?;
    let report = journal.report(&args.work_order)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn list(values: &[String]) -> String {
    if values.is_empty() {
        "-".to_string()
    } else {
        values.join(", ")
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.1} %"))
}

pub fn render(report: &WorkOrderReport) -> String {
    let mut out = String::new();
    let quantity = report
        .quantity
        .map_or_else(|| "-".to_string(), |q| q.to_string());
    out.push_str(&format!("work order   {}\n", report.work_order));
    if report.attempts == 0 {
        out.push_str("no attempts recorded for this work order\n");
        return out;
    }
    out.push_str(&format!(
        "product      {}   region {}   build {}   station {}\n",
        list(&report.products),
        list(&report.regions),
        list(&report.build_ids),
        list(&report.stations)
    ));
    out.push_str(&format!(
        "units        {} seen of {quantity} ordered: {} passed, {} failed, {} in progress, {} aborted\n",
        report.units,
        report.units_passed,
        report.units_failed,
        report
            .units
            .saturating_sub(report.units_passed + report.units_failed + report.units_aborted),
        report.units_aborted,
    ));
    out.push_str(&format!(
        "yield        {} (first pass {})\n",
        percent(report.yield_percent),
        percent(report.first_pass_yield_percent)
    ));
    out.push_str(&format!(
        "attempts     {}: {} PASS, {} FAIL, {} ABORTED (cut by a stop, not failures), {} in progress, {} failed before the serial was read\n",
        report.attempts,
        report.attempts_passed,
        report.attempts_failed,
        report.attempts_aborted,
        report.attempts_in_progress,
        report.attempts_unidentified
    ));
    if !report.failures_by_code.is_empty() {
        out.push_str("failures by code\n");
        for entry in &report.failures_by_code {
            out.push_str(&format!("  {:<32} {}\n", entry.code, entry.count));
        }
    }
    if !report.flagged_units.is_empty() {
        out.push_str("FLAGGED: units that also passed under another work order\n");
        for unit in &report.flagged_units {
            out.push_str(&format!(
                "  {:<20} also passed under {}\n",
                unit.serial,
                unit.passed_under_other_work_orders.join(", ")
            ));
        }
    }
    out.push_str(&format!(
        "period       {} .. {}\n",
        report
            .first_started_at
            .map_or_else(|| "-".to_string(), |t| t.local()),
        report
            .last_finished_at
            .map_or_else(|| "-".to_string(), |t| t.local())
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use station::digest::Sha256Digest;
    use station::journal::{AttemptOutcome, AttemptStart, Journal};
    use station::mode::Mode;
    use station::verdict::{Failure, UnitRef, Verdict};

    use super::render;

    #[test]
    fn renders_counts_yield_codes_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_795_860_000);
        let start = |work_order: &str| AttemptStart {
            slot: 2,
            port_path: "1-4.2".into(),
            station_id: "st1".into(),
            work_order: work_order.into(),
            work_order_quantity: 50,
            product: "fgdemo".into(),
            region: "00EEA".into(),
            build_id: "B1".into(),
            manifest_sha256: Sha256Digest::of_bytes(b"m"),
            tool_version: "t".into(),
            log_path: None,
            started_at: at,
        };
        let outcome = |verdict| AttemptOutcome {
            verdict,
            images_sent: Vec::new(),
            activation_sha256_found: None,
            verify_method: None,
            verify_bytes_read: None,
            finished_at: at,
        };
        for (work_order, serial, verdict) in [
            ("WO-0", "S1", Verdict::Pass),
            ("WO-1", "S1", Verdict::Pass),
            (
                "WO-1",
                "S2",
                Verdict::Fail(Failure::Timeout {
                    unit: UnitRef {
                        slot: 2,
                        serial: Some("S2".into()),
                    },
                    step: "identify".into(),
                    secs: 60,
                }),
            ),
        ] {
            let id = journal.begin(&start(work_order)).unwrap();
            journal.identified(id, serial, Mode::Fastboot, at).unwrap();
            journal.finish(id, &outcome(verdict)).unwrap();
        }
        let text = render(&journal.report("WO-1").unwrap());
        assert!(
            text.contains(
                "units        2 seen of 50 ordered: 1 passed, 1 failed, 0 in progress, 0 aborted"
            ),
            "{text}"
        );
        assert!(
            text.contains("yield        50.0 % (first pass 50.0 %)"),
            "{text}"
        );
        assert!(text.contains("  TIMEOUT"), "{text}");
        assert!(
            text.contains("S1                   also passed under WO-0"),
            "{text}"
        );
        let json = serde_json::to_value(journal.report("WO-1").unwrap()).unwrap();
        assert_eq!(json["failures_by_code"][0]["code"], "TIMEOUT");
        assert_eq!(json["units_passed"], 1);
        assert!(render(&journal.report("WO-9").unwrap()).contains("no attempts recorded"));
    }
}
