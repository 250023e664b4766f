//! `flashgate bench fleet`: the outbox to the fleet database at fleet scale (10 stations × 32
//! phones by default). Two figures:
//! - drain throughput: every station starts with a backlog of finished attempts (a database
//!   that was down for a shift); all their sync threads start at once; attempt rows committed
//!   in the fleet database per second until every backlog is empty;
//! - verdict-to-visible delay: every station commits verdicts as a line does (its phones
//!   finishing spread over each round) and wakes its sync; the delay from each verdict's
//!   journal commit to its row's insert in the fleet database (`shipped_at`, the inserting
//!   transaction's start: the row is visible a commit later), median, p95 and max.
//!
//! Against a throwaway local PostgreSQL (Debian's `postgresql`) unless `--url` names one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use station::config::{FleetConfig, OfflinePolicy, VerifyMethod};
use station::digest::Sha256Digest;
use station::events::RecordingSink;
use station::fleet::{schema, LocalPostgres, SyncHandle};
use station::journal::{
    AttemptOutcome, AttemptStart, CompletedAttempt, ImageSent, Journal, MilestoneTimes,
};
use station::mode::Mode;
use station::verdict::Verdict;

#[derive(clap::Args)]
pub struct FleetArgs {
    /// Stations, each with its own journal and sync thread.
    #[arg(long, default_value_t = 10)]
    stations: u32,
    /// Phones per station (one verdict each per round).
    #[arg(long, default_value_t = 32)]
    phones: u32,
    /// Rounds of verdicts in the delay run; the drain run's backlog is 10 times as many.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds one round of a station's verdicts is spread over.
    #[arg(long, default_value_t = 2.0)]
    round_secs: f64,
    /// A fleet database to use (its schema is migrated; the benchmark's rows stay in it).
    #[arg(long)]
    url: Option<String>,
    /// Where a local server's files go.
    #[arg(long, default_value = "target/bench-fleet")]
    dir: PathBuf,
}

pub fn fleet(a: FleetArgs) -> anyhow::Result<ExitCode> {
    let local = match &a.url {
        Some(_) => None,
        None => Some(LocalPostgres::start_in(&a.dir)?),
    };
    let url = a
        .url
        .clone()
        .or_else(|| local.as_ref().map(LocalPostgres::url))
        .context("no database")?;
    let config = FleetConfig {
        url: url.clone(),
        password: crate::fleet::env_password(),
        offline: OfflinePolicy::Stop,
        tls: crate::fleet::env_tls(),
        place_lease: station::config::DEFAULT_PLACE_LEASE,
    };
    let mut client = station::fleet::connect_unchecked(&config, "flashgate bench")?;
    schema::migrate(&mut client)?;
    let scratch = tempfile::tempdir_in(std::env::temp_dir())?;

    // 1. A backlog drained by every station at once.
    let backlog_rounds = a.rounds * 10;
    let mut journals = Vec::new();
    for s in 0..a.stations {
        let path = scratch.path().join(format!("drain-{s}.sqlite"));
        let mut journal = Journal::open(&path)?;
        for round in 0..backlog_rounds {
            for phone in 0..a.phones {
                journal.record(&attempt(
                    &format!("drain-st{s}"),
                    phone,
                    round,
                    SystemTime::now(),
                ))?;
            }
        }
        journals.push(path);
    }
    let total = u64::from(a.stations * a.phones * backlog_rounds);
    let started = Instant::now();
    let handles: Vec<SyncHandle> = journals
        .iter()
        .enumerate()
        .map(|(s, path)| start_sync(&config, path, s))
        .collect::<Result<_, _>>()?;
    wait_drained(&handles, Duration::from_secs(600))?;
    let drain = started.elapsed();
    drop(handles);
    let rows_per_s = total as f64 / drain.as_secs_f64();

    // 2. Verdicts as a line makes them, each station's sync running.
    let mut writers = Vec::new();
    let mut handles = Vec::new();
    for s in 0..a.stations {
        let path = scratch.path().join(format!("live-{s}.sqlite"));
        Journal::open(&path)?;
        let handle = start_sync(&config, &path, s as usize)?;
        let waker = handle.waker();
        handles.push(handle);
        let (phones, rounds, round_secs) = (a.phones, a.rounds, a.round_secs);
        writers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut journal = Journal::open(&path)?;
            let gap = Duration::from_secs_f64(round_secs / f64::from(phones));
            for round in 0..rounds {
                for phone in 0..phones {
                    std::thread::sleep(gap);
                    let now = SystemTime::now();
                    journal.record(&attempt(&format!("live-st{s}"), phone, round, now))?;
                    waker.rows_committed();
                }
            }
            Ok(())
        }));
    }
    for writer in writers {
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
    }
    wait_drained(&handles, Duration::from_secs(120))?;
    drop(handles);
    let delays: Vec<f64> = client
        .query(
            "SELECT (extract(epoch FROM shipped_at) * 1000 - finished_at_ms)::float8
             FROM attempts WHERE station_id LIKE 'live-st%' ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let pick = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!(
        "fleet sync, {} stations x {} phones (PostgreSQL at {url})",
        a.stations, a.phones
    );
    println!(
        "drain: {total} attempt rows from {} backlogs in {:.2} s = {rows_per_s:.0} rows/s",
        a.stations,
        drain.as_secs_f64()
    );
    println!(
        "verdict to fleet row: {} verdicts, median {:.0} ms, p95 {:.0} ms, max {:.0} ms \
         ({:.1} verdicts/s across the fleet)",
        delays.len(),
        pick(0.5),
        pick(0.95),
        pick(1.0),
        f64::from(a.stations * a.phones) / a.round_secs
    );
    Ok(ExitCode::SUCCESS)
}

