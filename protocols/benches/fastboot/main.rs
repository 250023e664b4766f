//! Fastboot benchmarks: a bench binary (figures to read), not timed tests.
//!
//! ```sh
//! cargo build --release -p flashgate-station          # the `flashgate` the TCP parts run
//! cargo bench -p flashgate-protocols --features sim --bench fastboot -- [memory] [tcp] [rss]
//! ```
//! - `memory`: flash a 1 GiB raw image (generated on the fly, never held in memory) through the
//!   in-memory link to the simulated phone: throughput and host CPU seconds per GiB
//!   (getrusage of the client thread; the simulator runs on its own thread).
//! - `tcp`: over TCP loopback against `flashgate sim fastboot --listen`, Debian's
//!   `fastboot flash` versus `flashgate fastboot flash` for a 300 MiB mostly-zero raw file and
//!   its `img2simg` sparse image, max-download-size 64 MiB; medians of `BENCH_RUNS` (default 5)
//!   runs each, the two tools taking turns: wall clock, and the client process's CPU time
//!   (steadier than wall clock on a shared machine).
//! - `rss`: peak RSS of `flashgate fastboot flash` with a 4 GiB raw image (wait4 rusage).
//!
//! `FLASHGATE_BIN` overrides the path of the `flashgate` binary (default
//! `target/release/flashgate`); `BENCH_DIR` where the image files go (default a temp dir).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

mod memory;

const MIB: u64 = 1 << 20;

fn main() {
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |p: &str| parts.is_empty() || parts.iter().any(|a| a == p || a == "all");
    let scratch = match std::env::var_os("BENCH_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("create BENCH_DIR");
            Scratch::Kept(dir)
        }
        None => Scratch::Temp(tempfile::tempdir().expect("temp dir")),
    };
    if want("memory") {
        memory::run();
    }
    if want("tcp") {
        tcp_side_by_side(&flashgate_bin(), scratch.path());
    }
    if want("rss") {
        peak_rss(&flashgate_bin(), scratch.path());
    }
}

enum Scratch {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl Scratch {
    fn path(&self) -> &Path {
        match self {
            Scratch::Kept(p) => p,
            Scratch::Temp(t) => t.path(),
        }
    }
}

fn flashgate_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FLASHGATE_BIN") {
        return bin.into();
    }
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/flashgate");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --release -p flashgate-station` first",
        bin.display()
    );
    bin
}

/// Deterministic pseudo-random bytes (xorshift), so runs compare like with like.
pub(crate) fn fill_random(buf: &mut [u8], seed: &mut u64) {
    for word in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let bytes = seed.to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
}

/// A raw image of `len` bytes: 1 MiB of random data every `stride` bytes, holes elsewhere
/// (zeros), plus one 1 MiB run of a repeated 32-bit word (a FILL candidate) per 64 MiB.
fn mostly_zero_image(path: &Path, len: u64, stride: u64) {
    let file = File::create(path).expect("create image");
    file.set_len(len).expect("size image");
    let mut out = BufWriter::with_capacity(MIB as usize, file);
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut block = vec![0u8; MIB as usize];
    let mut offset = 0;
    while offset < len {
        let n = MIB.min(len - offset) as usize;
        fill_random(&mut block[..n], &mut seed);
        out.seek(SeekFrom::Start(offset)).expect("seek");
        out.write_all(&block[..n]).expect("write");
        if offset % (64 * MIB) == 0 && offset + 3 * MIB <= len {
            let pattern: Vec<u8> =
                std::iter::repeat_n(0xdead_beefu32.to_le_bytes(), MIB as usize / 4)
                    .flatten()
                    .collect();
            out.seek(SeekFrom::Start(offset + 2 * MIB)).expect("seek");
            out.write_all(&pattern).expect("write");
        }
        offset += stride;
    }
    out.flush().expect("flush image");
}

/// One simulated phone on TCP; killed on drop.
struct Sim {
    child: Child,
    addr: String,
    storage: PathBuf,
}

