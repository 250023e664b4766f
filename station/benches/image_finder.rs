//! Figures for the file-finder (a bench binary, not a timed test):
//! `cargo bench -p flashgate-station --bench image_finder` (add `-- --quick` for the small
//! form CI runs).
//!
//! A `super` of 4 GiB (512 MiB quick) whose `system_a` is an erofs lz4hc filesystem made by
//! `mkfs.erofs` from 256 MiB of files (24 MiB quick) around an activation client, packed by
//! our LP writer (holes on disk: cheap to build) and made sparse by `img2simg`.
//!
//! (a) Verification: the client found and hashed inside `system_a` through a counting source,
//!     as verification reads a phone's `super` through `fetch:` — bytes and requests, without
//!     and with the read-ahead cache verification uses. Target: under 8 MiB read back.
//! (b) Pre-flight of the sparse `super.img` (SHA-256 of the file, sparse CRC walk, the client
//!     found and checked through the sparse index), through the real `load_and_check`:
//!     throughput. Target: at least 1 GB/s, i.e. bounded by hashing.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use protocols::lp::{self, attr, DeviceSpec, MetadataBuilder, PartitionImage};
use sha2::{Digest, Sha256};
use station::digest::Sha256Digest;
use station::image::{CacheConfig, Finder};
use station::preflight::{load_and_check, MAX_CLIENT_SIZE};
use station::read_at::CountingReader;

const MIB: u64 = 1 << 20;
const CLIENT: &str = "/system/priv-app/ActivationClient/ActivationClient.apk";
/// Bytes read back that verification must stay under.
const READ_BACK_TARGET: u64 = 8 * MIB;

struct Scale {
    super_size: u64,
    files: u64,
    samples: usize,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// xorshift64: deterministic, no RNG crate.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.next() >> 24) as u8).collect()
    }

    /// Code- and resource-like text: what most of a `system` partition compresses like.
    fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "android",
            "content",
            "Intent",
            "void",
            "return",
            "public",
            "static",
            "final",
            "String",
            "getView",
            "onCreate",
            "Bundle",
            "layout",
            "drawable",
            "0x7f0a",
            "import",
            "com.example",
            "resources",
            "manifest",
            "permission",
            "{",
            "}",
            ";",
            "\n",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            let word = WORDS[(self.next() % WORDS.len() as u64) as usize];
            out.extend_from_slice(word.as_bytes());
            out.push(if self.next().is_multiple_of(7) {
                b'\n'
            } else {
                b' '
            });
        }
        out.truncate(len);
        out
    }
}

