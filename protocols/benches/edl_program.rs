//! Firehose `<program>` throughput through the simulated programmer, in memory: 1 GiB of
//! non-repeating data in payload-sized chunks (ZLPs included, 512-byte USB packets modelled),
//! the programmer storing it in the phone's sparse memory storage — and once more with the
//! phone dropping writes, which leaves the protocol path alone.
//!
//! Run: `cargo bench -p flashgate-protocols --features sim --bench edl_program`. Prints the
//! median of several runs: MB/s (1 MB = 10^6 bytes) and CPU seconds per GiB for the host thread
//! and the device thread separately (CLOCK_THREAD_CPUTIME_ID), so the host's cost is not hidden
//! by the simulator's.

use std::io::{self, Read};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use flashgate_protocols::firehose::{Firehose, FirehoseConfig, PowerMode, ProgramTarget};
use flashgate_protocols::sim::firehose::{serve, FirehoseSimConfig};
use flashgate_protocols::sim::{DropWrites, Phone};
use flashgate_protocols::transport::memory::pair_with;
use flashgate_protocols::transport::Framing;

const GIB: u64 = 1 << 30;
const RUNS: usize = 3;

/// Endless non-repeating-looking data (a 1 MiB noise block, rotated per pass).
struct Noise {
    block: Vec<u8>,
    pos: usize,
    pass: u8,
}

impl Noise {
    fn new() -> Self {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let block = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Noise {
            block,
            pos: 0,
            pass: 0,
        }
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        for b in &mut buf[..n.min(1)] {
            *b ^= self.pass;
        }
        self.pos += n;
        if self.pos == self.block.len() {
            self.pos = 0;
            self.pass = self.pass.wrapping_add(1);
        }
        Ok(n)
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Run {
    wall: Duration,
    host_cpu: Duration,
    device_cpu: Duration,
}

/// `payload`: what the host asks for first; `device_max`: what the programmer supports (the
/// host re-configures up to it when it is larger).
fn one_run(drop_writes: bool, payload: usize, device_max: usize) -> Run {
    let phone = Phone::builder()
        .slots(&[])
        .partition("system", GIB + (1 << 20))
        .build()
        .expect("phone");
    if drop_writes {
        phone.drop_writes(DropWrites::All);
    }
    let start_sector = phone.lock().storage.partition("system").unwrap().first_lba;
    let (host, mut dev, _c) = pair_with("bench", Framing::Packets, Some(512));
    let (cpu_tx, cpu_rx) = mpsc::channel();
    let sim = FirehoseSimConfig {
        max_payload_to_target: device_max,
        ..Default::default()
    };
    let device_phone = phone.clone();
    let device = thread::spawn(move || {
        let t0 = thread_cpu();
        let outcome = serve(&mut dev, &device_phone, &sim, &[]);
        cpu_tx.send(thread_cpu() - t0).ok();
        outcome
    });
    let mut fh = Firehose::new(
        host,
        FirehoseConfig {
            max_payload: payload,
            payload_cap: Some(device_max.max(payload)),
            ..Default::default()
        },
    );
    let configured = fh.configure().expect("configure");
    assert_eq!(configured.payload_size, device_max);
    let start = start_sector.to_string();
    let target = ProgramTarget {
        lun: 0,
        start_sector: &start,
        label: "system",
        filename: None,
    };
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    fh.program(&target, &mut Noise::new(), GIB)
        .expect("program");
    let wall = t0.elapsed();
    let host_cpu = thread_cpu() - cpu0;
    fh.power(PowerMode::Reset, 0).expect("reset");
    device.join().expect("device thread").expect("device");
    let device_cpu = cpu_rx.recv().expect("device cpu");
    if !drop_writes {
        let mut probe = [0u8; 4096];
        phone
            .read_partition("system", GIB - 4096, &mut probe)
            .expect("read");
        assert!(probe.iter().any(|&b| b != 0), "data was stored");
    }
    Run {
        wall,
        host_cpu,
        device_cpu,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn report(name: &str, drop_writes: bool, asked: usize, payload: usize) {
    let runs: Vec<Run> = (0..RUNS)
        .map(|_| one_run(drop_writes, asked, payload))
        .collect();
    let mbps = median(
        runs.iter()
            .map(|r| GIB as f64 / 1e6 / r.wall.as_secs_f64())
            .collect(),
    );
    let host = median(runs.iter().map(|r| r.host_cpu.as_secs_f64()).collect());
    let device = median(runs.iter().map(|r| r.device_cpu.as_secs_f64()).collect());
    let wall = median(runs.iter().map(|r| r.wall.as_secs_f64()).collect());
    println!(
        "{name:<44} payload {:>4} KiB: {mbps:7.0} MB/s, wall {wall:.2} s/GiB, host CPU {host:.3} s/GiB, simulator CPU {device:.3} s/GiB (median of {RUNS})",
        payload / 1024
    );
}

fn main() {
    println!("firehose program of 1 GiB through the simulated programmer, in memory");
    report(
        "stored in the phone's sparse memory",
        false,
        1 << 20,
        1 << 20,
    );
    report(
        "phone drops writes (protocol path only)",
        true,
        1 << 20,
        1 << 20,
    );
    report(
        "phone drops writes (protocol path only)",
        true,
        256 << 10,
        256 << 10,
    );
    report(
        "drops writes, asked 1 MiB, re-configured",
        true,
        1 << 20,
        4 << 20,
    );
}
