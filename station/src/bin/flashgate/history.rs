//! `flashgate history SERIAL`: every attempt of one unit, from the journal.

use std::process::ExitCode;

use station::journal::AttemptRow;

use crate::journal_arg::JournalArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The unit's serial number.
    pub serial: String,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print a JSON array instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let journal = args.journal.open()?;
    let rows = journal.history(&args.serial)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render(&args.serial, &rows));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn render(serial: &str, rows: &[AttemptRow]) -> String {
    if rows.is_empty() {
        return format!("no attempts recorded for serial {serial}\n");
    }
    let mut out = format!("serial {serial}: {} attempt(s)\n", rows.len());
    for row in rows {
        out.push_str(&format!(
            "#{} {}  {}  work order {} ({} {} build {})  station {} slot {} port {}  {}\n",
            row.id,
            row.started_at,
            row.result,
            row.work_order,
            row.product,
            row.region,
            row.build_id,
            row.station_id,
            row.slot,
            row.port_path,
            row.mode.map_or("-", |m| m.as_str()),
        ));
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
