//! `flashgate history SERIAL`: every attempt of one unit, from the journal.

use std::process::ExitCode;

use station::journal::AttemptRow;

use crate::journal_arg::JournalArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The unit's serial number: its fastboot serial, the chip serial it showed in EDL, or its
    /// scanned code (IMEI); attempts linked to it by any of them are listed too.
    pub serial: String,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let journal = args
        .journal
        .open_for(station::fleet::report::FleetSelection::Unit(&args.serial))?;
    let rows = journal.with_attempt_ids(journal.history(&args.serial)?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render(&args.serial, &rows, journal.is_fleet()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The attempts as text. `across_journals`: rows of several stations' journals (the fleet),
/// so each attempt is named by its fleet attempt id (its journal's uid, and its row there).
pub fn render(serial: &str, rows: &[AttemptRow], across_journals: bool) -> String {
    if rows.is_empty() {
        return format!("no attempts recorded for serial {serial}\n");
    }
    let mut out = format!("serial {serial}: {} attempt(s)\n", rows.len());
    for row in rows {
        // The stable failure code beside FAIL: what an engineer greps for and the reports count.
        let result = match &row.failure_code {
            Some(code) => format!("{} {code}", row.result),
            None => row.result.clone(),
        };
        let journal = match (&row.journal_uid, across_journals) {
            (Some(uid), true) => format!(" (journal {uid})"),
            _ => String::new(),
        };
        let line = row.line.as_ref().map_or_else(
            || station::journal::NO_LINE_RECORDED.to_string(),
            |line| format!("line {line}"),
        );
        out.push_str(&format!(
            "#{}{journal} {}  {}  work order {} ({} {} build {})  {line}  station {} slot {} port \
             {}  {}\n",
            row.id,
            row.started_at.local(),
            result,
            row.work_order,
            row.product,
            row.region,
            row.build_id,
            row.station_id,
            row.slot,
            row.port_path,
            row.mode.map_or("-", |m| m.as_str()),
        ));
        let mut identity = Vec::new();
        if let Some(serial) = &row.unit_serial {
            identity.push(format!("serial {serial}"));
        }
        if let Some(chip) = row
            .chip_serial
            .as_ref()
            .filter(|c| row.unit_serial.as_ref() != Some(*c))
        {
            identity.push(format!("EDL chip serial {chip}"));
        }
        if let Some(code) = &row.unit_code {
            let source = row.unit_code_source.as_deref().unwrap_or("recorded");
            identity.push(format!("code {code} ({source})"));
        }
        if let Some(operator) = &row.operator_id {
            identity.push(format!("operator {operator}"));
        }
        if !identity.is_empty() {
            out.push_str(&format!("    {}\n", identity.join("  ")));
        }
        if let Some(message) = &row.failure_message {
            out.push_str(&format!("    {message}\n"));
        }
        if let Some(found) = &row.activation_sha256_found {
            out.push_str(&format!(
                "    activation client {found} ({}; {} bytes read back)\n",
                row.verify_method.as_deref().unwrap_or("-"),
                row.verify_bytes_read
                    .map_or_else(|| "-".to_string(), |n| n.to_string())
            ));
        }
        if row.engineering_mode {
            out.push_str(
                "    ENGINEERING MODE: the manifest's signature was not enforced for this attempt\n",
            );
        } else if let Some(key) = &row.manifest_signed_by {
            out.push_str(&format!("    manifest signed by {key}\n"));
        }
        if let Some(found) = &row.build_id_found {
            let verdict = if *found == row.build_id {
                "the manifest's"
            } else {
                "NOT the manifest's"
            };
            out.push_str(&format!(
                "    build {found} read back from the phone ({verdict}: {})\n",
                row.build_id
            ));
        }
        for image in &row.images_sent {
            out.push_str(&format!(
                "    sent {} -> {} ({} bytes, sha256 {})\n",
                image.file, image.partition, image.bytes, image.sha256
            ));
        }
        if !row.passed_under_other_work_orders.is_empty() {
            out.push_str(&format!(
                "    FLAGGED: already passed under {}\n",
                row.passed_under_other_work_orders.join(", ")
            ));
        }
        if let Some(log) = &row.log_path {
            out.push_str(&format!("    log {log}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use station::config::VerifyMethod;
    use station::digest::Sha256Digest;
    use station::journal::{AttemptOutcome, AttemptStart, ImageSent, Journal};
    use station::mode::Mode;
    use station::timestamp::Timestamp;
    use station::verdict::{Failure, UnitRef, Verdict};

    use super::render;

    #[test]
    fn renders_each_attempt_with_what_was_sent_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_795_860_000);
        let start = AttemptStart {
            slot: 5,
            port_path: "1-4.5".into(),
            station_id: "st1".into(),
            line: Some("line3".into()),
            work_order: "WO-1".into(),
            work_order_quantity: 1,
            product: "fgdemo".into(),
            region: "00WW".into(),
            build_id: "B1".into(),
            manifest_sha256: Sha256Digest::of_bytes(b"m"),
            tool_version: "t".into(),
            log_path: Some("logs/S1-1.log".into()),
            started_at: at,
            operator: None,
            manifest_signed_by: None,
            engineering_mode: false,
        };
        let id = journal.begin(&start).unwrap();
        journal.identified(id, "S1", Mode::Edl, at).unwrap();
        let client = Sha256Digest::of_bytes(b"client");
        journal
            .finish(
                id,
                &AttemptOutcome {
                    verdict: Verdict::Pass,
                    images_sent: vec![ImageSent {
                        partition: "system_a".into(),
                        file: "system".into(),
                        sha256: Sha256Digest::of_bytes(b"system"),
                        bytes: 4096,
                    }],
                    activation_sha256_found: Some(client),
                    build_id_found: None,
                    verify_method: Some(VerifyMethod::HostReadback),
                    verify_bytes_read: Some(131_072),
                    finished_at: at,
                },
            )
            .unwrap();
        let rows = journal.history("S1").unwrap();
        let text = render("S1", &rows, false);
        // People read local time with its offset (whatever zone runs the test); JSON keeps UTC.
        let local = Timestamp::from_unix_ms(1_795_860_000_000).local();
        assert!(
            text.starts_with(&format!(
                "serial S1: 1 attempt(s)\n#1 {local}  PASS  work order WO-1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "activation client {client} (host_readback; 131072 bytes read back)"
            )),
            "{text}"
        );
        assert!(
            text.contains("sent system -> system_a (4096 bytes"),
            "{text}"
        );
        assert!(text.contains("log logs/S1-1.log"), "{text}");
        assert!(
            text.contains("  line line3  station st1 slot 5 port 1-4.5  edl\n"),
            "{text}"
        );
        // Across the fleet, an attempt is named by its journal and its row there.
        let fleet_rows: Vec<_> = rows
            .iter()
            .cloned()
            .map(|row| station::journal::AttemptRow {
                id: 17,
                journal_uid: Some("5f0c".into()),
                line: None,
                ..row
            })
            .collect();
        let text = render("S1", &fleet_rows, true);
        assert!(
            text.contains("\n#17 (journal 5f0c) ")
                && text.contains("  no line recorded  station st1 slot 5"),
            "{text}"
        );

        // A failed attempt shows its code beside FAIL, and its message.
        let failed = journal
            .begin(&AttemptStart {
                started_at: at + Duration::from_secs(60),
                operator: None,
                manifest_signed_by: None,
                engineering_mode: false,
                ..start.clone()
            })
            .unwrap();
        journal
            .identified(failed, "S1", Mode::Fastboot, at)
            .unwrap();
        journal
            .finish(
                failed,
                &AttemptOutcome {
                    verdict: Verdict::Fail(Failure::Disconnected {
                        unit: UnitRef {
                            slot: 5,
                            serial: Some("S1".into()),
                        },
                        step: "flash system_a".into(),
                    }),
                    images_sent: Vec::new(),
                    activation_sha256_found: None,
                    build_id_found: None,
                    verify_method: None,
                    verify_bytes_read: None,
                    finished_at: at,
                },
            )
            .unwrap();
        let text = render("S1", &journal.history("S1").unwrap(), false);
        let second = text.lines().find(|l| l.starts_with("#2 ")).unwrap();
        assert!(
            second.contains("  FAIL DISCONNECTED  work order WO-1"),
            "{text}"
        );
        assert!(text.contains("flash system_a"), "{text}");
        assert_eq!(
            render("S2", &[], false),
            "no attempts recorded for serial S2\n"
        );
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[0]["mode"], "edl");
        assert_eq!(json[0]["started_at"], "2026-11-28T10:00:00.000Z");
        assert_eq!(
            json[0]["images_sent"][0]["sha256"],
            Sha256Digest::of_bytes(b"system").to_hex()
        );
    }
}
