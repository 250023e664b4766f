//! Helpers shared by the scenario tests in `tests/`.

pub mod batch;
pub mod super_image;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, OnceLock};
use std::thread::{self, JoinHandle};

/// The demo's DEMO-ONLY minisign key (configs/demo/keys): its secret half, committed.
pub fn demo_secret_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/demo/keys/demo-release.key")
}

/// The `trusted_manifest_keys` entry of a station that trusts the demo key, for a test that
/// writes its own station.yaml.
pub const DEMO_TRUSTED_KEYS_YAML: &str = "trusted_manifest_keys:\n  - { name: flashgate-demo, \
     public_key: \"RWTWyH395HRyrbzYzHqXU25pmKq1VtWjiCaiTOQatmOI2pF7edas0HH5\" }\n";

/// Signs `manifest` (writing `<manifest>.minisig`) with Debian's `minisign` and `key` (an
/// unencrypted minisign secret key), as a release signs its manifests.
pub fn sign_manifest_with(manifest: &Path, key: &Path) {
    let mut signature = manifest.as_os_str().to_os_string();
    signature.push(".minisig");
    let output = protocols::external_tool::command("minisign")
        .arg("-S")
        .arg("-s")
        .arg(key)
        .arg("-m")
        .arg(manifest)
        .arg("-x")
        .arg(&signature)
        .args(["-t", "signed by a flashgate test"])
        .output()
        .expect("running minisign");
    assert!(
        output.status.success(),
        "minisign -S {}: {}",
        manifest.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Signs `manifest` with the demo key, as a test that edits a demo manifest must (the demo
/// station refuses an unsigned or altered one).
pub fn sign_manifest(manifest: &Path) {
    sign_manifest_with(manifest, &demo_secret_key());
}

/// The `flashgate` binary of the same profile as the running test, built once per test run.
///
/// `env!("CARGO_BIN_EXE_flashgate")` only exists for the package that owns the binary, and the
/// scenario tests live in the root package, so build it here (a no-op when it is up to date) and
/// find it beside this test executable (`target/<profile>/deps/scenarios-…` →
/// `target/<profile>/flashgate`).
pub fn flashgate_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test executable");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("test executable lives in target/<profile>/deps")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut build = Command::new(cargo);
        build
            .args(["build", "-p", "flashgate-station", "--bin", "flashgate"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        if release {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("running cargo build for the flashgate binary");
        assert!(status.success(), "building the flashgate binary failed");
        let bin = profile_dir.join(format!("flashgate{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    })
    .clone()
}

/// Deterministic pseudo-random bytes (xorshift64*), so fixtures need no RNG crate and a failure
/// reproduces.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
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

/// A simulated device serving its end of a link on its own thread.
///
/// It keeps the link after `serve` returns, until [`DeviceThread::join`] (or drop) says the
/// host is done: closing a simulated link is an unplug, which would throw away an answer the
/// host has not read yet (the last ACK before a reset, say). An explicit handshake rather than a
/// pause, so a slow machine cannot lose the race.
pub struct DeviceThread<T> {
    handle: JoinHandle<T>,
    host_done: Option<mpsc::Sender<()>>,
}

/// Runs `serve` on `link` in a [`DeviceThread`].
pub fn spawn_device<L, T>(
    mut link: L,
    serve: impl FnOnce(&mut L) -> T + Send + 'static,
) -> DeviceThread<T>
where
    L: Send + 'static,
    T: Send + 'static,
{
    let (host_done, done) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        let outcome = serve(&mut link);
        // Returns once the sender is dropped: the test has finished with the host side.
        let _ = done.recv();
        drop(link);
        outcome
    });
    DeviceThread {
        handle,
        host_done: Some(host_done),
    }
}

impl<T> DeviceThread<T> {
    /// The host is done: release the link and wait for the device's outcome.
    pub fn join(mut self) -> thread::Result<T> {
        drop(self.host_done.take());
        self.handle.join()
    }
}
