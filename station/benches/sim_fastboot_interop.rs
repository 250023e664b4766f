//! Benchmark (not a test): Debian's `fastboot` flashing a 300 MiB mostly-zero file into
//! `flashgate sim fastboot` over TCP loopback with max-download-size 64 MiB (so the client
//! resparses and splits), three runs; prints the median wall time and throughput and the
//! simulator process's peak RSS.
//!
//! `cargo bench -p flashgate-station --bench sim_fastboot_interop`

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

const IMAGE_MIB: u64 = 300;
const RUNS: usize = 3;

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // The same shape as the interop test: 3 MiB islands of data every 9 MiB (96 MiB), zeros
    // elsewhere.
    let image = dir.path().join("system.img");
    let mut f = File::create(&image).unwrap();
    f.set_len(IMAGE_MIB << 20).unwrap();
    for i in 0..32u64 {
        f.seek(SeekFrom::Start(i * (9 << 20))).unwrap();
        f.write_all(&pseudo_random(i + 7, 3 << 20)).unwrap();
    }
    drop(f);

    let mut sim = Command::new(env!("CARGO_BIN_EXE_flashgate"))
        .args([
            "sim",
            "fastboot",
            "--listen",
            "127.0.0.1:0",
            "--partition",
            "system=320M",
        ])
        .args(["--max-download-size", "64M", "--storage"])
        .arg(dir.path().join("storage"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting flashgate sim fastboot");
    let mut stdout = BufReader::new(sim.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first.trim().trim_start_matches("listening on ").to_string();

    let mut seconds = Vec::new();
    for run in 1..=RUNS {
        let started = Instant::now();
        let out = Command::new("fastboot")
            .args(["-s", &format!("tcp:{addr}"), "flash", "system"])
            .arg(&image)
            .output()
            .expect("Debian's fastboot is installed");
        let took = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "fastboot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("run {run}: {took:.3} s");
        seconds.push(took);
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[RUNS / 2];
    println!(
        "median of {RUNS}: {median:.3} s = {:.0} MiB/s for a {IMAGE_MIB} MiB image \
         (client resparse + transfer + device expansion)",
        IMAGE_MIB as f64 / median
    );
    match peak_rss_kib(sim.id()) {
        Some(kib) => println!("simulator peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("simulator peak RSS: unavailable (no /proc)"),
    }
    let _ = sim.kill();
    let _ = sim.wait();
}
