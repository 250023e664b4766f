//! `flashgate fleet …`: the fleet database's schema (`migrate`), the outbox's backlog
//! (`sync-status`, also `flashgate sync status`), and a throwaway local server to try the fleet
//! on one PC (`local-server`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use station::config::{PasswordSource, StationConfig, TlsMode};
use station::fleet::{self, schema, LocalPostgres};

use crate::journal_arg::JournalArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: FleetCommand,
}

#[derive(clap::Subcommand)]
enum FleetCommand {
    /// Create the fleet database's schema, or bring it to this flashgate's version.
    Migrate(Target),
    /// What the station's journal has not shipped to the fleet database yet.
    SyncStatus(SyncStatusArgs),
    /// Start a throwaway PostgreSQL in DIR on a free loopback port, print its URL and keep it
    /// running until Ctrl-C (for trying the fleet on one PC; as root it runs as `postgres`).
    LocalServer {
        /// Where the server's files go (a folder is made inside it, removed at the end).
        #[arg(long, default_value = "target/fleet-local")]
        dir: PathBuf,
    },
}

/// `flashgate sync status`.
#[derive(clap::Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    command: SyncCommand,
}

#[derive(clap::Subcommand)]
enum SyncCommand {
    /// What the station's journal has not shipped to the fleet database yet.
    Status(SyncStatusArgs),
}

/// Which fleet database: station.yaml's `fleet`, or a URL.
#[derive(clap::Args)]
pub struct Target {
    /// The station whose `fleet` section names the database.
    #[arg(long, value_name = "station.yaml", required_unless_present = "url")]
    station: Option<PathBuf>,
    /// The database's URL (no password in it; PGPASSWORD is read if set).
    #[arg(long, conflicts_with = "station")]
    url: Option<String>,
}

impl Target {
    pub fn connect(&self, check_schema: bool) -> anyhow::Result<postgres::Client> {
        let (url, password, tls) = match (&self.url, &self.station) {
            (Some(url), _) => (url.clone(), env_password(), env_tls()),
            (None, Some(station)) => {
                let station = StationConfig::load(station)?;
                let fleet = station.fleet.with_context(|| {
                    format!(
                        "{} has no `fleet` section: name the database there or pass --url",
                        station.source.display()
                    )
                })?;
                (fleet.url, fleet.password, fleet.tls)
            }
            (None, None) => anyhow::bail!("give --station station.yaml or --url URL"),
        };
        let mut client = fleet::connect_url(&url, &password, &tls, "flashgate cli")?;
        if check_schema {
            schema::check(&mut client)?;
        }
        Ok(client)
    }
}

/// A URL given on the command line is reached over TLS, verified against the CA file
/// PGSSLROOTCERT names, when that is set (as libpq's tools read it).
pub fn env_tls() -> TlsMode {
    match std::env::var_os("PGSSLROOTCERT") {
        Some(file) if !file.is_empty() => TlsMode::Verify {
            ca_file: file.into(),
        },
        _ => TlsMode::Off,
    }
}

/// A URL given on the command line takes its password the way libpq's tools do.
pub fn env_password() -> PasswordSource {
    if std::env::var_os("PGPASSWORD").is_some() {
        PasswordSource::Env("PGPASSWORD".into())
    } else {
        PasswordSource::None
    }
}

#[derive(clap::Args)]
pub struct SyncStatusArgs {
    #[command(flatten)]
    journal: JournalArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        FleetCommand::Migrate(target) => {
            let mut client = target.connect(false)?;
            let (before, after) = schema::migrate(&mut client)?;
            if before == after {
                println!("fleet database schema is v{after}: nothing to do");
            } else {
                println!("fleet database schema: v{before} -> v{after}");
            }
            Ok(ExitCode::SUCCESS)
        }
        FleetCommand::SyncStatus(args) => sync_status(args),
        FleetCommand::LocalServer { dir } => local_server(&dir),
    }
}

pub fn run_sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SyncCommand::Status(args) => sync_status(args),
    }
}

/// How long `sync status` waits for the fleet database (connecting and its one query).
const FLEET_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn sync_status(args: SyncStatusArgs) -> anyhow::Result<ExitCode> {
    let journal = args.journal.open_journal()?;
    let uid = journal.uid()?;
    let backlog = journal.backlog()?;
    let local = |ms: i64| station::timestamp::Timestamp::from_unix_ms(ms).local();
    let oldest = backlog.oldest_finished_ms.map(local);
    // The journal says what it shipped; the fleet database, asked with a bound on the time,
    // says what it holds of this journal (they differ when the database lost rows, e.g. a
    // restore from an older backup).
    let fleet = args.journal.fleet_target(true)?.map(|target| {
        fleet::holdings::holdings(
            &target.url,
            &target.password,
            &target.tls,
            &uid,
            FLEET_QUERY_TIMEOUT,
        )
    });
    if args.json {
        let fleet = fleet.as_ref().map(|answer| match answer {
            Ok(held) => serde_json::json!({
                "reachable": true,
                "rows": held.rows,
                "last_row": held.last_row,
                "last_shipped": held.last_shipped_ms.map(local),
            }),
            Err(e) => serde_json::json!({
                "reachable": false,
                "error": e.to_string(),
            }),
        });
        println!(
            "{}",
            serde_json::json!({
                "journal": journal.path(),
                "journal_uid": uid,
                "backlog": backlog.rows,
                "shipped": backlog.shipped,
                "last_shipped_row": backlog.last_shipped_row,
                "oldest_unshipped": oldest,
                "fleet": fleet,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "journal {} (uid {uid}): {} finished attempt(s) not yet in the fleet database{}, {} \
         shipped{}",
        journal.path().display(),
        backlog.rows,
        oldest.map_or_else(String::new, |t| format!(" (oldest finished {t})")),
        backlog.shipped,
        backlog
            .last_shipped_row
            .map_or_else(String::new, |row| format!(" (last row {row})")),
    );
    match &fleet {
        None => println!(
            "fleet database: none named (station.yaml has no `fleet` section; --fleet URL asks one)"
        ),
        Some(Ok(held)) => {
            println!(
                "fleet database: holds {} row(s) of this journal{}",
                held.rows,
                match (held.last_row, held.last_shipped_ms) {
                    (Some(row), Some(ms)) => format!(" (last row {row}, stored {})", local(ms)),
                    (Some(row), None) => format!(" (last row {row})"),
                    _ => String::new(),
                }
            );
            if held.rows < backlog.shipped {
                println!(
                    "WARNING: the journal marked {} row(s) shipped but the fleet database holds \
                     {}: it lost rows (restored from an older backup?) — the journal still has \
                     them all",
                    backlog.shipped, held.rows
                );
            }
        }
        Some(Err(e)) => println!("fleet database: NOT REACHED: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn local_server(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let server = LocalPostgres::start_in(dir)?;
    let mut client = fleet::connect_url(
        &server.url(),
        &PasswordSource::None,
        &TlsMode::Off,
        "flashgate cli",
    )?;
    schema::migrate(&mut client)?;
    drop(client);
    println!(
        "fleet database running: {}\n(schema created; files in {}; Ctrl-C stops it and removes them)",
        server.url(),
        server.root().display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async { tokio::signal::ctrl_c().await })?;
    drop(server);
    Ok(ExitCode::SUCCESS)
}
