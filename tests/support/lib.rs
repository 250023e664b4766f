//! Helpers shared by the scenario tests in `tests/`.

pub mod batch;
pub mod super_image;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{mpsc, OnceLock};
use std::thread::{self, JoinHandle};

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