fn start_sync(
    config: &FleetConfig,
    journal: &std::path::Path,
    station: usize,
) -> anyhow::Result<SyncHandle> {
    Ok(SyncHandle::start(
        config.clone(),
        journal.to_path_buf(),
        format!("bench-st{station}"),
        Arc::new(RecordingSink::new()),
    )?)
}

fn wait_drained(handles: &[SyncHandle], limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let states: Vec<_> = handles.iter().map(|h| h.status().snapshot()).collect();
        if states.iter().all(|s| s.reachable && s.backlog == 0) {
            return Ok(());
        }
        if Instant::now() > until {
            anyhow::bail!(
                "the backlogs did not drain in {} s: {states:?}",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One passed attempt as a station records it.
fn attempt(station: &str, phone: u32, round: u32, at: SystemTime) -> CompletedAttempt {
    let serial = format!("{station}-{round:04}-{phone:02}");
    let started = at
        .checked_sub(Duration::from_secs(60))
        .unwrap_or(UNIX_EPOCH);
    CompletedAttempt {
        start: AttemptStart {
            slot: u16::try_from(phone % 64 + 1).unwrap_or(1),
            port_path: format!("1-4.{}", phone + 1),
            station_id: station.to_string(),
            line: None,
            work_order: "WO-BENCH".into(),
            work_order_quantity: 1_000_000,
            product: "fgdemo".into(),
            region: "00EEA".into(),
            build_id: "FGDEMO.00EEA.1".into(),
            manifest_sha256: Sha256Digest::of_bytes(b"manifest"),
            tool_version: format!("flashgate {}", env!("CARGO_PKG_VERSION")),
            log_path: Some(format!("logs/units/{serial}-1.log").into()),
            started_at: started,
            operator: None,
            manifest_signed_by: Some("bench (key id 0)".into()),
            engineering_mode: false,
        },
        serial: Some(serial),
        mode: Some(Mode::Fastboot),
        phases: MilestoneTimes {
            identified: Some(started),
            flash_started: Some(started),
            flash_done: Some(at),
            verify_started: Some(at),
            verify_done: Some(at),
        },
        outcome: AttemptOutcome {
            verdict: Verdict::Pass,
            images_sent: vec![ImageSent {
                partition: "system_a".into(),
                file: "system".into(),
                sha256: Sha256Digest::of_bytes(b"system"),
                bytes: 1 << 30,
            }],
            activation_sha256_found: Some(Sha256Digest::of_bytes(b"client")),
            verify_method: Some(VerifyMethod::HostReadback),
            verify_bytes_read: Some(1 << 20),
            build_id_found: Some("FGDEMO.00EEA.1".into()),
            finished_at: at,
        },
    }
}
