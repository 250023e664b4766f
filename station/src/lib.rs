//! The flashgate station: configuration, batch orchestration, verification, journal.

pub mod bus;
pub mod config;
pub mod digest;
pub mod ext4_file;
pub mod journal;
pub mod preflight;
pub mod read_at;
pub mod verdict;
pub mod verified_image;
