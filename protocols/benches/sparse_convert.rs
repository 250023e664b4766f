//! Throughput of the fastboot client's raw-image path: scan a raw file into a chunk plan
//! (repeated-word blocks → FILL), split it at a download limit, stream every piece out — and,
//! for the device side, expanding a sparse image.
//!
//! Run: `cargo bench -p flashgate-protocols --bench sparse_convert` (release build). Prints the
//! median of several runs in MB/s of raw image (1 MB = 10^6 bytes). Files live in a temporary
//! directory (about 1.5 GiB of disk); they are read from the page cache after the first run.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use flashgate_protocols::sparse::{expand, split, ChunkPlan};

const RUNS: usize = 5;
const MAX_DOWNLOAD: u64 = 64 << 20;

/// Counts bytes; seeks are free (stands in for a USB link or a device partition).
#[derive(Default)]
struct Sink {
    bytes: u64,
    pos: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        if let SeekFrom::Start(p) = to {
            self.pos = p;
        }
        Ok(self.pos)
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn make_file(path: &std::path::Path, len: u64, random_every: u64) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut block = [0u8; 4096];
    let zero = [0u8; 4096];
    let mut x = 0x1234_5678_9abc_def1u64;
    for i in 0..len / 4096 {
        if random_every > 0 && i % random_every == 0 {
            for w in block.chunks_mut(8) {
                w.copy_from_slice(&xorshift(&mut x).to_le_bytes());
            }
            out.write_all(&block)?;
        } else {
            out.write_all(&zero)?;
        }
    }
    out.flush()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn bench(name: &str, path: &std::path::Path) -> io::Result<()> {
    let len = std::fs::metadata(path)?.len();
    let (mut scan_t, mut split_t, mut write_t, mut total_t, mut expand_t) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut summary = String::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let plan = ChunkPlan::scan_raw(&mut File::open(path)?).map_err(io::Error::other)?;
        let t1 = Instant::now();
        let pieces = split(&plan, MAX_DOWNLOAD).map_err(io::Error::other)?;
        let t2 = Instant::now();
        let mut source = File::open(path)?;
        let mut sink = Sink::default();
        for p in &pieces {
            p.write_to(&mut source, &mut sink)
                .map_err(io::Error::other)?;
        }
        let t3 = Instant::now();
        scan_t.push(t1 - t0);
        split_t.push(t2 - t1);
        write_t.push(t3 - t2);
        total_t.push(t3 - t0);
        summary = format!(
            "{} chunks, {} pieces, {:.1} MB sent",
            plan.chunks().len(),
            pieces.len(),
            sink.bytes as f64 / 1e6
        );

        // Device side: expand the whole image as one sparse stream (from a file, so the
        // process's peak RSS reflects the library's bounded buffers, not the bench's).
        let sparse_path = path.with_extension("simg");
        let mut sparse_file = File::create(&sparse_path)?;
        plan.whole()
            .write_to(&mut File::open(path)?, &mut sparse_file)
            .map_err(io::Error::other)?;
        drop(sparse_file);
        let t4 = Instant::now();
        let input = io::BufReader::with_capacity(64 << 10, File::open(&sparse_path)?);
        expand(input, &mut Sink::default()).map_err(io::Error::other)?;
        expand_t.push(t4.elapsed());
    }
    let (scan, split_d, write, total) = (
        median(scan_t),
        median(split_t),
        median(write_t),
        median(total_t),
    );
    println!("{name}: {summary}");
    println!(
        "  scan raw -> plan      {:>8.0} MB/s  (median {:?})",
        mbps(len, scan),
        scan
    );
    println!(
        "  split at {} MiB        (median {:?})",
        MAX_DOWNLOAD >> 20,
        split_d
    );
    println!(
        "  write pieces          {:>8.0} MB/s  (median {:?})",
        mbps(len, write),
        write
    );
    println!(
        "  scan+split+write      {:>8.0} MB/s  (median {:?})",
        mbps(len, total),
        total
    );
    if !expand_t.is_empty() {
        let e = median(expand_t);
        println!(
            "  expand (CRC on)       {:>8.0} MB/s  (median {:?})",
            mbps(len, e),
            e
        );
    }
    Ok(())
}

fn main() -> io::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: nothing to filter.
    let dir = tempfile::tempdir()?;
    let zeros = dir.path().join("mostly-zero-1GiB.img");
    let random = dir.path().join("random-256MiB.img");
    make_file(&zeros, 1 << 30, 100)?; // 1 % random blocks
    make_file(&random, 256 << 20, 1)?;
    println!("sparse_convert: median of {RUNS} runs, MB/s of raw image");
    bench("1 GiB mostly zero (1 % random blocks)", &zeros)?;
    bench("256 MiB random", &random)?;
    Ok(())
}
