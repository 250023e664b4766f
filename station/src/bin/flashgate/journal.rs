//! `flashgate journal verify`: walks the journal's hash chain and names every row that was
//! edited, deleted, reordered or inserted by hand since its verdict.

use std::process::ExitCode;

use station::config::StationConfig;
use station::journal::{ChainReport, Journal};
use station::trust::station_key;

use crate::journal_arg::JournalArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check the journal's hash chain: exit 0 when every finished attempt is where the station
    /// put it, unchanged; exit 1 naming each row that is not. Opens the journal read-only.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Check the unit proofs' signatures with this station public key (base64 line or .pub
    /// file); with --station, the key station.yaml pins is used.
    #[arg(long, value_name = "KEY")]
    pub pubkey: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Verify(args) => verify(args),
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let path = args.journal.path()?;
    let journal = Journal::open_read_only(&path)?;
    let key_text = match (&args.pubkey, &args.journal.station) {
        (Some(key), _) => Some(crate::unit::public_key_text(key)),
        (None, Some(station)) => StationConfig::load(station)?
            .station_key
            .map(|k| k.public_key),
        (None, None) => None,
    };
    let key = key_text
        .as_deref()
        .map(station_key::parse_public_key)
        .transpose()?;
    let report = journal.verify_chain_with_key(key.as_ref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&path, &report));
        let signatures = match &key {
            Some(key) => format!("signatures checked with key {}", station_key::key_id(key)),
            None => "signatures not checked (give --pubkey or --station)".to_string(),
        };
        println!(
            "unit proofs: {} held against their rows, {signatures}; {} chained pass(es) without \
             one (a station without a `station_key` signs none)",
            report.proofs, report.passes_without_proof
        );
    }
    Ok(if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn render(path: &std::path::Path, report: &ChainReport) -> String {
    let mut out = format!("journal {}\n", path.display());
    let counts = format!(
        "{} attempts chained, {} from before the chain, {} without a verdict yet",
        report.chained, report.before_chain, report.open
    );
    if report.intact() {
        out.push_str(&format!("chain intact: {counts}\n"));
    } else {
        out.push_str(&format!(
            "CHAIN BROKEN: {} problem(s) ({counts})\n",
            report.problems.len()
        ));
        for problem in &report.problems {
            out.push_str(&format!("  {problem}\n"));
        }
    }
    for head in &report.heads {
        // Rows deleted from the end leave a shorter chain that is whole: the head is what to
        // compare with a copy kept elsewhere.
        out.push_str(&format!(
            "head of station {}: seq {}, attempt {}, link {}\n",
            head.station_id, head.seq, head.attempt_id, head.link
        ));
    }
    out
}