impl Sim {
    fn start(flashgate: &Path, storage: &Path, partition_size: u64) -> Sim {
        let _ = std::fs::remove_dir_all(storage);
        std::fs::create_dir_all(storage).expect("storage dir");
        let mut child = Command::new(flashgate)
            .args(["sim", "fastboot", "--listen", "127.0.0.1:0"])
            .arg("--storage")
            .arg(storage)
            .args(["--max-download-size", &(64 * MIB).to_string()])
            .args(["--partition", &format!("system={partition_size}")])
            // The simulated bootloader derives its slots from the boot partitions.
            .args(["--partition", "boot=16M"])
            .args(["--slots", "a,b"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flashgate sim fastboot");
        // The simulator's first line is `listening on ADDR`.
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("simulator output");
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected simulator output {first:?}"))
            .to_string();
        Sim {
            child,
            addr,
            storage: storage.to_path_buf(),
        }
    }

    fn target(&self) -> String {
        format!("tcp:{}", self.addr)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one run of a command cost.
struct Measured {
    /// Wall seconds from spawn to exit.
    wall: f64,
    /// User + system CPU seconds of the process.
    cpu: f64,
    /// Peak RSS in KiB.
    rss_kib: u64,
}

/// Run a command to completion and measure it.
// The child is reaped by wait4 (which also yields its own rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn run_measured(mut command: Command) -> Measured {
    let started = Instant::now();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut status = 0;
    // SAFETY: plain wait4 on our own child with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed().as_secs_f64();
    let text = reader.join().unwrap_or_default();
    assert!(
        rc == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "command failed (status {status}): {text}"
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Measured {
        wall,
        cpu: secs(usage.ru_utime) + secs(usage.ru_stime),
        rss_kib: usage.ru_maxrss as u64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .arg("-s")
        .arg(a)
        .arg(b)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn tcp_side_by_side(flashgate: &Path, dir: &Path) {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5);
    let raw = dir.join("mostly-zero-300m.img");
    let sparse = dir.join("mostly-zero-300m.simg");
    mostly_zero_image(&raw, 300 * MIB, 4 * MIB);
    let ok = Command::new("img2simg")
        .arg(&raw)
        .arg(&sparse)
        .status()
        .expect("img2simg");
    assert!(ok.success(), "img2simg failed");
    println!(
        "tcp loopback, 300 MiB, max-download-size 64 MiB, median of {runs} runs per tool, the \
         tools taking turns (wall seconds; client CPU = user+sys of the client process):"
    );
    for (label, image) in [("raw mostly-zero", &raw), ("img2simg sparse", &sparse)] {
        let tools = ["fastboot", "flashgate"];
        let mut wall: [Vec<f64>; 2] = Default::default();
        let mut cpu: [Vec<f64>; 2] = Default::default();
        for run in 0..runs {
            // Alternate who goes first, so a burst of load elsewhere hits both alike.
            for i in [run % 2, 1 - run % 2] {
                let tool = tools[i];
                let sim = Sim::start(flashgate, &dir.join("sim-storage"), 320 * MIB);
                let mut command = if tool == "fastboot" {
                    let mut c = Command::new("fastboot");
                    c.args(["-s", &sim.target(), "flash", "system"]).arg(image);
                    c
                } else {
                    let mut c = Command::new(flashgate);
                    c.args(["fastboot", "--target", &sim.target(), "flash", "system"])
                        .arg(image);
                    c
                };
                command.env("NO_COLOR", "1");
                let measured = run_measured(command);
                let written = sim.storage.join("system_a.img");
                if label.starts_with("raw") {
                    assert!(
                        same_bytes_prefix(&raw, &written),
                        "{tool}: partition differs from the image"
                    );
                }
                wall[i].push(measured.wall);
                cpu[i].push(measured.cpu);
            }
        }
        for (i, tool) in tools.iter().enumerate() {
            println!(
                "  {label:16} {tool:9} median {:6.3} s  client CPU median {:6.3} s  runs {:.3?}",
                median(wall[i].clone()),
                median(cpu[i].clone()),
                wall[i]
            );
        }
        println!(
            "  {label:16} flashgate/fastboot ratio: wall {:.2}, client CPU {:.2}",
            median(wall[1].clone()) / median(wall[0].clone()),
            median(cpu[1].clone()) / median(cpu[0].clone())
        );
    }
}

/// The partition file holds the image in its first bytes (the partition may be larger and
/// end in zeros).
fn same_bytes_prefix(image: &Path, partition: &Path) -> bool {
    let len = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
    let copy = partition.with_extension("prefix");
    let ok = Command::new("head")
        .arg("-c")
        .arg(len.to_string())
        .arg(partition)
        .stdout(File::create(&copy).expect("prefix file"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let same = ok && same_bytes(image, &copy);
    let _ = std::fs::remove_file(copy);
    same
}

fn peak_rss(flashgate: &Path, dir: &Path) {
    let image = dir.join("big-4g.img");
    mostly_zero_image(&image, 4 << 30, 128 * MIB);
    let sim = Sim::start(flashgate, &dir.join("sim-storage-4g"), (4 << 30) + 64 * MIB);
    let mut command = Command::new(flashgate);
    command
        .args(["fastboot", "--target", &sim.target(), "flash", "system"])
        .arg(&image);
    let measured = run_measured(command);
    println!(
        "flashgate fastboot flash, 4 GiB raw image over TCP: {:.1} s, peak RSS {:.1} MiB",
        measured.wall,
        measured.rss_kib as f64 / 1024.0
    );
    let _ = std::fs::remove_file(image);
}
