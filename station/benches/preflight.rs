//! Figures for the station foundations (a bench binary, not a timed test):
//! `cargo bench -p flashgate-station --bench preflight`
//!
//! - pre-flight of each demo work order (hash every file, find and hash the activation client);
//! - SHA-256 streaming throughput of `VerifiedImage::check` on a 512 MiB file;
//! - bytes ext4 hashing reads to find the client in a 1 GiB filesystem (needs `mke2fs`;
//!   skipped without it) — what verification would fetch from a phone;
//! - journal commit latency with WAL + synchronous=FULL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use station::config::ImageFile;
use station::config::ImagePath;
use station::digest::Sha256Digest;
use station::ext4::hash_file_in_ext4;
use station::journal::{AttemptOutcome, AttemptStart, Journal};
use station::mode::Mode;
use station::preflight::load_and_check;
use station::verdict::Verdict;
use station::verified_image::VerifiedImage;

/// CPU time of this thread: what the reader costs, whoever else shares the machine.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/demo")
}

fn bench_preflight() {
    for id in ["WO-DEMO-WW", "WO-DEMO-EEA", "WO-DEMO-CN"] {
        let mut samples = Vec::new();
        let mut last = None;
        for _ in 0..20 {
            let started = Instant::now();
            let (_, batch) = load_and_check(
                &demo().join("station.yaml"),
                &demo().join(format!("work-orders/{id}.yaml")),
            )
            .expect("demo pre-flight");
            samples.push(started.elapsed());
            last = Some(batch);
        }
        let batch = last.unwrap();
        println!(
            "preflight {id:<12} median {:>7.2} ms  hashed {} bytes  client in {} image: {} bytes read for a {}-byte client",
            median(samples).as_secs_f64() * 1e3,
            batch.bytes_hashed,
            batch.activation.image_format.as_str(),
            batch.activation.bytes_read,
            batch.activation.client_size
        );
    }
}

fn bench_hash_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.img");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i * 31 % 251) as u8).collect();
    let mut hasher = sha2::Sha256::default();
    use sha2::Digest;
    let size = 512u64 << 20;
    for _ in 0..(size >> 20) {
        file.write_all(&chunk).unwrap();
        hasher.update(&chunk);
    }
    drop(file);
    let image = ImageFile {
        key: "big".into(),
        relative: ImagePath::parse("big.img").unwrap(),
        path: path.clone(),
        size,
        sha256: Sha256Digest::from_hasher(hasher),
    };
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        VerifiedImage::check(&image).unwrap();
        samples.push(started.elapsed());
    }
    let m = median(samples);
    println!(
        "VerifiedImage::check 512 MiB (page cache): median {:.0} ms = {:.0} MB/s",
        m.as_secs_f64() * 1e3,
        size as f64 / m.as_secs_f64() / 1e6
    );
    // The same bytes hashed from memory: separates SHA-256 itself from reading the file.
    let mut samples = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut hasher = sha2::Sha256::default();
        for _ in 0..(size >> 20) {
            hasher.update(&chunk);
        }
        std::hint::black_box(hasher.finalize());
        samples.push(started.elapsed());
    }
    let m = median(samples);
    println!(
        "SHA-256 of 512 MiB in memory: median {:.0} ms = {:.0} MB/s",
        m.as_secs_f64() * 1e3,
        size as f64 / m.as_secs_f64() / 1e6
    );
}

fn bench_ext4_bytes_read() {
    if Command::new("mke2fs").arg("-V").output().is_err() {
        println!("ext4 bytes read: skipped (mke2fs not installed)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let client_dir = tree.join("priv-app/ActivationClient");
    std::fs::create_dir_all(&client_dir).unwrap();
    std::fs::create_dir_all(tree.join("app/Filler")).unwrap();
    let client: Vec<u8> = (0..(8u32 << 20)).map(|i| (i * 13 % 253) as u8).collect();
    std::fs::write(client_dir.join("ActivationClient.apk"), &client).unwrap();
    // 600 MiB of other files so the client is one file among many.
    let filler: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 249) as u8).collect();
    for n in 0..60 {
        let mut f = std::fs::File::create(tree.join(format!("app/Filler/f{n}.bin"))).unwrap();
        for _ in 0..10 {
            f.write_all(&filler).unwrap();
        }
    }
    let image = dir.path().join("system.img");
    let status = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "4096", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("1G")
        .status()
        .unwrap();
    assert!(status.success());
    // The first run warms the page cache (mke2fs just wrote the image); the median of the
    // next ones is the reader's own cost.
    let mut samples = Vec::new();
    let mut cpu_samples = Vec::new();
    let mut digest = None;
    for _ in 0..10 {
        let cpu_started = thread_cpu_time();
        let started = Instant::now();
        let file = std::fs::File::open(&image).unwrap();
        let (_, result) = hash_file_in_ext4(
            file,
            "/priv-app/ActivationClient/ActivationClient.apk",
            1 << 30,
        );
        samples.push(started.elapsed());
        cpu_samples.push(thread_cpu_time().saturating_sub(cpu_started));
        digest = Some(result.unwrap());
    }
    samples.remove(0);
    cpu_samples.remove(0);
    let digest = digest.unwrap();
    assert_eq!(digest.sha256, Sha256Digest::of_bytes(&client));
    println!(
        "ext4 client hash in a 1 GiB filesystem: {} bytes read in {} reads for an {}-byte client ({:.2} % of the partition), median {:.1} ms ({:.1} ms on the CPU)",
        digest.bytes_read,
        digest.reads,
        digest.size,
        digest.bytes_read as f64 * 100.0 / (1u64 << 30) as f64,
        median(samples).as_secs_f64() * 1e3,
        median(cpu_samples).as_secs_f64() * 1e3
    );
}

fn bench_journal_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let mut samples = Vec::new();
    for n in 0..200 {
        let started = Instant::now();
        let id = journal
            .begin(&AttemptStart {
                slot: 1,
                port_path: "1-1".into(),
                station_id: "bench".into(),
                line: None,
                work_order: "WO-B".into(),
                work_order_quantity: 200,
                product: "fgdemo".into(),
                region: "00WW".into(),
                build_id: "B".into(),
                manifest_sha256: Sha256Digest::of_bytes(b"m"),
                tool_version: "bench".into(),
                log_path: None,
                started_at: SystemTime::now(),
                operator: None,
                manifest_signed_by: None,
                engineering_mode: false,
            })
            .unwrap();
        journal
            .identified(id, &format!("S{n}"), Mode::Fastboot, SystemTime::now())
            .unwrap();
        journal
            .finish(
                id,
                &AttemptOutcome {
                    verdict: Verdict::Pass,
                    images_sent: Vec::new(),
                    activation_sha256_found: None,
                    build_id_found: None,
                    verify_method: None,
                    verify_bytes_read: None,
                    finished_at: SystemTime::now(),
                },
            )
            .unwrap();
        samples.push(started.elapsed());
    }
    println!(
        "journal begin+identified+finish (3 synced commits): median {:.2} ms",
        median(samples).as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let report = journal.report("WO-B").unwrap();
    println!(
        "journal report over {} attempts: {:.2} ms",
        report.counts.attempts,
        started.elapsed().as_secs_f64() * 1e3
    );
}

fn main() {
    bench_preflight();
    bench_hash_throughput();
    bench_ext4_bytes_read();
    bench_journal_commit();
}
