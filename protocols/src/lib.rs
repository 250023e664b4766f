//! flashgate's protocol stack: transports, fastboot, the Android sparse format, Qualcomm
//! Sahara/Firehose, GPT, Android's LP metadata (`super`), and (feature `sim`) simulated phones that speak them.
//!
//! Nothing here knows about stations, YAML, async runtimes or terminals; progress and device
//! messages leave through [`progress::ProgressSink`].

pub mod fastboot;
pub mod firehose;
pub mod gpt;
pub mod lp;
pub mod progress;
pub mod sahara;
pub mod sparse;
pub mod transport;

#[cfg(feature = "sim")]
pub mod sim;

/// The bodies of the cargo-fuzz targets in `fuzz/`, also replayed by `cargo test`.
#[cfg(any(test, fuzzing))]
pub mod fuzz_targets;

/// Replaying the cargo-fuzz corpora in `cargo test` (this crate's and the station's).
#[cfg(any(test, feature = "sim"))]
pub mod fuzz_replay;

/// Outside tools the tests run, and what to install when one is missing.
#[cfg(any(test, feature = "sim"))]
pub mod external_tool;
