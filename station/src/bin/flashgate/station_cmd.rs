//! `flashgate station keygen`: the station's signing key pair for its unit proofs.

use std::path::PathBuf;
use std::process::ExitCode;

use station::trust::station_key::{self, key_id, public_key_line};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make the station's signing key: a minisign secret key without a password at FILE (mode
    /// 0600, never overwritten) and its public key at FILE.pub; prints the station.yaml lines.
    Keygen(KeygenArgs),
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where the secret key goes (e.g. /etc/flashgate/station.key).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Keygen(args) => {
            let public = station_key::generate(&args.out)?;
            println!(
                "wrote the secret key {} (readable only by you: chown it to the station's \
                 user) and the public key {}.pub (key id {})",
                args.out.display(),
                args.out.display(),
                key_id(&public)
            );
            println!("pin it in station.yaml:");
            println!("station_key:");
            println!("  public_key: {}", public_key_line(&public));
            println!("  secret_key_file: {}", args.out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
