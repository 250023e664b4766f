//! Debian's AOSP `fastboot` client (29.0.6) against `flashgate sim fastboot` over TCP loopback:
//! what a real peer sends, the simulator must understand, and what it wrote must be exactly
//! what the peer sent.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use flashgate_scenarios::{flashgate_bin, pseudo_random};
use protocols::external_tool;

/// A `flashgate sim fastboot` process; killed when dropped.
pub(crate) struct SimServer {
    child: Child,
    /// Kept open so the simulator never writes into a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
    addr: String,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl SimServer {
    pub(crate) fn start(extra: &[&str]) -> SimServer {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let mut child = Command::new(flashgate_bin())
            .args(["sim", "fastboot", "--listen", "127.0.0.1:0", "--storage"])
            .arg(&storage)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting flashgate sim fastboot");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        SimServer {
            child,
            _stdout: stdout,
            addr,
            storage,
            _dir: dir,
        }
    }

    /// Run Debian's `fastboot -s tcp:ADDR ARGS…`. The AOSP client never times out on a silent
    /// device, so the test does.
    pub(crate) fn fastboot(&self, args: &[&str]) -> Output {
        self.fastboot_with(args, &[])
    }

    /// [`SimServer::fastboot`] with environment variables (`ANDROID_PRODUCT_OUT` for
    /// `flashall`).
    pub(crate) fn fastboot_with(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut child = external_tool::command("fastboot")
            .envs(env.iter().copied())
            .arg("-s")
            .arg(format!("tcp:{}", self.addr))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running fastboot");
        // A dead simulator would leave the client "< waiting for tcp:… >" forever.
        let deadline = Instant::now() + Duration::from_secs(300);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("fastboot {args:?} hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    /// The device as `flashgate fastboot --target` names it.
    pub(crate) fn target(&self) -> String {
        format!("tcp:{}", self.addr)
    }

    pub(crate) fn partition_file(&self, name: &str) -> PathBuf {
        self.storage.join(format!("{name}.img"))
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The partition file holds `expected` from its start and zeros after it.
fn assert_partition_holds(partition: &Path, expected: &Path) {
    let mut p = BufReader::with_capacity(1 << 20, File::open(partition).unwrap());
    let mut e = BufReader::with_capacity(1 << 20, File::open(expected).unwrap());
    let (mut pb, mut eb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    loop {
        let n = e.read(&mut eb).unwrap();
        if n == 0 {
            break;
        }
        p.read_exact(&mut pb[..n]).unwrap();
        if pb[..n] != eb[..n] {
            let at = pb[..n]
                .iter()
                .zip(&eb[..n])
                .position(|(a, b)| a != b)
                .unwrap();
            panic!(
                "{} differs from {} at byte {}",
                partition.display(),
                expected.display(),
                offset + at as u64
            );
        }
        offset += n as u64;
    }
    let mut rest = Vec::new();
    p.read_to_end(&mut rest).unwrap();
    assert!(
        rest.iter().all(|&b| b == 0),
        "{} has data after the image's {offset} bytes",
        partition.display()
    );
}

/// A sparse-on-disk file of `len` bytes with pseudo-random `islands` (offset, length) and
/// zeros elsewhere.
fn write_fixture(path: &Path, len: u64, islands: &[(u64, usize)]) {
    let mut f = File::create(path).unwrap();
    f.set_len(len).unwrap();
    for (i, &(at, n)) in islands.iter().enumerate() {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&pseudo_random(i as u64 + 7, n)).unwrap();
    }
}

#[test]
fn getvar_product_and_a_missing_variable() {
    let sim = SimServer::start(&["--product", "interop_phone", "--serial", "IOP123"]);
    let out = sim.fastboot(&["getvar", "product"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("product: interop_phone"),
        "{}",
        text(&out)
    );
    let out = sim.fastboot(&["getvar", "serialno"]);
    assert!(text(&out).contains("serialno: IOP123"), "{}", text(&out));
    // The device answers FAIL for an unknown variable, yet the AOSP client exits 0: a caller
    // that relies on its exit status cannot tell a missing variable from an empty one.
    let out = sim.fastboot(&["getvar", "no-such-variable"]);
    assert!(
        out.status.success(),
        "AOSP getvar exits 0 on FAIL: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("FAILED (remote: 'GetVar Variable Not found')"),
        "{}",
        text(&out)
    );
    // getvar all: every INFO line printed, then the client finishes cleanly.
    let out = sim.fastboot(&["getvar", "all"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("(bootloader) current-slot:a"), "{all}");
    assert!(all.contains("(bootloader) has-slot:system:yes"), "{all}");
}

#[test]
fn flash_a_10_mib_raw_file_into_the_current_slot() {
    let sim = SimServer::start(&["--partition", "boot=16M", "--slots", "a,b"]);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("boot.img");
    std::fs::write(&image, pseudo_random(1, 10 << 20)).unwrap();
    let out = sim.fastboot(&["flash", "boot", image.to_str().unwrap()]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // The client asked has-slot/current-slot and appended the suffix itself.
    assert!(log.contains("Sending 'boot_a' (10240 KB)"), "{log}");
    assert_partition_holds(&sim.partition_file("boot_a"), &image);
    assert!(std::fs::read(sim.partition_file("boot_b"))
        .unwrap()
        .iter()
        .all(|&b| b == 0));
    // set_active moves the next flash to the other slot.
    let out = sim.fastboot(&["set_active", "b"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = sim.fastboot(&["flash", "boot", image.to_str().unwrap()]);
    assert!(text(&out).contains("Sending 'boot_b'"), "{}", text(&out));
    assert_partition_holds(&sim.partition_file("boot_b"), &image);
}

#[test]
fn flash_300_mib_mostly_zero_file_resparsed_and_split_by_the_client() {
    let sim = SimServer::start(&["--partition", "system=320M", "--max-download-size", "64M"]);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("system.img");
    // 96 MiB of data in 3 MiB islands every 9 MiB, the rest zeros: the resparsed image is
    // larger than 64 MiB, so the client must split it.
    let islands: Vec<(u64, usize)> = (0..32).map(|i| (i * (9 << 20), 3 << 20)).collect();
    write_fixture(&image, 300 << 20, &islands);
    let out = sim.fastboot(&["flash", "system", image.to_str().unwrap()]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Sending sparse 'system' 1/"),
        "client did not split: {log}"
    );
    assert!(
        !log.contains("Sending sparse 'system' 1/1 "),
        "client did not split: {log}"
    );
    assert_partition_holds(&sim.partition_file("system"), &image);
}

#[test]
fn flash_an_img2simg_sparse_image_expands_byte_for_byte() {
    let sim = SimServer::start(&["--partition", "vendor=64M"]);
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("vendor.raw");
    write_fixture(
        &raw,
        40 << 20,
        &[(0, 1 << 20), (5 << 20, 123_456), (30 << 20, 2 << 20)],
    );
    // A region of a repeated word, which img2simg stores as a FILL chunk.
    let mut f = std::fs::OpenOptions::new().write(true).open(&raw).unwrap();
    f.seek(SeekFrom::Start(20 << 20)).unwrap();
    f.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(1 << 18))
        .unwrap();
    drop(f);
    let simg = dir.path().join("vendor.simg");
    let expanded = dir.path().join("vendor.expanded");
    for (tool, args) in [
        ("img2simg", [raw.as_path(), simg.as_path()]),
        ("simg2img", [simg.as_path(), expanded.as_path()]),
    ] {
        let status = external_tool::command(tool).args(args).status().unwrap();
        assert!(status.success(), "{tool} failed");
    }
    let out = sim.fastboot(&["flash", "vendor", simg.to_str().unwrap()]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // A sparse image that fits one download goes as is (the client prints no "sparse" then):
    // the size sent is the sparse file's, not the 40 MiB it expands to.
    let sent_kb = std::fs::metadata(&simg).unwrap().len() / 1024;
    assert!(
        log.contains(&format!("Sending 'vendor' ({sent_kb} KB)")),
        "{log}"
    );
    assert_partition_holds(&sim.partition_file("vendor"), &expanded);
}

#[test]
fn erase_reboot_and_oem_commands_through_the_aosp_client() {
    let sim = SimServer::start(&["--partition", "misc=1M", "--partition", "userdata=8M"]);
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("misc.img");
    std::fs::write(&image, pseudo_random(3, 1 << 20)).unwrap();
    assert!(sim
        .fastboot(&["flash", "misc", image.to_str().unwrap()])
        .status
        .success());
    let out = sim.fastboot(&["oem", "sha256", "misc"]);
    let expect = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(std::fs::read(&image).unwrap()))
    };
    assert!(
        text(&out).contains(&format!("(bootloader) {expect}")),
        "{}",
        text(&out)
    );
    let out = sim.fastboot(&["erase", "misc"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(sim.partition_file("misc"))
        .unwrap()
        .iter()
        .all(|&b| b == 0));
    let out = sim.fastboot(&["reboot", "bootloader"]);
    assert!(out.status.success(), "{}", text(&out));
    // The simulator serves the next connection (the phone is back in the bootloader).
    let out = sim.fastboot(&["getvar", "is-userspace"]);
    assert!(text(&out).contains("is-userspace: no"), "{}", text(&out));
    let out = sim.fastboot(&["flash", "nonexistent", image.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "flash of a missing partition must fail"
    );
    assert!(text(&out).contains("No such partition"), "{}", text(&out));
}
