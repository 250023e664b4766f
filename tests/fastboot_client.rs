//! flashgate's fastboot client against the simulated phone, in memory and over fastboot TCP:
//! getvar, raw and sparse flashing (split when over max-download-size), read-back, digests,
//! slots; and the `flashgate fastboot` CLI against `flashgate sim fastboot --listen`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use flashgate_scenarios::{flashgate_bin, pseudo_random};
use protocols::external_tool;
use protocols::fastboot::{Fastboot, FastbootError, FlashOptions, ImageKind, SlotChoice};
use protocols::sim::{FastbootConfig, FastbootDevice, FetchAllow, Phone};
use protocols::transport::memory;
use protocols::transport::tcp::TcpLink;
use protocols::transport::Transport;
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, Copy)]
enum Link {
    Memory,
    Tcp,
}

const LINKS: [Link; 2] = [Link::Memory, Link::Tcp];

fn phone(dir: &Path) -> Phone {
    Phone::builder()
        .product("fg_scenario")
        .serial("FGCLIENT01")
        .slotted_partition("boot", 16 * MIB)
        .slotted_partition("system", 320 * MIB)
        .partition("misc", MIB)
        .storage_dir(dir)
        .build()
        .expect("simulated phone")
}

fn config(max_download_size: u64) -> FastbootConfig {
    FastbootConfig {
        max_download_size: max_download_size as u32,
        fetch_allow: FetchAllow::All,
        ..FastbootConfig::default()
    }
}

/// A client connected to a simulated phone served on its own thread (ends when the client
/// hangs up).
fn connect(
    link: Link,
    phone: &Phone,
    config: FastbootConfig,
) -> (Fastboot<Box<dyn Transport>>, JoinHandle<()>) {
    let mut device = FastbootDevice::new(phone.clone(), config);
    match link {
        Link::Memory => {
            let (host, mut end, _control) = memory::pair("sim-phone");
            let served = thread::spawn(move || {
                device.serve(&mut end);
            });
            (Fastboot::new(Box::new(host)), served)
        }
        Link::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
            let addr = listener.local_addr().expect("address").to_string();
            let served = thread::spawn(move || {
                device.serve_tcp(&listener, |_| ControlFlow::Break(()));
            });
            let host = TcpLink::connect(&addr, Duration::from_secs(5)).expect("connect");
            (Fastboot::new(Box::new(host)), served)
        }
    }
}

fn finish(fb: Fastboot<Box<dyn Transport>>, served: JoinHandle<()>) {
    drop(fb);
    served.join().expect("simulator thread");
}

fn sha256_file(path: &Path) -> [u8; 32] {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path).expect("open"), &mut hasher).expect("hash");
    hasher.finalize().into()
}

fn partition_matches(phone: &Phone, partition: &str, image: &Path) {
    let len = std::fs::metadata(image).expect("image").len();
    let on_device = phone
        .partition_sha256(partition, 0, len)
        .expect("partition hash");
    assert_eq!(
        hex::encode(on_device),
        hex::encode(sha256_file(image)),
        "{partition} differs from {}",
        image.display()
    );
}

/// A raw image of `len` bytes: 1 MiB of pseudo-random data every `stride` bytes, a 1 MiB run
/// of a repeated word after each, zeros (holes) elsewhere. Written in 1 MiB pieces.
fn mostly_zero_image(path: &Path, len: u64, stride: u64, seed: u64) {
    let file = File::create(path).expect("create image");
    file.set_len(len).expect("size image");
    let mut out = BufWriter::new(file);
    let word: Vec<u8> = [0xef, 0xbe, 0xad, 0xde].repeat(MIB as usize / 4);
    let mut offset = 0;
    while offset < len {
        let n = MIB.min(len - offset);
        out.seek(SeekFrom::Start(offset)).expect("seek");
        out.write_all(&pseudo_random(seed + offset, n as usize))
            .expect("write");
        if offset + 2 * MIB <= len {
            out.write_all(&word).expect("write");
        }
        offset += stride;
    }
    out.flush().expect("flush");
}

fn write_file(path: &Path, data: &[u8]) {
    std::fs::write(path, data).expect("write file");
}

fn img2simg(raw: &Path, sparse: &Path) {
    let status = external_tool::command("img2simg")
        .arg(raw)
        .arg(sparse)
        .status()
        .expect("running img2simg");
    assert!(status.success(), "img2simg failed");
}

