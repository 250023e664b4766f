//! `flashgate bench line`: the station at line scale. N simulated fastboot phones (each behind
//! a link paced at a USB 2.0 rate) flash an image set made at run time — a sparse `system`
//! mostly of zeros with a given amount of data, a boot image, vbmeta — and for each N the
//! benchmark reports the batch's wall time against one phone's, the station's CPU (the whole
//! process less the simulated phones' threads), the process's peak RSS (the phones keep their
//! storage in temporary files), journal commit latency, and the time from a verdict's commit
//! to its event reaching the display. CSV and a PNG plot in `--out`, a table on stdout.
//!
//! Phones are sent the station's private copy of the image set (made and hashed once at
//! pre-flight); `--verify-per-phone` runs the old way too (every phone's stream hashed as it is
//! sent), so the table shows what the copy saves.

mod plot;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use station::batch::{BatchEnd, BatchRun, DEFAULT_JOURNAL_PATIENCE};
use station::events::{Event, EventKind, EventSink, SlotNumber};
use station::metrics;
use station::mode::Mode;
use station::sim_fleet::rig::{sim_port, simulated_bus_numbered, FIRST_RIG_SERIAL};

use crate::byte_size::parse_byte_size;

mod fleet;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(clap::Subcommand)]
enum BenchCommand {
    /// Batches of 1, 2, 4 … simulated phones: wall time ratio, station CPU, peak RSS, journal
    /// commit and verdict latency.
    Line(LineArgs),
    /// The outbox to the fleet database (10 stations x 32 phones): backlog drain throughput
    /// and the delay from a verdict to its row in the fleet database.
    Fleet(fleet::FleetArgs),
}

#[derive(clap::Args)]
struct LineArgs {
    /// The small form for CI: 1, 2 and 4 phones, 8 MiB of system data, a 1 MiB boot image.
    #[arg(long)]
    quick: bool,
    /// Phone counts to run (default 1,2,4,8,16,32,64; with --quick 1,2,4).
    #[arg(long, value_delimiter = ',')]
    phones: Option<Vec<u16>>,
    /// Each phone's link bandwidth in bytes per second.
    #[arg(long, value_parser = parse_byte_size, default_value = "40M")]
    rate: u64,
    /// Bytes of (incompressible) data inside the sparse system image.
    #[arg(long, value_parser = parse_byte_size)]
    system_data: Option<u64>,
    /// Size of the system filesystem (mostly zeros: sparse).
    #[arg(long, value_parser = parse_byte_size)]
    system_size: Option<u64>,
    /// Size of the boot image.
    #[arg(long, value_parser = parse_byte_size)]
    boot: Option<u64>,
    /// The demo configuration the benchmark's station is made from.
    #[arg(long, default_value = "configs/demo")]
    demo: PathBuf,
    /// Where the CSV and the PNG go.
    #[arg(long, default_value = "target/bench-line")]
    out: PathBuf,
    /// Also run each count with every phone's stream hashed as it is sent (no private copy),
    /// for the comparison.
    #[arg(long)]
    verify_per_phone: bool,
    /// Which slots the plan writes: `all` (the demo's: both slots, twice the bytes per phone)
    /// or `a` (slot a, then `set_active: a`: half the phones' disk, for large counts on a small
    /// disk).
    #[arg(long, default_value = "all", value_parser = ["all", "a"])]
    slot: String,
}

/// How the phones are sent the checked bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendPath {
    /// The station's sealed private copy, hashed once at pre-flight.
    PrivateCopy,
    /// The image files, every phone's stream hashed again as it is sent.
    HashPerPhone,
}

impl SendPath {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrivateCopy => "private-copy",
            Self::HashPerPhone => "hash-per-phone",
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        BenchCommand::Line(a) => line(a),
        BenchCommand::Fleet(a) => fleet::fleet(a),
    }
}

/// One row of the table.
pub struct Row {
    send: SendPath,
    phones: u16,
    passed: u32,
    wall: Duration,
    station_cpu: Duration,
    /// CPU of the simulated phones' threads (in this process, beside the station).
    phones_cpu: Duration,
    peak_rss_kib: u64,
    /// The most the process's RSS exceeded what the simulated phones held in memory at the
    /// same moment (see [`StationRss`]).
    station_rss_kib: u64,
    commit_ms: (f64, f64),
    verdict_ms: (f64, f64),
    /// The machine's 1-minute load average when the batch ended.
    load: f64,
}

