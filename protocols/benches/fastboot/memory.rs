//! A 1 GiB raw image file flashed through the in-memory link to the simulated phone, which runs
//! on its own thread; host CPU is the client thread's (getrusage RUSAGE_THREAD).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use flashgate_protocols::fastboot::{Fastboot, FlashOptions};
use flashgate_protocols::sim::{FastbootConfig, FastbootDevice, Phone};
use flashgate_protocols::transport::memory;

const GIB: u64 = 1 << 30;

fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

pub fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("raw-1g.img");
    {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&image).expect("image"));
        let mut seed = 0x0bad_cafe_dead_beefu64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            super::fill_random(&mut block, &mut seed);
            out.write_all(&block).expect("write image");
        }
        out.flush().expect("flush image");
    }
    println!(
        "memory link, 1 GiB pseudo-random raw image (no FILL blocks), simulator on its own thread:"
    );
    for (label, max_download) in [
        ("one download (max-download-size 1 GiB)", GIB as u32),
        ("resparsed, 256 MiB pieces", 256 << 20),
    ] {
        let storage = dir.path().join(format!("phone-{max_download}"));
        let phone = Phone::builder()
            // The simulated bootloader derives its slots from the boot partitions.
            .slotted_partition("boot", 16 << 20)
            .slotted_partition("system", GIB + (64 << 20))
            .storage_dir(&storage)
            .build()
            .expect("phone");
        let config = FastbootConfig {
            max_download_size: max_download,
            ..FastbootConfig::default()
        };
        let (host, mut device_end, _control) = memory::pair("bench");
        let mut device = FastbootDevice::new(phone.clone(), config);
        let served = std::thread::spawn(move || {
            device.serve(&mut device_end);
        });
        let mut fb = Fastboot::new(host);
        let cpu0 = thread_cpu();
        let started = Instant::now();
        let report = fb
            .flash_file("system", &image, &FlashOptions::default())
            .expect("flash");
        let wall = started.elapsed().as_secs_f64();
        let cpu = (thread_cpu() - cpu0).as_secs_f64();
        drop(fb);
        served.join().expect("simulator");
        println!(
            "  {label:40} {:>2} piece(s)  {:7.1} MiB/s  host CPU {:.2} s per GiB  (wall {wall:.2} s)",
            report.pieces,
            1024.0 / wall,
            cpu / (report.image_len as f64 / GIB as f64),
        );
        let _ = std::fs::remove_dir_all(storage);
    }
}
