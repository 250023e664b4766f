//! The flashgate station: configuration, batch orchestration, verification, journal.

pub mod batch;
pub mod build_prop;
pub mod bus;
pub mod byte_size;
pub mod check;
pub mod config;
pub mod dashboard;
pub mod digest;
pub mod erofs;
pub mod events;
pub mod ext4;
pub mod fleet;
pub mod image;
pub mod job;
pub mod journal;
pub mod logging;
pub mod manifest_build;
pub mod metrics;
pub mod mode;
pub mod preflight;
pub mod publish;
pub mod read_at;
pub mod regular_file;
pub mod run;
pub mod sim_fleet;
pub mod status;
pub mod timestamp;
pub mod trust;
pub mod verdict;
pub mod verified_image;

/// The bodies of the cargo-fuzz targets in `fuzz/`, also replayed by `cargo test`.
#[cfg(any(test, fuzzing))]
pub mod fuzz_targets;