fn line(a: LineArgs) -> anyhow::Result<ExitCode> {
    return_large_buffers_at_once();
    let counts = a.phones.clone().unwrap_or(if a.quick {
        vec![1, 2, 4]
    } else {
        vec![1, 2, 4, 8, 16, 32, 64]
    });
    if counts.iter().any(|&n| n == 0 || n > 64) {
        bail!("--phones: counts from 1 to 64");
    }
    let system_data = a
        .system_data
        .unwrap_or(if a.quick { 8 << 20 } else { 512 << 20 });
    let system_size = a
        .system_size
        .unwrap_or(if a.quick { 64 << 20 } else { 3 << 30 });
    let boot = a.boot.unwrap_or(if a.quick { 1 << 20 } else { 96 << 20 });
    if system_data + (16 << 20) > system_size {
        bail!("--system-data must leave at least 16 MiB of the --system-size filesystem free");
    }
    let work = tempfile::Builder::new()
        .prefix("flashgate-bench-line-")
        .tempdir()
        .context("creating the benchmark's folder")?;
    let station_dir = work.path().join("station");
    eprintln!(
        "making the image set in {}: sparse system {} MiB with {} MiB of data, boot {} MiB",
        station_dir.display(),
        system_size >> 20,
        system_data >> 20,
        boot >> 20
    );
    make_station(
        &a.demo,
        &station_dir,
        system_size,
        system_data,
        boot,
        &a.slot,
    )?;

    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let mut rows = Vec::new();
    let mut paths = vec![SendPath::PrivateCopy];
    if a.verify_per_phone {
        paths.push(SendPath::HashPerPhone);
    }
    for &send in &paths {
        for &n in &counts {
            let row = run_batch(&runtime, &station_dir, n, a.rate, send)?;
            eprintln!(
                "{n} phone(s), {}: {:.1} s, {} passed, station {:.2} s CPU",
                send.as_str(),
                row.wall.as_secs_f64(),
                row.passed,
                row.station_cpu.as_secs_f64()
            );
            rows.push(row);
        }
    }
    let table = render(&rows, a.rate);
    print!("{table}");
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let csv = a.out.join("line.csv");
    std::fs::write(&csv, render_csv(&rows, a.rate, system_data, boot))
        .with_context(|| format!("writing {}", csv.display()))?;
    eprintln!("wrote {}", csv.display());
    let png = a.out.join("line.png");
    plot::draw(&png, &rows, a.rate).with_context(|| format!("drawing {}", png.display()))?;
    eprintln!("wrote {}", png.display());
    let all_passed = rows.iter().all(|r| r.passed == u32::from(r.phones));
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        eprintln!("not every phone passed: the figures above are not a clean line");
        ExitCode::FAILURE
    })
}

