//! `flashgate unit proof SERIAL` prints (or writes) the signed proofs of a unit that passed;
//! `flashgate unit verify FILE` checks one with the station's public key, as an auditor would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use station::config::StationConfig;
use station::journal::StoredProof;
use station::trust::station_key::{self, is_demo_key, key_id};
use station::trust::unit_proof;

use crate::journal_arg::JournalArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the signed proof(s) of a unit that passed: the JSON statement and its minisign
    /// signature; `--out FILE` writes FILE and FILE.minisig instead.
    Proof(ProofArgs),
    /// Check a proof (FILE and FILE.minisig) with the station's public key: exit 0 only when
    /// the signature is good, whatever changed otherwise.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct ProofArgs {
    /// The unit: its serial, the chip serial it showed in EDL, or its scanned code.
    pub serial: String,
    #[command(flatten)]
    pub journal: JournalArgs,
    /// Only the proof of this journal attempt (a unit that passed more than once has several).
    #[arg(long, value_name = "ID")]
    pub attempt: Option<i64>,
    /// Write the statement to FILE and its signature to FILE.minisig.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The statement (its signature is FILE.minisig unless --sig says otherwise).
    pub file: PathBuf,
    /// The signature file.
    #[arg(long, value_name = "FILE.minisig")]
    pub sig: Option<PathBuf>,
    /// The station's public key: its base64 line (`RW…`) or a minisign .pub file.
    #[arg(long, value_name = "KEY", required_unless_present = "station")]
    pub pubkey: Option<String>,
    /// Take the public key station.yaml pins (`station_key.public_key`).
    #[arg(long, value_name = "station.yaml", conflicts_with = "pubkey")]
    pub station: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Proof(args) => proof(args),
        Command::Verify(args) => verify(args),
    }
}

fn proof(args: ProofArgs) -> anyhow::Result<ExitCode> {
    let journal = args.journal.open()?;
    let proofs: Vec<StoredProof> = journal
        .unit_proofs(&args.serial)?
        .into_iter()
        .filter(|p| args.attempt.is_none_or(|id| p.attempt_id == id))
        .collect();
    if proofs.is_empty() {
        anyhow::bail!(
            "no unit proof for {}{} in {}: only a PASS recorded by a station with a \
             `station_key` has one (`flashgate history {}` lists its attempts)",
            args.serial,
            args.attempt
                .map_or(String::new(), |id| format!(" (attempt {id})")),
            journal.path().display(),
            args.serial
        );
    }
    match args.out {
        Some(out) => {
            let [proof] = proofs.as_slice() else {
                anyhow::bail!(
                    "{} has {} proofs (attempts {}): choose one with --attempt ID",
                    args.serial,
                    proofs.len(),
                    proofs
                        .iter()
                        .map(|p| p.attempt_id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let sig = signature_path(&out);
            std::fs::write(&out, &proof.statement)
                .with_context(|| format!("writing {}", out.display()))?;
            std::fs::write(&sig, &proof.signature)
                .with_context(|| format!("writing {}", sig.display()))?;
            println!(
                "wrote {} and {} (attempt {}); check with `flashgate unit verify {}` or \
                 `minisign -Vm {} -P <station public key>`",
                out.display(),
                sig.display(),
                proof.attempt_id,
                out.display(),
                out.display()
            );
        }
        None => {
            for proof in &proofs {
                println!("# unit proof of attempt {} (statement)", proof.attempt_id);
                print!("{}", proof.statement);
                println!("# its signature (.minisig)");
                print!("{}", proof.signature);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A public key given on the command line: its base64 line, or a minisign .pub file (whose
/// last line is the key).
pub fn public_key_text(given: &str) -> String {
    match std::fs::read_to_string(given) {
        Ok(text) => text.lines().last().unwrap_or_default().to_string(),
        Err(_) => given.to_string(),
    }
}

fn signature_path(file: &Path) -> PathBuf {
    let mut sig = file.as_os_str().to_owned();
    sig.push(".minisig");
    PathBuf::from(sig)
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let key_text = match (&args.pubkey, &args.station) {
        (Some(key), _) => public_key_text(key),
        (None, Some(station)) => StationConfig::load(station)?
            .station_key
            .map(|k| k.public_key)
            .with_context(|| {
                format!(
                    "{} has no `station_key`: give the station's key with --pubkey",
                    station.display()
                )
            })?,
        (None, None) => anyhow::bail!("give --pubkey KEY or --station station.yaml"),
    };
    let key = station_key::parse_public_key(&key_text)?;
    let statement =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let sig_path = args.sig.unwrap_or_else(|| signature_path(&args.file));
    let signature = std::fs::read_to_string(&sig_path)
        .with_context(|| format!("reading {}", sig_path.display()))?;
    match unit_proof::verify(&statement, &signature, &key) {
        Ok(verified) => {
            let p = &verified.proof;
            println!(
                "GOOD signature by station key {}: {} {} (work order {}, region {}, build {}), \
                 activation client {} read back, station {}, attempt {} (chain seq {}), {}",
                key_id(&key),
                p.result,
                p.unit_serial,
                p.work_order,
                p.region,
                p.build_id,
                p.activation_client_sha256,
                p.station_id,
                p.attempt_id,
                p.chain_seq,
                p.finished_at
            );
            println!("trusted comment: {}", verified.trusted_comment);
            if p.demo_key || is_demo_key(&key) {
                println!(
                    "WARNING: signed with flashgate's published DEMO key: anyone can make such a \
                     proof; it proves nothing"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}: {e}", args.file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