#[test]
fn getvar_and_identify() {
    for link in LINKS {
        let dir = tempfile::tempdir().unwrap();
        let phone = phone(dir.path());
        let (mut fb, served) = connect(link, &phone, config(64 * MIB));
        assert_eq!(fb.getvar("product").unwrap(), "fg_scenario", "{link:?}");
        let id = fb.identify().unwrap();
        assert_eq!(id.serialno, "FGCLIENT01");
        assert_eq!(id.slot_count, 2);
        assert_eq!(id.current_slot.as_deref(), Some("a"));
        assert_eq!(id.max_download_size, Some(64 * MIB));
        let all = fb.getvar_all().unwrap();
        assert!(
            all.iter().any(|(k, v)| k == "partition-size:system_a"
                && protocols::fastboot::parse_size(v) == Some(320 * MIB)),
            "{all:?}"
        );
        match fb.getvar("no-such-variable").unwrap_err() {
            FastbootError::DeviceFail { command, .. } => {
                assert_eq!(command, "getvar:no-such-variable")
            }
            other => panic!("{link:?}: {other:?}"),
        }
        finish(fb, served);
    }
}

#[test]
fn raw_10_mib_image_then_fetch_back_and_digests() {
    let image = pseudo_random(10, 10 * MIB as usize);
    for link in LINKS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot.img");
        write_file(&path, &image);
        let phone = phone(&dir.path().join("phone"));
        let mut cfg = config(64 * MIB);
        cfg.max_fetch_size = 3 * MIB as u32; // read-back takes 4 fetches
        let (mut fb, served) = connect(link, &phone, cfg);
        let report = fb
            .flash_file("boot", &path, &FlashOptions::default())
            .unwrap();
        assert_eq!(report.partitions, vec!["boot_a"]);
        assert_eq!((report.kind, report.pieces), (ImageKind::Raw, 1));
        partition_matches(&phone, "boot_a", &path);

        let mut back = Vec::new();
        let n = fb
            .fetch_partition("boot_a", 0, Some(image.len() as u64), &mut back)
            .unwrap();
        assert_eq!(n, image.len() as u64);
        assert!(back == image, "{link:?}: fetched bytes differ");
        let mut range = Vec::new();
        fb.fetch_partition("boot_a", 4096 + 17, Some(5000), &mut range)
            .unwrap();
        assert_eq!(range, image[4113..4113 + 5000]);

        let host: [u8; 32] = Sha256::digest(&image).into();
        let (fetched, bytes) = fb
            .fetch_sha256("boot_a", 0, Some(image.len() as u64))
            .unwrap();
        assert_eq!((fetched, bytes), (host, image.len() as u64));
        let device = fb
            .oem_sha256("boot_a", Some((0, image.len() as u64)))
            .unwrap();
        assert_eq!(device, host, "{link:?}: oem sha256");
        finish(fb, served);
    }
}

#[test]
fn mostly_zero_300_mib_image_is_resparsed_and_split_at_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("system.img");
    // 75 MiB of random data (1 MiB every 4 MiB) and 75 MiB of a repeated word: more than one
    // 64 MiB download even after resparsing.
    mostly_zero_image(&path, 300 * MIB, 4 * MIB, 300);
    for link in LINKS {
        let phone = phone(&dir.path().join(format!("phone-{link:?}")));
        let (mut fb, served) = connect(link, &phone, config(64 * MIB));
        let report = fb
            .flash_file("system", &path, &FlashOptions::default())
            .unwrap();
        assert_eq!(report.kind, ImageKind::Raw);
        assert_eq!(report.max_download_size, 64 * MIB);
        assert!(report.pieces >= 2, "{link:?}: {report:?}");
        finish(fb, served);
        partition_matches(&phone, "system_a", &path);
    }
}

#[test]
fn img2simg_sparse_image_as_is_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("vendor.raw");
    let sparse = dir.path().join("vendor.simg");
    mostly_zero_image(&raw, 24 * MIB, 4 * MIB, 24);
    img2simg(&raw, &sparse);
    let sparse_len = std::fs::metadata(&sparse).unwrap().len();
    for link in LINKS {
        for (limit, expect_split) in [(64 * MIB, false), (4 * MIB, true)] {
            let phone = phone(&dir.path().join(format!("phone-{link:?}-{limit}")));
            let (mut fb, served) = connect(link, &phone, config(limit));
            let report = fb
                .flash_file("system", &sparse, &FlashOptions::default())
                .unwrap();
            assert_eq!(report.kind, ImageKind::Sparse);
            if expect_split {
                assert!(report.pieces >= 2, "{link:?}: {report:?}");
            } else {
                assert_eq!((report.pieces, report.bytes_sent), (1, sparse_len));
            }
            finish(fb, served);
            partition_matches(&phone, "system_a", &raw);
        }
    }
}