/// The demo station with the 00WW image set replaced by the benchmark's, `parallel_slots` 64.
fn make_station(
    demo: &Path,
    to: &Path,
    system_size: u64,
    system_data: u64,
    boot: u64,
    slot: &str,
) -> anyhow::Result<()> {
    copy_tree(demo, to).with_context(|| format!("copying {}", demo.display()))?;
    let station = to.join("station.yaml");
    let text = std::fs::read_to_string(&station)?;
    let text = text.replace("parallel_slots: 8", "parallel_slots: 64");
    std::fs::write(&station, text)?;

    let images = to.join("images/00WW");
    let raw = to.join("system.raw");
    std::fs::copy(images.join("system.img"), &raw)?;
    tool(
        Command::new("resize2fs")
            .arg("-f")
            .arg(&raw)
            .arg(format!("{}K", system_size >> 10)),
    )?;
    let filler = to.join("filler.bin");
    write_noise(&filler, system_data, 0x5eed)?;
    tool(
        Command::new("debugfs")
            .arg("-w")
            .arg("-R")
            .arg(format!("write {} filler.bin", filler.display()))
            .arg(&raw),
    )?;
    std::fs::remove_file(&filler)?;
    let system = images.join("system.img");
    std::fs::remove_file(&system)?;
    tool(Command::new("img2simg").arg(&raw).arg(&system))?;
    std::fs::remove_file(&raw)?;
    // The demo boot header, then noise up to the size asked for.
    let boot_path = images.join("boot.img");
    let mut boot_bytes = std::fs::read(&boot_path)?;
    if (boot_bytes.len() as u64) < boot {
        let noise = to.join("boot-noise.bin");
        write_noise(&noise, boot - boot_bytes.len() as u64, 0xb007)?;
        boot_bytes.extend(std::fs::read(&noise)?);
        std::fs::remove_file(&noise)?;
    }
    std::fs::write(&boot_path, &boot_bytes)?;

    // The EDL package programs the system image as what it now is: sparse.
    let rawprogram = images.join("rawprogram0.xml");
    let xml = std::fs::read_to_string(&rawprogram)?;
    let xml: Vec<String> = xml
        .lines()
        .map(|l| {
            if l.contains("filename=\"system.img\"") {
                l.replace("sparse=\"false\"", "sparse=\"true\"")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&rawprogram, xml.join("\n") + "\n")?;

    let manifest = to.join("products/fgdemo.yaml");
    let mut text = std::fs::read_to_string(&manifest)?;
    if slot != "all" {
        text = text.replace("slot: all", &format!("slot: {slot}"));
    }
    for (key, path) in [
        ("system", &system),
        ("boot", &boot_path),
        ("rawprogram0", &rawprogram),
    ] {
        let (size, sha) = size_and_sha(path)?;
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!("      {key}: {{ path: 00WW/{file}, size: ");
        let start = text
            .find(&prefix)
            .with_context(|| format!("{}: no 00WW {key} entry", manifest.display()))?;
        let end = start + text[start..].find('\n').unwrap_or(text.len() - start);
        text.replace_range(start..end, &format!("{prefix}{size}, sha256: \"{sha}\" }}"));
    }
    std::fs::write(&manifest, text)?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == "state" {
            continue;
        }
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn tool(command: &mut Command) -> anyhow::Result<()> {
    let out = command.output().with_context(|| {
        format!("running {command:?} (apt-get install e2fsprogs android-sdk-libsparse-utils)")
    })?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `len` bytes of xorshift noise (incompressible, nothing a sparse image can skip).
fn write_noise(path: &Path, len: u64, seed: u64) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

fn size_and_sha(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// When each verdict reached the display's side of the event stream.
#[derive(Default)]
struct VerdictTimes(Mutex<Vec<(SlotNumber, Instant)>>);

impl EventSink for VerdictTimes {
    fn emit(&self, event: Event) {
        if let EventKind::Verdict { slot, .. } = event.kind {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((slot, Instant::now()));
        }
    }
}

fn run_batch(
    runtime: &tokio::runtime::Runtime,
    station_dir: &Path,
    phones: u16,
    rate: u64,
    send: SendPath,
) -> anyhow::Result<Row> {
    // The journal and logs go; the private copies are kept (reused by content).
    if let Ok(entries) = std::fs::read_dir(station_dir.join("state")) {
        for entry in entries.flatten() {
            if entry.file_name() != "images" {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
    }
    // Engineering mode: the benchmark's image set is made here, so its manifest carries no
    // release signature (the check itself costs one BLAKE2b pass over a few KiB).
    let check = match send {
        SendPath::PrivateCopy => station::preflight::load_and_check_as,
        SendPath::HashPerPhone => station::preflight::load_and_check_hashing_per_phone,
    };
    let (station, checked) = check(
        &station_dir.join("station.yaml"),
        &station_dir.join("work-orders/WO-DEMO-WW.yaml"),
        true,
    )
    .context("pre-flight refused the benchmark's batch")?;
    let slots: Vec<(SlotNumber, Mode)> = (1..=phones).map(|s| (s, Mode::Fastboot)).collect();
    let (bus, units) = simulated_bus_numbered(&checked, &slots, FIRST_RIG_SERIAL)?;
    for unit in &units {
        unit.set_link_bytes_per_second(Some(rate));
    }
    let verdicts = Arc::new(VerdictTimes::default());
    let events: Arc<dyn EventSink> = verdicts.clone();
    reset_peak_rss();
    let station_rss = StationRss::sample();
    metrics::set_recording(true);
    let cpu_before = metrics::process_cpu_ns();
    let started = Instant::now();
    // The whole rig arrives at once, so N phones' wall time compares with one phone's.
    for unit in &units {
        unit.plug();
    }
    let run = BatchRun {
        station,
        batch: checked,
        slots: slots.iter().map(|(s, _)| (sim_port(*s), *s)).collect(),
        events,
        stop_after_verdicts: Some(slots.len()),
        journal_patience: DEFAULT_JOURNAL_PATIENCE,
        unit_logs: None,
        transfer_bytes: 1 << 20,
    };
    let ended = runtime.block_on(run.run(Arc::new(bus), std::future::pending()))?;
    let wall = started.elapsed();
    // Off the bus, so the bus (which the station's hotplug watcher may keep) no longer holds
    // the phones: their storage files go now, not at exit (the disk holds one batch at a time).
    for unit in &units {
        unit.unplug();
    }
    drop(units);
    // The phones' last threads end once their links are closed.
    std::thread::sleep(Duration::from_millis(300));
    let process_cpu = metrics::process_cpu_ns().saturating_sub(cpu_before);
    let phones_cpu = metrics::phone_cpu();
    let (station_rss_kib, sampling_cpu) = station_rss.finish();
    let station_cpu = Duration::from_nanos(process_cpu)
        .saturating_sub(phones_cpu)
        .saturating_sub(sampling_cpu);
    let commits = metrics::commits();
    metrics::set_recording(false);
    let passed = match ended {
        BatchEnd::Ran(summary) => summary.passed,
        BatchEnd::AlreadyComplete { .. } => 0,
    };
    let shown = verdicts
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut commit_ms: Vec<f64> = commits.iter().map(|c| ms(c.took)).collect();
    let mut verdict_ms: Vec<f64> = commits
        .iter()
        .filter_map(|c| {
            shown
                .iter()
                .find(|(slot, _)| *slot == c.slot)
                .map(|(_, at)| ms(at.saturating_duration_since(c.done)))
        })
        .collect();
    Ok(Row {
        send,
        phones,
        passed,
        wall,
        station_cpu,
        phones_cpu,
        peak_rss_kib: peak_rss_kib(),
        station_rss_kib,
        commit_ms: median_max(&mut commit_ms),
        verdict_ms: median_max(&mut verdict_ms),
        load: load_average(),
    })
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median_max(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

/// Buffers of 128 KiB and more (the phones' and the station's transfer buffers) get pages of
/// their own and give them back when freed: glibc otherwise raises that threshold after the
/// first such free and keeps freed buffers in its arenas, so the simulated phones' churn would
/// stay in the resident set and be counted as the station's (see [`StationRss`]).
fn return_large_buffers_at_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets an allocator parameter; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Forget the peak RSS so far (Linux: `5` to /proc/self/clear_refs). The peak restarts from the
/// current RSS, so the memory an earlier, larger batch freed is first given back to the system:
/// glibc's allocator keeps it otherwise, and the next batch's peak would be the old one.
fn reset_peak_rss() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The station's own memory while the simulated phones run in its process: every 10 ms, the
/// process's resident set less the bytes the phones hold in memory (their links' packet
/// buffers, their bootloaders' downloads kept in memory and data buffers); the largest
/// difference is the station's peak.
/// Memory the allocator keeps after a phone frees it still counts as the station's, so this
/// errs high.
struct StationRss {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<(u64, Duration)>,
}

impl StationRss {
    fn sample() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            // SAFETY: sysconf reads a constant of the system; it takes no pointers.
            let page_bytes =
                u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
            let mut peak_kib = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let phones = protocols::transport::memory::held_bytes()
                    + protocols::sim::fastboot::held_bytes();
                let station = resident_kib(page_bytes).saturating_sub(phones as u64 / 1024);
                peak_kib = peak_kib.max(station);
                std::thread::sleep(Duration::from_millis(10));
            }
            (peak_kib, Duration::from_nanos(metrics::thread_cpu_ns()))
        });
        StationRss { stop, sampler }
    }

    /// The station's peak in KiB, and the sampler's own CPU (the benchmark's, not the station's).
    fn finish(self) -> (u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap_or((0, Duration::ZERO))
    }
}

/// The process's resident set now (/proc/self/statm: pages of `page_bytes`).
fn resident_kib(page_bytes: u64) -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_bytes / 1024)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The one-phone batch of the same send path.
fn one_of<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Row> {
    rows.iter().find(|r| r.phones == 1 && r.send == row.send)
}

pub fn ratio(rows: &[Row], row: &Row) -> f64 {
    one_of(rows, row).map_or(f64::NAN, |one| {
        row.wall.as_secs_f64() / one.wall.as_secs_f64()
    })
}

/// The station's CPU spread over one phone's batch time (of the same send path): the cores it
/// would need if the batch took no longer than one phone's, as the goal asks. On a loaded
/// machine the batch stretches and CPU / wall understates that need.
pub fn cores_at_line_rate(rows: &[Row], row: &Row) -> f64 {
    one_of(rows, row).map_or(f64::NAN, |one| {
        row.station_cpu.as_secs_f64() / one.wall.as_secs_f64()
    })
}

impl Row {
    pub fn send(&self) -> SendPath {
        self.send
    }

    pub fn phones(&self) -> u16 {
        self.phones
    }

    pub fn cores(&self) -> f64 {
        self.station_cpu.as_secs_f64() / self.wall.as_secs_f64()
    }

    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    pub fn station_rss_mib(&self) -> f64 {
        self.station_rss_kib as f64 / 1024.0
    }
}

/// One column of the table and of the CSV.
struct Column {
    /// The table's heading; the column is as wide as it.
    heading: &'static str,
    /// The CSV's field names, one per figure.
    fields: &'static [&'static str],
    /// Decimals shown in the table and written to the CSV.
    decimals: (usize, usize),
    figures: fn(&[Row], &Row) -> Figures,
}

/// What one column shows for a row.
enum Figures {
    Text(&'static str),
    Whole(u64),
    One(f64),
    /// Median and maximum: one cell in the table (`med / max`), two CSV fields.
    MedianMax((f64, f64)),
}

/// The figures of each batch, in the order the table and the CSV both show them.
const COLUMNS: &[Column] = &[
    Column {
        heading: "send          ",
        fields: &["send"],
        decimals: (0, 0),
        figures: |_, r| Figures::Text(r.send.as_str()),
    },
    Column {
        heading: "phones",
        fields: &["phones"],
        decimals: (0, 0),
        figures: |_, r| Figures::Whole(r.phones.into()),
    },
    Column {
        heading: "passed",
        fields: &["passed"],
        decimals: (0, 0),
        figures: |_, r| Figures::Whole(r.passed.into()),
    },
    Column {
        heading: "wall s",
        fields: &["wall_s"],
        decimals: (1, 3),
        figures: |_, r| Figures::One(r.wall.as_secs_f64()),
    },
    Column {
        heading: "×one",
        fields: &["ratio_to_one"],
        decimals: (2, 3),
        figures: |rows, r| Figures::One(ratio(rows, r)),
    },
    Column {
        heading: "station CPU s",
        fields: &["station_cpu_s"],
        decimals: (2, 3),
        figures: |_, r| Figures::One(r.station_cpu.as_secs_f64()),
    },
    Column {
        heading: "cores",
        fields: &["station_cores"],
        decimals: (3, 3),
        figures: |_, r| Figures::One(r.cores()),
    },
    Column {
        heading: "cores@one",
        fields: &["station_cores_over_one_phone_wall"],
        decimals: (3, 3),
        figures: |rows, r| Figures::One(cores_at_line_rate(rows, r)),
    },
    Column {
        heading: "phones CPU s",
        fields: &["phones_cpu_s"],
        decimals: (1, 3),
        figures: |_, r| Figures::One(r.phones_cpu.as_secs_f64()),
    },
    Column {
        heading: "peak RSS MiB",
        fields: &["peak_rss_mib"],
        decimals: (0, 1),
        figures: |_, r| Figures::One(r.peak_rss_mib()),
    },
    Column {
        heading: "station RSS MiB",
        fields: &["station_rss_mib"],
        decimals: (0, 1),
        figures: |_, r| Figures::One(r.station_rss_mib()),
    },
    Column {
        heading: "commit ms (med/max)",
        fields: &["commit_ms_median", "commit_ms_max"],
        decimals: (1, 2),
        figures: |_, r| Figures::MedianMax(r.commit_ms),
    },
    Column {
        heading: "verdict after commit ms (med/max)",
        fields: &[
            "verdict_after_commit_ms_median",
            "verdict_after_commit_ms_max",
        ],
        decimals: (2, 3),
        figures: |_, r| Figures::MedianMax(r.verdict_ms),
    },
    Column {
        heading: "load",
        fields: &["load_1min"],
        decimals: (1, 2),
        figures: |_, r| Figures::One(r.load),
    },
];

impl Figures {
    /// The CSV fields, with `decimals`.
    fn csv(&self, decimals: usize) -> Vec<String> {
        match *self {
            Self::Text(text) => vec![text.to_string()],
            Self::Whole(n) => vec![n.to_string()],
            Self::One(x) => vec![format!("{x:.decimals$}")],
            Self::MedianMax((median, max)) => {
                vec![format!("{median:.decimals$}"), format!("{max:.decimals$}")]
            }
        }
    }

    /// The table's cell, with `decimals`.
    fn cell(&self, decimals: usize) -> String {
        match *self {
            Self::MedianMax((median, max)) => format!("{median:.decimals$} / {max:.decimals$}"),
            _ => self.csv(decimals).concat(),
        }
    }
}

fn render(rows: &[Row], rate: u64) -> String {
    let headings: Vec<&str> = COLUMNS.iter().map(|c| c.heading).collect();
    let mut t = format!(
        "line benchmark: fastboot phones at {} MiB/s each\n{}\n",
        rate >> 20,
        headings.join("  ")
    );
    for r in rows {
        let cells: Vec<String> = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cell = (c.figures)(rows, r).cell(c.decimals.0);
                let width = c.heading.chars().count();
                // The first column (the send path) reads left to right, the figures align right.
                if i == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        let _ = writeln!(t, "{}", cells.join("  "));
    }
    t
}

fn render_csv(rows: &[Row], rate: u64, system_data: u64, boot: u64) -> String {
    let fields: Vec<&str> = COLUMNS
        .iter()
        .flat_map(|c| c.fields.iter().copied())
        .collect();
    let mut t = format!(
        "# flashgate bench line: {} ({} CPUs); rate {rate} B/s per phone; system data {system_data} B; boot {boot} B\n{}\n",
        machine(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fields.join(","),
    );
    for r in rows {
        let values: Vec<String> = COLUMNS
            .iter()
            .flat_map(|c| (c.figures)(rows, r).csv(c.decimals.1))
            .collect();
        let _ = writeln!(t, "{}", values.join(","));
    }
    t
}

fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(phones: u16, wall_s: u64) -> Row {
        Row {
            send: SendPath::PrivateCopy,
            phones,
            passed: phones.into(),
            wall: Duration::from_secs(wall_s),
            station_cpu: Duration::from_millis(500),
            phones_cpu: Duration::from_secs(3),
            peak_rss_kib: 20 << 10,
            station_rss_kib: 12 << 10,
            commit_ms: (1.5, 4.25),
            verdict_ms: (0.02, 0.5),
            load: 7.5,
        }
    }

    #[test]
    fn the_table_and_the_csv_show_the_same_figures_in_the_same_order() {
        let rows = [row(1, 20), row(4, 25)];
        let csv = render_csv(&rows, 40 << 20, 1 << 20, 1 << 20);
        let lines: Vec<&str> = csv.lines().skip(1).collect();
        let fields = lines[0].split(',').count();
        assert_eq!(
            lines[1],
            "private-copy,1,1,20.000,1.000,0.500,0.025,0.025,3.000,20.0,12.0,1.50,4.25,0.020,0.500,7.50"
        );
        assert!(lines[1..].iter().all(|l| l.split(',').count() == fields));
        assert!(
            lines[2].starts_with("private-copy,4,4,25.000,1.250,"),
            "{}",
            lines[2]
        );

        let table = render(&rows, 40 << 20);
        let lines: Vec<&str> = table.lines().skip(1).collect();
        let width = lines[0].chars().count();
        assert!(
            lines[1..].iter().all(|l| l.chars().count() == width),
            "{table}"
        );
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "private-copy",
                "4",
                "4",
                "25.0",
                "1.25",
                "0.50",
                "0.020",
                "0.025",
                "3.0",
                "20",
                "12",
                "1.5",
                "/",
                "4.2",
                "0.02",
                "/",
                "0.50",
                "7.5"
            ]
        );
    }
}