/// An APK: stored (incompressible) entries between compressible ones.
fn client_bytes() -> Vec<u8> {
    let mut noise = Noise(0x5EED);
    let mut out = Vec::new();
    while out.len() < (4 << 20) + 12_345 {
        let stored = noise.bytes(48 << 10);
        out.extend_from_slice(&stored);
        out.extend(noise.text(80 << 10));
    }
    out.truncate((4 << 20) + 12_345);
    out
}

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{tool}` ({e}); the bench needs it installed"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tree, its erofs image, the raw super (holes on disk) and the sparse super.img.
fn build(dir: &Path, scale: &Scale, client: &[u8]) -> (PathBuf, PathBuf, u64) {
    let tree = dir.join("tree");
    let put = |path: &str, bytes: &[u8]| {
        let host = tree.join(path.trim_start_matches('/'));
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(host, bytes).unwrap();
    };
    put(CLIENT, client);
    // Pre-flight checks the build id beside the client.
    put(
        "/system/build.prop",
        b"ro.build.display.id=FGBENCH.00WW.1\n",
    );
    let mut noise = Noise(42);
    let file_len = 256 << 10;
    for n in 0..scale.files / file_len {
        let dir = ["app", "priv-app", "framework", "lib64", "etc"][(n % 5) as usize];
        // One file in four is already compressed (media, stored APK entries): it makes the
        // image as large as a real one, and mkfs.erofs slow (lz4hc on noise runs ~3 MB/s).
        let bytes = if n.is_multiple_of(4) {
            noise.bytes(file_len as usize)
        } else {
            noise.text(file_len as usize)
        };
        put(
            &format!("/system/{dir}/Pkg{:03}/file{n:05}.bin", n % 97),
            &bytes,
        );
    }
    let erofs = dir.join("system.erofs");
    run(
        "mkfs.erofs",
        &[
            "--quiet",
            "-T0",
            "-zlz4hc",
            &erofs.display().to_string(),
            &tree.display().to_string(),
        ],
    );
    fs::remove_dir_all(&tree).unwrap();
    let erofs_len = fs::metadata(&erofs).unwrap().len();

    let mut builder =
        MetadataBuilder::new(DeviceSpec::super_partition(scale.super_size), 65536, 3).unwrap();
    for slot in ["a", "b"] {
        let group = format!("qti_dynamic_partitions_{slot}");
        builder
            .add_group(&group, scale.super_size / 2 - MIB)
            .unwrap();
        for name in ["system", "system_ext", "product", "vendor"] {
            builder
                .add_partition(&format!("{name}_{slot}"), &group, attr::READONLY)
                .unwrap();
        }
    }
    builder.resize_partition("system_a", erofs_len).unwrap();
    let metadata = builder.export().unwrap();
    let raw = dir.join("super.raw");
    lp::write_super_image(
        &metadata,
        &mut [PartitionImage {
            partition: "system_a",
            len: erofs_len,
            reader: &mut File::open(&erofs).unwrap(),
        }],
        &mut File::create(&raw).unwrap(),
    )
    .unwrap();
    let sparse = dir.join("images/super.img");
    fs::create_dir_all(sparse.parent().unwrap()).unwrap();
    run(
        "img2simg",
        &[&raw.display().to_string(), &sparse.display().to_string()],
    );
    (raw, sparse, erofs_len)
}

fn bench_verification(raw: &Path, client: &Sha256Digest, scale: &Scale) {
    for (name, cache) in [
        ("no read-ahead", CacheConfig::OFF),
        ("read-ahead (verification's)", CacheConfig::PHONE),
    ] {
        let finder = Finder::in_logical_partition("system", 0).with_cache(cache);
        let mut samples = Vec::new();
        let mut last = None;
        for _ in 0..scale.samples {
            let started = Instant::now();
            let counting = CountingReader::new(File::open(raw).unwrap());
            let (counting, found) = finder.hash_file(counting, CLIENT, MAX_CLIENT_SIZE);
            samples.push(started.elapsed());
            let found = found.expect("the client in system_a");
            assert_eq!(&found.sha256, client);
            assert_eq!(found.bytes_read, counting.bytes_read());
            last = Some(found);
        }
        let found = last.unwrap();
        // What it would cost over a phone link: a fetch: round trip is about 1 ms over USB 2.0
        // (command, DATA, payload, OKAY), payload at about 35 MB/s.
        let modelled = found.reads as f64 * 1e-3 + found.bytes_read as f64 / 35e6;
        println!(
            "(a) verify client ({} bytes) in {} of a {} MiB super, {name}: {} bytes ({:.2} MiB) in \
             {} requests; modelled phone link {:.0} ms; median {:.1} ms from the page cache",
            found.size,
            found.logical_partition.as_deref().unwrap_or("?"),
            scale.super_size >> 20,
            found.bytes_read,
            found.bytes_read as f64 / MIB as f64,
            found.reads,
            modelled * 1e3,
            median(samples).as_secs_f64() * 1e3
        );
        assert!(
            found.bytes_read < READ_BACK_TARGET,
            "verification read {} bytes, target < {READ_BACK_TARGET}",
            found.bytes_read
        );
    }
}

fn bench_preflight(dir: &Path, sparse: &Path, client: &Sha256Digest, scale: &Scale) {
    let bytes = fs::read(sparse).unwrap();
    let sparse_len = bytes.len() as u64;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    // The floor: SHA-256 of the same bytes from memory.
    let mut hashing = Vec::new();
    for _ in 0..scale.samples {
        let started = Instant::now();
        std::hint::black_box(Sha256::digest(&bytes));
        hashing.push(started.elapsed());
    }
    let floor = median(hashing).as_secs_f64();
    drop(bytes);
    let manifest = format!(
        "product: fgbench
identity:
  fastboot_product: flashgate_sim
regions:
  00WW:
    build_id: FGBENCH.00WW.1
    files:
      super: {{ path: super.img, size: {sparse_len}, sha256: \"{sha256}\" }}
    flash:
      fastboot:
        slot: all
        set_active: a
        partitions:
          - {{ partition: super, image: super }}
    activation_client:
      partition: super
      image: super
      logical_partition: system
      path: {CLIENT}
      sha256: \"{}\"
      verify: host_readback
",
        client.to_hex()
    );
    fs::create_dir_all(dir.join("products")).unwrap();
    fs::create_dir_all(dir.join("work-orders")).unwrap();
    fs::write(dir.join("products/fgbench.yaml"), manifest).unwrap();
    fs::write(
        dir.join("work-orders/WO-BENCH.yaml"),
        "id: WO-BENCH\nproduct: fgbench\nregion: 00WW\nquantity: 1\n",
    )
    .unwrap();
    let mut station = File::create(dir.join("station.yaml")).unwrap();
    write!(
        station,
        "station_id: bench\nimage_root: images\nproducts_dir: products\n\
         journal: state/journal.sqlite\nlog_dir: state/logs\n\
         limits:\n  parallel_slots: 1\n  timeouts: {{ command_secs: 30, identify_secs: 60, \
         flash_partition_secs: 600, verify_secs: 300, reenumerate_secs: 90 }}\n  \
         retries: {{ identify: 2, flash_partition: 1 }}\n\
         slots:\n  - {{ slot: 1, simulated: fastboot }}\n\
         engineering_mode: true\n"
    )
    .unwrap();
    drop(station);

    let mut samples = Vec::new();
    let mut last = None;
    // The first run warms the page cache (img2simg just wrote the file).
    for _ in 0..=scale.samples {
        let started = Instant::now();
        let (_, batch) = load_and_check(
            &dir.join("station.yaml"),
            &dir.join("work-orders/WO-BENCH.yaml"),
        )
        .expect("pre-flight of the bench super.img");
        samples.push(started.elapsed());
        last = Some(batch);
    }
    samples.remove(0);
    let batch = last.unwrap();
    assert_eq!(&batch.activation.sha256, client);
    let m = median(samples).as_secs_f64();
    println!(
        "(b) pre-flight of a {} MiB sparse super.img ({} MiB expanded): median {:.0} ms = \
         {:.2} GB/s of file ({:.1} GB/s of partition); SHA-256 alone of the file from memory \
         {:.0} ms ({:.2} GB/s), so pre-flight takes {:.2}× hashing; the client check read {} \
         bytes through the sparse index",
        sparse_len >> 20,
        scale.super_size >> 20,
        m * 1e3,
        sparse_len as f64 / m / 1e9,
        scale.super_size as f64 / m / 1e9,
        floor * 1e3,
        sparse_len as f64 / floor / 1e9,
        m / floor,
        batch.activation.bytes_read
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick {
        Scale {
            super_size: 512 * MIB,
            files: 24 * MIB,
            samples: 3,
        }
    } else {
        Scale {
            super_size: 4096 * MIB,
            files: 256 * MIB,
            samples: 7,
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let client = client_bytes();
    let digest = Sha256Digest::of_bytes(&client);
    let started = Instant::now();
    let (raw, sparse, erofs_len) = build(dir.path(), &scale, &client);
    println!(
        "built: {} MiB of files → {} MiB erofs lz4hc system_a in a {} MiB super; sparse \
         super.img {} MiB ({:.1} s)",
        scale.files >> 20,
        erofs_len >> 20,
        scale.super_size >> 20,
        fs::metadata(&sparse).unwrap().len() >> 20,
        started.elapsed().as_secs_f64()
    );
    bench_verification(&raw, &digest, &scale);
    bench_preflight(dir.path(), &sparse, &digest, &scale);
}
