//! `flashgate report --work-order ID`: counts, yield, failures by code and over-quantity units,
//! from the journal; `--csv` exports one row per attempt for a line's records.

use std::io::Write;
use std::process::ExitCode;

use station::journal::{
    AttemptRow, ChainReport, ExportedAttempt, LineCounts, ReportFilter, WorkOrderReport,
};

use crate::journal_arg::{JournalArgs, Opened};
use crate::time_arg::{parse_instant, DayEdge};

#[derive(clap::Args)]
pub struct Args {
    /// Work order id, e.g. WO-1187.
    #[arg(long = "work-order", value_name = "ID")]
    pub work_order: String,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print one JSON object instead of text.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// One CSV row per attempt (RFC 4180, header first) instead of the summary.
    #[arg(long)]
    pub csv: bool,
    /// Only attempts started at or after this time: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]`
    /// (local time), or with an offset (`Z`, `+08:00`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only attempts started before this time (same forms; a date alone includes that day).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Only attempts made by this station (its `station_id`).
    #[arg(long = "station-id", value_name = "ID")]
    pub station_id: Option<String>,
    /// Only attempts made on this production line (station.yaml `line`).
    #[arg(long, value_name = "NAME")]
    pub line: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let filter = ReportFilter {
        station_id: args.station_id.clone(),
        line: args.line.clone(),
        since: args
            .since
            .as_deref()
            .map(|t| parse_instant(t, DayEdge::Start))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--since: {e}"))?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_instant(t, DayEdge::End))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--until: {e}"))?,
    };
    let journal = args
        .journal
        .open_for(station::fleet::report::FleetSelection::WorkOrder(
            &args.work_order,
        ))?;
    // The whole journal's chains, whatever the filter: a deleted row belongs to no work order.
    // Fleet rows are a copy: each station's own journal holds (and checks) its chain.
    let chain = match &journal {
        Opened::Journal(journal) => Some(journal.verify_chain()?),
        Opened::Fleet(_) => None,
    };
    let mut out = std::io::stdout().lock();
    if args.csv {
        let mut attempts = journal.export(&args.work_order, &filter)?;
        // The fleet's attempt id (journal uid, row) of each, not a scratch copy's numbering.
        let rows = journal.with_attempt_ids(attempts.iter().map(|a| a.row.clone()).collect())?;
        for (attempt, row) in attempts.iter_mut().zip(rows) {
            attempt.row = row;
        }
        out.write_all(csv(&attempts, chain.as_ref()).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = journal.report_filtered(&args.work_order, &filter)?;
    if args.json {
        #[derive(serde::Serialize)]
        struct WithChain<'a> {
            #[serde(flatten)]
            report: &'a WorkOrderReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            journal_chain: Option<ChainSummary>,
        }
        let json = WithChain {
            report: &report,
            journal_chain: chain.as_ref().map(ChainSummary::of),
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        out.write_all(render_filter(&filter).as_bytes())?;
        out.write_all(render(&report).as_bytes())?;
        if let Some(chain) = &chain {
            out.write_all(render_chain(chain).as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The chain's state in `report --json`; `journal verify --json` has the details.
#[derive(serde::Serialize)]
struct ChainSummary {
    intact: bool,
    chained: u64,
    before_chain: u64,
    problems: usize,
}

impl ChainSummary {
    fn of(chain: &ChainReport) -> Self {
        Self {
            intact: chain.intact(),
            chained: chain.chained,
            before_chain: chain.before_chain,
            problems: chain.problems.len(),
        }
    }
}

/// One line: whether the journal's hash chain is whole.
pub fn render_chain(chain: &ChainReport) -> String {
    if chain.intact() {
        format!(
            "chain        intact ({} attempts chained, {} from before the chain)\n",
            chain.chained, chain.before_chain
        )
    } else {
        format!(
            "chain        BROKEN: {} problem(s) in the journal — `flashgate journal verify` names \
             each row\n",
            chain.problems.len()
        )
    }
}

/// The CSV's `chain` column: `ok` (in an intact place of the chain), `open` (no verdict yet),
/// `before_chain` (finished before the journal chained), `broken` (named by `journal verify`);
/// empty for fleet rows (each station's journal holds its chain).
fn chain_status(chain: Option<&ChainReport>, row: &AttemptRow) -> &'static str {
    let Some(chain) = chain else {
        return "";
    };
    if chain.names(row.id) {
        "broken"
    } else if row.result == "IN_PROGRESS" {
        "open"
    } else if chain.is_chained(row.id) {
        "ok"
    } else {
        "before_chain"
    }
}

/// The CSV's columns, in order. Append new columns at the end: a line's scripts read them by
/// position as often as by name. `attempt_id` is the row in the journal `journal_uid` names
/// (the pair is the fleet's attempt id); `line` is empty when the attempt recorded none.
pub const CSV_HEADER: [&str; 30] = [
    "attempt_id",
    "work_order",
    "station_id",
    "slot",
    "port_path",
    "unit_serial",
    "mode",
    "product",
    "region",
    "build_id",
    "result",
    "failure_code",
    "failure_message",
    "started_at",
    "finished_at",
    "duration_s",
    "verify_method",
    "activation_sha256_found",
    "passed_under_other_work_orders",
    "over_quantity",
    "chip_serial",
    "operator_id",
    "unit_code",
    "unit_code_source",
    "build_id_found",
    "manifest_signed_by",
    "engineering_mode",
    "chain",
    "line",
    "journal_uid",
];

/// RFC 4180: CRLF line ends; a field holding a comma, a quote, CR or LF is quoted, quotes
/// doubled. Times are RFC 3339 UTC, as the journal holds them.
pub fn csv(attempts: &[ExportedAttempt], chain: Option<&ChainReport>) -> String {
    let mut out = String::new();
    push_record(&mut out, CSV_HEADER.iter().map(|h| h.to_string()));
    for attempt in attempts {
        let row = &attempt.row;
        let duration = row.finished_at.map(|end| {
            format!(
                "{:.3}",
                (end.unix_ms() - row.started_at.unix_ms()) as f64 / 1000.0
            )
        });
        push_record(
            &mut out,
            [
                row.id.to_string(),
                row.work_order.clone(),
                row.station_id.clone(),
                row.slot.to_string(),
                row.port_path.clone(),
                row.unit_serial.clone().unwrap_or_default(),
                row.mode.map_or(String::new(), |m| m.as_str().to_string()),
                row.product.clone(),
                row.region.clone(),
                row.build_id.clone(),
                row.result.clone(),
                row.failure_code.clone().unwrap_or_default(),
                row.failure_message.clone().unwrap_or_default(),
                row.started_at.to_string(),
                row.finished_at.map(|t| t.to_string()).unwrap_or_default(),
                duration.unwrap_or_default(),
                row.verify_method.clone().unwrap_or_default(),
                row.activation_sha256_found.clone().unwrap_or_default(),
                row.passed_under_other_work_orders.join(" "),
                attempt.over_quantity.to_string(),
                row.chip_serial.clone().unwrap_or_default(),
                row.operator_id.clone().unwrap_or_default(),
                row.unit_code.clone().unwrap_or_default(),
                row.unit_code_source.clone().unwrap_or_default(),
                row.build_id_found.clone().unwrap_or_default(),
                row.manifest_signed_by.clone().unwrap_or_default(),
                row.engineering_mode.to_string(),
                chain_status(chain, row).to_string(),
                row.line.clone().unwrap_or_default(),
                row.journal_uid.clone().unwrap_or_default(),
            ]
            .into_iter(),
        );
    }
    out
}

fn push_record(out: &mut String, fields: impl Iterator<Item = String>) {
    for (index, field) in fields.enumerate() {
        if index > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&field);
        }
    }
    out.push_str("\r\n");
}

fn render_filter(filter: &ReportFilter) -> String {
    if filter.is_empty() {
        return String::new();
    }
    let mut parts = Vec::new();
    if let Some(id) = &filter.station_id {
        parts.push(format!("station {id}"));
    }
    if let Some(line) = &filter.line {
        parts.push(format!("line {line}"));
    }
    if let Some(since) = filter.since {
        parts.push(format!("from {}", since.local()));
    }
    if let Some(until) = filter.until {
        parts.push(format!("before {}", until.local()));
    }
    format!("attempts     {} only\n", parts.join(", "))
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
    if report.counts.attempts == 0 {
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
        report.counts.units,
        report.counts.units_passed,
        report.counts.units_failed,
        report
            .counts
            .units
            .saturating_sub(report.counts.units_passed + report.counts.units_failed + report.counts.units_aborted),
        report.counts.units_aborted,
    ));
    out.push_str(&format!(
        "yield        {} (first pass {})\n",
        percent(report.counts.yield_percent),
        percent(report.counts.first_pass_yield_percent)
    ));
    out.push_str(&format!(
        "attempts     {}: {} PASS, {} FAIL, {} ABORTED (cut by a stop, not failures), {} in progress, {} failed before the serial was read\n",
        report.counts.attempts,
        report.counts.attempts_passed,
        report.counts.attempts_failed,
        report.counts.attempts_aborted,
        report.counts.attempts_in_progress,
        report.counts.attempts_unidentified
    ));
    if !report.counts.failures_by_code.is_empty() {
        out.push_str("failures by code\n");
        for entry in &report.counts.failures_by_code {
            out.push_str(&format!("  {:<32} {}\n", entry.code, entry.count));
        }
    }
    out.push_str(&render_by_line(&report.by_line));
    if !report.over_quantity.is_empty() {
        out.push_str(&format!(
            "OVER QUANTITY: {} units passed under this order, {quantity} ordered; these passed \
             after it was complete:\n",
            report.units_passed_in_order
        ));
        for serial in &report.over_quantity {
            out.push_str(&format!("  {serial}\n"));
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

/// One line per production line: its units, yield, attempts, stations and failure codes.
fn render_by_line(lines: &[LineCounts]) -> String {
    let mut out = String::from("by line\n");
    for group in lines {
        let counts = &group.counts;
        out.push_str(&format!(
            "  {:<20} units {} passed, {} failed   yield {}   attempts {} ({} PASS, {} FAIL, {} \
             ABORTED)   station {}\n",
            group.label,
            counts.units_passed,
            counts.units_failed,
            percent(counts.yield_percent),
            counts.attempts,
            counts.attempts_passed,
            counts.attempts_failed,
            counts.attempts_aborted,
            list(&group.stations),
        ));
        if !counts.failures_by_code.is_empty() {
            let codes: Vec<String> = counts
                .failures_by_code
                .iter()
                .map(|c| format!("{} {}", c.code, c.count))
                .collect();
            out.push_str(&format!("  {:<20} failures {}\n", "", codes.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use station::digest::Sha256Digest;
    use station::journal::{AttemptOutcome, AttemptStart, Journal};
    use station::mode::Mode;
    use station::verdict::{Failure, UnitRef, Verdict};

    use super::{csv, render, CSV_HEADER};
    use station::journal::ReportFilter;
    use station::timestamp::Timestamp;

    /// Three attempts of WO-7 (quantity 1): S1 passes on st1 (line L1), S2 fails on st2 (no line
    /// recorded) with a message
    /// holding a comma, a quote and a newline, S3 passes on st1 an hour later (over quantity).
    fn journal_with_three_attempts(dir: &std::path::Path) -> Journal {
        let mut journal = Journal::open(&dir.join("j.sqlite")).unwrap();
        let base = UNIX_EPOCH + Duration::from_secs(1_795_860_000);
        let attempts = [
            ("st1", "S1", 0, None),
            ("st2", "S2", 60, Some("slot 2: \"odd\", said\nthe phone")),
            ("st1", "S3", 3600, None),
        ];
        for (station, serial, offset, failure) in attempts {
            let at = base + Duration::from_secs(offset);
            let id = journal
                .begin(&AttemptStart {
                    slot: 2,
                    port_path: "1-4.2".into(),
                    station_id: station.into(),
                    line: (station == "st1").then(|| "L1".into()),
                    work_order: "WO-7".into(),
                    work_order_quantity: 1,
                    product: "fgdemo".into(),
                    region: "00EEA".into(),
                    build_id: "B1".into(),
                    manifest_sha256: Sha256Digest::of_bytes(b"m"),
                    tool_version: "t".into(),
                    log_path: None,
                    started_at: at,
                    operator: None,
                    manifest_signed_by: None,
                    engineering_mode: false,
                })
                .unwrap();
            journal.identified(id, serial, Mode::Fastboot, at).unwrap();
            let verdict = match failure {
                None => Verdict::Pass,
                Some(why) => Verdict::Fail(Failure::Timeout {
                    unit: UnitRef {
                        slot: 2,
                        serial: Some(serial.into()),
                    },
                    step: why.into(),
                    secs: 60,
                }),
            };
            journal
                .finish(
                    id,
                    &AttemptOutcome {
                        verdict,
                        images_sent: Vec::new(),
                        activation_sha256_found: None,
                        build_id_found: None,
                        verify_method: None,
                        verify_bytes_read: None,
                        finished_at: at + Duration::from_millis(1500),
                    },
                )
                .unwrap();
        }
        journal
    }

    #[test]
    fn csv_has_a_stable_header_rfc4180_quoting_and_flags_over_quantity() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_with_three_attempts(dir.path());
        let chain = journal.verify_chain().unwrap();
        let text = csv(
            &journal.export("WO-7", &ReportFilter::default()).unwrap(),
            Some(&chain),
        );
        // The header is an interface: changing it breaks a line's scripts.
        assert!(text.starts_with(
            "attempt_id,work_order,station_id,slot,port_path,unit_serial,mode,product,region,\
             build_id,result,failure_code,failure_message,started_at,finished_at,duration_s,\
             verify_method,activation_sha256_found,passed_under_other_work_orders,\
             over_quantity,chip_serial,operator_id,unit_code,unit_code_source,build_id_found,\
             manifest_signed_by,engineering_mode,chain,line,journal_uid\r\n"
        ));
        let records: Vec<&str> = text.split("\r\n").collect();
        // Header, three attempts, and the empty tail after the last CRLF.
        assert_eq!(records.len(), 5, "{text}");
        assert!(
            records[1].starts_with("1,WO-7,st1,2,1-4.2,S1,fastboot,"),
            "{text}"
        );
        assert!(
            records[1].ends_with(
                ",PASS,,,2026-11-28T10:00:00.000Z,2026-11-28T10:00:01.500Z,1.500,,,,false,,,,,,,false,ok,L1,"
            ),
            "{text}"
        );
        // The failure message is one quoted field with its quotes doubled and its newline kept.
        assert!(records[2].contains(",FAIL,TIMEOUT,\""), "{text}");
        assert!(
            records[2].contains("\"\"odd\"\", said\nthe phone"),
            "{text}"
        );
        assert!(
            records[3].starts_with("3,WO-7,st1,")
                && records[3].ends_with(",true,,,,,,,false,ok,L1,"),
            "{text}"
        );
        assert_eq!(CSV_HEADER.len(), records[0].split(',').count());

        let report = journal.report("WO-7").unwrap();
        assert_eq!(report.over_quantity, ["S3"]);
        let text = render(&report);
        assert!(
            text.contains("OVER QUANTITY: 2 units passed under this order, 1 ordered"),
            "{text}"
        );
        assert!(text.contains("\n  S3\n"), "{text}");
    }

    #[test]
    fn counts_are_grouped_by_line_and_a_line_can_be_kept_alone() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_with_three_attempts(dir.path());
        let report = journal.report("WO-7").unwrap();
        let lines: Vec<(Option<&str>, &str, u64, u64, u64)> = report
            .by_line
            .iter()
            .map(|g| {
                (
                    g.line.as_deref(),
                    g.label.as_str(),
                    g.counts.attempts,
                    g.counts.units_passed,
                    g.counts.units_failed,
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (Some("L1"), "L1", 2, 2, 0),
                (None, "no line recorded", 1, 0, 1)
            ]
        );
        assert_eq!(report.by_line[1].counts.failures_by_code[0].code, "TIMEOUT");
        let text = render(&report);
        assert!(
            text.contains(
                "by line\n  L1                   units 2 passed, 0 failed   yield 100.0 %   \
                 attempts 2 (2 PASS, 0 FAIL, 0 ABORTED)   station st1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  no line recorded     units 0 passed, 1 failed   yield 0.0 %")
                && text.contains("failures TIMEOUT 1\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["by_line"][0]["line"], "L1");
        assert_eq!(json["by_line"][0]["units_passed"], 2);
        assert_eq!(json["by_line"][1]["line"], serde_json::Value::Null);
        assert_eq!(json["by_line"][1]["label"], "no line recorded");
        // `--line L1`: its attempts only; the over-quantity check still counts the whole order.
        let l1 = ReportFilter {
            line: Some("L1".into()),
            ..ReportFilter::default()
        };
        let report = journal.report_filtered("WO-7", &l1).unwrap();
        assert_eq!((report.counts.attempts, report.by_line.len()), (2, 1));
        assert_eq!(report.over_quantity, ["S3"]);
        assert!(render(&report).starts_with("work order   WO-7\n"));
        let rows = journal.export("WO-7", &l1).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(csv(&rows, None)
            .lines()
            .skip(1)
            .all(|r| r.ends_with(",L1,")));
        let none = ReportFilter {
            line: Some("L2".into()),
            ..ReportFilter::default()
        };
        assert_eq!(journal.export("WO-7", &none).unwrap().len(), 0);
    }

    #[test]
    fn filters_keep_a_station_and_a_time_window() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_with_three_attempts(dir.path());
        let base = 1_795_860_000_000i64;
        let serials = |filter: ReportFilter| -> Vec<String> {
            journal
                .export("WO-7", &filter)
                .unwrap()
                .into_iter()
                .map(|a| a.row.unit_serial.unwrap())
                .collect()
        };
        let st1 = ReportFilter {
            station_id: Some("st1".into()),
            ..ReportFilter::default()
        };
        assert_eq!(serials(st1), ["S1", "S3"]);
        let first_hour = ReportFilter {
            since: Some(Timestamp::from_unix_ms(base)),
            until: Some(Timestamp::from_unix_ms(base + 3_600_000)),
            ..ReportFilter::default()
        };
        assert_eq!(serials(first_hour.clone()), ["S1", "S2"]);
        let later = ReportFilter {
            since: Some(Timestamp::from_unix_ms(base + 61_000)),
            ..ReportFilter::default()
        };
        assert_eq!(serials(later.clone()), ["S3"]);
        // A window narrows the counts, not the order's over-quantity check.
        let report = journal.report_filtered("WO-7", &later).unwrap();
        assert_eq!(report.counts.attempts, 1);
        assert_eq!(report.counts.units_passed, 1);
        assert_eq!(report.units_passed_in_order, 2);
        assert_eq!(report.over_quantity, ["S3"]);
        let report = journal.report_filtered("WO-7", &first_hour).unwrap();
        assert_eq!(
            (report.counts.attempts, report.counts.attempts_failed),
            (2, 1)
        );
    }

    #[test]
    fn renders_counts_yield_codes_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_795_860_000);
        let start = |work_order: &str| AttemptStart {
            slot: 2,
            port_path: "1-4.2".into(),
            station_id: "st1".into(),
            line: None,
            work_order: work_order.into(),
            work_order_quantity: 50,
            product: "fgdemo".into(),
            region: "00EEA".into(),
            build_id: "B1".into(),
            manifest_sha256: Sha256Digest::of_bytes(b"m"),
            tool_version: "t".into(),
            log_path: None,
            started_at: at,
            operator: None,
            manifest_signed_by: None,
            engineering_mode: false,
        };
        let outcome = |verdict| AttemptOutcome {
            verdict,
            images_sent: Vec::new(),
            activation_sha256_found: None,
            build_id_found: None,
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
