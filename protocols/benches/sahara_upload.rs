//! Sahara programmer upload against the simulated boot ROM: throughput and host CPU per MiB,
//! in memory (packet and stream framing) and over a pty opened as a serial port.
//!
//! `cargo bench -p flashgate-protocols --features sim --bench sahara_upload`

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use flashgate_protocols::progress::NoProgress;
use flashgate_protocols::sahara::{SaharaHost, SaharaImages, SaharaOutcome, SaharaTimeouts};
use flashgate_protocols::sim::sahara::{SaharaDevice, SaharaIdentity, SaharaServeOutcome};
use flashgate_protocols::sim::sahara_elf::programmer_elf;
use flashgate_protocols::transport::memory::pair_with;
use flashgate_protocols::transport::pty::PtyDevice;
use flashgate_protocols::transport::serial::SerialLink;
use flashgate_protocols::transport::{Framing, Transport};
use sha2::{Digest, Sha256};

const RUNS: usize = 7;

fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        u
    };
    Duration::from_secs(usage.ru_utime.tv_sec as u64 + usage.ru_stime.tv_sec as u64)
        + Duration::from_micros(usage.ru_utime.tv_usec as u64 + usage.ru_stime.tv_usec as u64)
}

/// One upload; returns (wall, host thread CPU, READ_DATA requests).
fn upload_once<H: Transport, D: Transport + 'static>(
    mut host_link: H,
    device_link: D,
    prog: &Path,
    sha: [u8; 32],
) -> (Duration, Duration, u64) {
    let mut identity = SaharaIdentity::default();
    identity.signed_programmers.push(sha);
    let rom = SaharaDevice::new(3, identity);
    let device = thread::spawn(move || {
        let mut link = device_link;
        let outcome = rom.serve(&mut link).unwrap();
        (outcome, link)
    });
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    let outcome = SaharaHost::with_timeouts(&mut host_link, SaharaTimeouts::default())
        .upload(&SaharaImages::programmer(prog), &NoProgress)
        .unwrap();
    let wall = t0.elapsed();
    let cpu = thread_cpu() - cpu0;
    let SaharaOutcome::ProgrammerLoaded(report) = outcome else {
        panic!("not loaded")
    };
    let (outcome, _link) = device.join().unwrap();
    assert!(matches!(
        outcome,
        SaharaServeOutcome::ProgrammerAccepted { .. }
    ));
    (wall, cpu, report.images[0].requests)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    for mib in [1usize, 16] {
        let payload: Vec<u8> = (0..mib << 20).map(|i| (i * 31 + i / 4093) as u8).collect();
        let elf = programmer_elf(&payload);
        let prog = dir.path().join(format!("prog_{mib}m.elf"));
        std::fs::write(&prog, &elf).unwrap();
        let sha: [u8; 32] = Sha256::digest(&elf).into();
        let size_mib = elf.len() as f64 / (1 << 20) as f64;
        for kind in ["memory/packets", "memory/stream", "pty/serial"] {
            let mut walls = Vec::new();
            let mut cpus = Vec::new();
            let mut requests = 0;
            for run in 0..RUNS {
                let (wall, cpu, n) = match kind {
                    "memory/packets" => {
                        let (h, d, _c) = pair_with("bench", Framing::Packets, Some(512));
                        upload_once(h, d, &prog, sha)
                    }
                    "memory/stream" => {
                        let (h, d, _c) = pair_with("bench", Framing::Stream, None);
                        upload_once(h, d, &prog, sha)
                    }
                    _ => {
                        let tty = dir.path().join(format!("tty{run}"));
                        let pty = PtyDevice::create(Some(&tty)).unwrap();
                        let host = SerialLink::open(tty.to_str().unwrap()).unwrap();
                        upload_once(host, pty, &prog, sha)
                    }
                };
                walls.push(wall);
                cpus.push(cpu);
                requests = n;
            }
            let wall = median(walls);
            let cpu = median(cpus);
            println!(
                "sahara upload {mib:>2} MiB programmer, {kind:<14}: median {:>8.2} ms, {:>7.1} MiB/s, \
                 host CPU {:>6.2} ms/MiB, {requests} READ_DATA_64 requests ({RUNS} runs)",
                wall.as_secs_f64() * 1e3,
                size_mib / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e3 / size_mib,
            );
        }
    }
}