#[test]
fn slot_handling_other_all_and_set_active() {
    let first = pseudo_random(1, MIB as usize);
    let second = pseudo_random(2, MIB as usize);
    for link in LINKS {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one.img"), dir.path().join("two.img"));
        write_file(&one, &first);
        write_file(&two, &second);
        let phone = phone(&dir.path().join("phone"));
        let (mut fb, served) = connect(link, &phone, config(64 * MIB));
        let all = FlashOptions {
            slot: SlotChoice::All,
            ..FlashOptions::default()
        };
        let report = fb.flash_file("boot", &one, &all).unwrap();
        assert_eq!(report.partitions, vec!["boot_a", "boot_b"]);
        partition_matches(&phone, "boot_a", &one);
        partition_matches(&phone, "boot_b", &one);

        let other = FlashOptions {
            slot: SlotChoice::Other,
            ..FlashOptions::default()
        };
        let report = fb.flash_file("boot", &two, &other).unwrap();
        assert_eq!(report.partitions, vec!["boot_b"], "{link:?}");
        partition_matches(&phone, "boot_a", &one);
        partition_matches(&phone, "boot_b", &two);

        fb.set_active("b").unwrap();
        assert_eq!(fb.current_slot().unwrap().as_deref(), Some("b"));
        let report = fb
            .flash_file("boot", &one, &FlashOptions::default())
            .unwrap();
        assert_eq!(report.partitions, vec!["boot_b"]);
        partition_matches(&phone, "boot_b", &one);

        // A partition without slots keeps its name; a slot that does not exist is refused.
        let report = fb
            .flash_file("misc", &one, &FlashOptions::default())
            .unwrap();
        assert_eq!(report.partitions, vec!["misc"]);
        let err = fb
            .flash_file(
                "boot",
                &one,
                &FlashOptions {
                    slot: SlotChoice::Slot("c".into()),
                    ..FlashOptions::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, FastbootError::Unsupported(_)), "{err:?}");
        finish(fb, served);
    }
}

/// `flashgate sim fastboot --listen 127.0.0.1:0`, killed on drop.
struct SimProcess {
    child: Child,
    addr: String,
    storage: PathBuf,
}

impl SimProcess {
    fn start(storage: &Path) -> SimProcess {
        let mut child = Command::new(flashgate_bin())
            .args(["sim", "fastboot", "--listen", "127.0.0.1:0", "--storage"])
            .arg(storage)
            .args(["--partition", "boot=16M", "--slots", "a,b"])
            .args(["--fetch-allow", "all", "--max-download-size", "4M"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flashgate sim fastboot");
        let mut first = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("simulator's first line");
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        SimProcess {
            child,
            addr,
            storage: storage.to_path_buf(),
        }
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(flashgate_bin())
            .args(["fastboot", "--timeout", "10", "--target"])
            .arg(format!("tcp:{}", self.addr))
            .args(args)
            .output()
            .expect("run flashgate fastboot")
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn cli_getvar_flash_fetch_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(&dir.path().join("storage"));
    let out = sim.cli(&["getvar", "product"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("product: "));

    // Unlike AOSP's fastboot, a FAILed getvar is a failed command.
    let out = sim.cli(&["getvar", "no-such-variable"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-variable"));

    // 6 MiB with a 4 MiB max-download-size: resparsed and split by the CLI.
    let image = dir.path().join("boot.img");
    write_file(&image, &pseudo_random(77, 6 * MIB as usize));
    let out = sim.cli(&["flash", "boot", image.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let written = std::fs::read(sim.storage.join("boot_a.img")).expect("partition file");
    assert_eq!(
        written[..6 * MIB as usize],
        std::fs::read(&image).unwrap()[..]
    );

    let back = dir.path().join("back.img");
    let out = sim.cli(&["fetch", "boot", back.to_str().unwrap(), "--size", "6M"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&image).unwrap()
    );

    let out = sim.cli(&["flash", "nonexistent", image.to_str().unwrap()]);
    assert!(!out.status.success(), "{out:?}");

    // A fetch the device refuses half-way (past the partition's end) leaves no partial file.
    let cut = dir.path().join("cut.img");
    let out = sim.cli(&["fetch", "boot", cut.to_str().unwrap(), "--size", "1G"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(!cut.exists(), "a failed fetch left {}", cut.display());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
