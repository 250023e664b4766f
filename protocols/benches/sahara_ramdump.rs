//! RAM-dump collection from the simulated crashed ROM (64-bit table, one 256 MiB DDR region):
//! throughput and host CPU per GiB, in memory with USB-like packets (512-byte ZLP rule) and as
//! a byte stream, files written to a temporary directory.
//!
//! `cargo bench -p flashgate-protocols --features sim --bench sahara_ramdump`

use std::thread;
use std::time::{Duration, Instant};

use flashgate_protocols::progress::NoProgress;
use flashgate_protocols::sahara::memory_table::TableFormat;
use flashgate_protocols::sahara::ramdump::{RamdumpLimits, RegionFilter};
use flashgate_protocols::sahara::{SaharaHost, SaharaTimeouts};
use flashgate_protocols::sim::sahara::{
    pattern, SaharaDevice, SaharaIdentity, SaharaServeOutcome, SimMemoryDump,
};
use flashgate_protocols::transport::memory::pair_with;
use flashgate_protocols::transport::Framing;

const RUNS: usize = 5;
const REGION: usize = 256 << 20;

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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut dump = SimMemoryDump {
        format: TableFormat::Bits64,
        table_address: 0x146B_F000,
        table: Vec::new(),
        memory: Vec::new(),
    };
    dump.add_region(
        "DDR CS0",
        "DDRCS0.BIN",
        true,
        0x8000_0000,
        pattern(0x8000_0000, REGION),
    );
    let dir = tempfile::tempdir().unwrap();
    for framing in [Framing::Packets, Framing::Stream] {
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        for _ in 0..RUNS {
            let (mut host, mut dev, _c) = pair_with(
                "bench",
                framing,
                Some(512).filter(|_| framing == Framing::Packets),
            );
            let rom = SaharaDevice::crashed(3, SaharaIdentity::default(), dump.clone());
            let device = thread::spawn(move || {
                let outcome = rom.serve(&mut dev).unwrap();
                (outcome, dev)
            });
            let cpu0 = thread_cpu();
            let t0 = Instant::now();
            let report = SaharaHost::with_timeouts(&mut host, SaharaTimeouts::default())
                .collect_ramdump(
                    dir.path(),
                    &RegionFilter::default(),
                    &RamdumpLimits::default(),
                    &NoProgress,
                )
                .unwrap();
            walls.push(t0.elapsed());
            cpus.push(thread_cpu() - cpu0);
            assert_eq!(report.collected.len(), 1);
            let (outcome, _dev) = device.join().unwrap();
            assert_eq!(outcome, SaharaServeOutcome::Reset);
        }
        let wall = median(walls);
        let cpu = median(cpus);
        let gib = REGION as f64 / (1u64 << 30) as f64;
        println!(
            "ramdump 256 MiB, memory/{framing:?}: median {:>7.1} ms, {:>7.1} MiB/s, host CPU \
             {:>5.2} s/GiB ({RUNS} runs)",
            wall.as_secs_f64() * 1e3,
            256.0 / wall.as_secs_f64(),
            cpu.as_secs_f64() / gib,
        );
    }
}
